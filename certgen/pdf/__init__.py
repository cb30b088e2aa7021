"""Drawing and finishing certificate PDFs: templates, fonts, photos, layout, QR, render, finish, measure."""
