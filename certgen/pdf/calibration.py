"""Pages for printers: the calibration page, and a copy of a PDF shifted by a printer's offset."""

from __future__ import annotations

import io


def shifted_copy(pdf: bytes, x_mm: float, y_mm: float) -> bytes:
    """The PDF with every page's content moved right by ``x_mm`` and up by ``y_mm``."""
    import pikepdf

    pt = 72 / 25.4
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for page in doc.pages:
            page.contents_add(doc.make_stream(f"q 1 0 0 1 {x_mm * pt:.4f} {y_mm * pt:.4f} cm\n".encode()), prepend=True)
            page.contents_add(doc.make_stream(b"\nQ\n"), prepend=False)
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()


def calibration_pdf(
    border_w: float = 269.0, border_h: float = 188.0, qr_xy: tuple[float, float] = (236.0, 36.0)
) -> bytes:
    """An A4 landscape page to measure a printer: mm rulers along every edge, a 100 mm square, the
    certificate border's corners and a 30 mm square where the QR code goes."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    from certgen.pdf.fonts import choose_font

    font = choose_font()
    w, h = 297.0, 210.0
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(w * mm, h * mm), initialFontName=font.name, initialFontSize=8)
    c.setLineWidth(0.2)
    for i in range(0, 298):  # top and bottom rulers
        length = 6 if i % 10 == 0 else 4 if i % 5 == 0 else 2
        c.line(i * mm, 0, i * mm, length * mm)
        c.line(i * mm, h * mm, i * mm, (h - length) * mm)
        if i % 10 == 0 and 0 < i < 297:
            c.setFont(font.name, 6)
            c.drawCentredString(i * mm, 7 * mm, str(i))
            c.drawCentredString(i * mm, (h - 9) * mm, str(i))
    for i in range(0, 211):  # left and right rulers
        length = 6 if i % 10 == 0 else 4 if i % 5 == 0 else 2
        c.line(0, i * mm, length * mm, i * mm)
        c.line(w * mm, i * mm, (w - length) * mm, i * mm)
        if i % 10 == 0 and 0 < i < 210:
            c.drawString(7 * mm, i * mm - 2, str(i))
            c.drawRightString((w - 7) * mm, i * mm - 2, str(i))
    c.setLineWidth(0.3)
    c.rect((w - 100) / 2 * mm, (h - 100) / 2 * mm, 100 * mm, 100 * mm)  # the 100 mm reference square
    bx, by = (w - border_w) / 2, (h - border_h) / 2
    for x, y, dx, dy in (
        (bx, by, 1, 1),
        (bx + border_w, by, -1, 1),
        (bx, by + border_h, 1, -1),
        (bx + border_w, by + border_h, -1, -1),
    ):
        c.setLineWidth(2.25)
        c.line(x * mm, y * mm, (x + 10 * dx) * mm, y * mm)
        c.line(x * mm, y * mm, x * mm, (y + 10 * dy) * mm)
    qx, qy = qr_xy
    c.setLineWidth(0.3)
    c.rect(qx * mm, (h - qy - 30) * mm, 30 * mm, 30 * mm)
    c.setFont(font.name, 10)
    c.drawCentredString((qx + 15) * mm, (h - qy - 17) * mm, "二维码 30mm")
    c.drawCentredString(w / 2 * mm, (h / 2 + 2) * mm, "100mm × 100mm")
    lines = [
        "certkiosk 打印校准页：请以100%比例、A4横向打印，用直尺测量。",
        "1. 中间方框应为100mm×100mm；右侧小方框应为30mm×30mm。若不符，请关闭打印机的“适合页面/缩放”。",
        "2. 量出边框左下角到纸张左边、下边的距离：应为14.0mm、11.0mm。",
        "   实际偏右/偏上了多少，就把偏移设为负的多少，例如偏右0.8mm、偏下0.5mm：",
        "   certkiosk calibrate --printer 打印机 --offset-x -0.8 --offset-y 0.5",
    ]
    for i, text in enumerate(lines):
        c.drawString(30 * mm, (h - 30 - 6 * i) * mm, text)
    c.showPage()
    c.save()
    return buf.getvalue()
