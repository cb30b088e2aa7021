"""Videos for the kiosk's camera: a certificate sliding into view, written with OpenCV's VideoWriter.

Shared by tests/test_kiosk_mode.py and bench/camera.py.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pypdfium2
import zxingcpp

QR = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


def page_scan(pdf: Path, dpi: int = 254) -> np.ndarray:
    """A certificate PDF's first page rendered like a scan (grey pixels)."""
    doc = pypdfium2.PdfDocument(str(pdf))
    try:
        return np.asarray(doc[0].render(scale=dpi / 72).to_pil().convert("L"))
    finally:
        doc.close()


def qr_page(text: str) -> np.ndarray:
    """A QR code on white paper (for codes no station would issue)."""
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    img = np.asarray(symbol.to_image(scale=5, add_quiet_zones=False))
    page = np.full((img.shape[0] + 400, img.shape[1] + 400), 255, np.uint8)
    page[200 : 200 + img.shape[0], 200 : 200 + img.shape[1]] = img
    return page


def slide_video(
    path: Path, page: np.ndarray, *, seconds: float = 3.0, fps: int = 10, size: tuple[int, int] = (1280, 720)
) -> Path:
    """A video of ``page``'s QR code sliding in from the right over two thirds of ``seconds``, then
    held still; one frame in the still part is blank (a hand passing in front of the lens)."""
    found = zxingcpp.read_barcodes(page, formats=QR)
    assert found, "the page has a readable code"
    pos = found[0].position
    qx, qy = (pos.top_left.x + pos.bottom_right.x) // 2, (pos.top_left.y + pos.bottom_right.y) // 2
    width, height = size
    frames = int(seconds * fps)
    moving = frames * 2 // 3
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((height, width), 90, np.uint8)  # a grey counter top
        progress = min(i / moving, 1.0)
        cx = round(width + 400 - progress * (width // 2 + 400))  # QR centre: off-screen right -> centre
        ox, oy = cx - qx, height // 2 - qy  # where the page's origin lands in the frame
        x0, y0 = max(ox, 0), max(oy, 0)
        x1, y1 = min(ox + page.shape[1], width), min(oy + page.shape[0], height)
        if x1 > x0 and y1 > y0 and i != moving + 4:
            frame[y0:y1, x0:x1] = page[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def first_readable_frame(path: Path) -> int:
    """The first frame in which zxing-cpp reads a code at full resolution (an independent reading)."""
    capture = cv2.VideoCapture(str(path))
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            assert ok, "no frame of the video has a readable code"
            if zxingcpp.read_barcodes(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), formats=QR):
                return index
            index += 1
    finally:
        capture.release()
