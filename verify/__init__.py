"""verify: from a QR code's text, an image or a PDF to a verdict; archive re-verification.

Imports only the pure parts of certgen: never reportlab, pikepdf, segno or textual.
"""
