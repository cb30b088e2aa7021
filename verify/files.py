"""Verify what a file holds: images (PNG, JPEG, TIFF pages, BMP, WebP) and PDFs (page by page).

For our own PDFs the embedded record is read too (pypdfium2, no PDF writer imported) and compared
with the QR code and with the printed text: a difference is PDF_MISMATCH.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from certgen.labels import label
from certgen.number import ProvinceProfile
from certgen.payload import ATTACHMENT_NAME, payload_sha256
from certgen.trust import TrustBundle
from verify.check import verify_text
from verify.reasons import Reason
from verify.scan import Decoder, Found, find_codes
from verify.status import VerificationStatus

MAX_PIXELS = 200_000_000
"""Decompression-bomb limit for scans (an A4 page at 600 dpi is 35 million pixels)."""
MAX_FILE_BYTES = 512 * 1024 * 1024
PDF_DPI = 200
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
PDF_SUFFIXES = {".pdf"}


def _unreadable(source: str, why: str, page: int | None = None) -> VerificationStatus:
    return VerificationStatus(source=source, page=page).with_finding(Reason.UNREADABLE_FILE, why)


FAST_SIDE = 3000
"""JPEGs this large (a 300 dpi A4 page is 3508 px) are first decoded at half scale in grey: JPEG's
DCT scaling makes that cheaper than a full decode, and a 30 mm QR code keeps >= 3 px modules."""


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _upright(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation (phone photos) only where there is one."""
    try:
        orientation = image.getexif().get(0x0112, 1)
    except (ValueError, OSError):
        orientation = 1
    return ImageOps.exif_transpose(image) if orientation not in (0, 1) else image


def _frames(data: bytes) -> Iterator[tuple[int | None, Image.Image | None, Callable[[], Image.Image] | str]]:
    """Each page of an image file: (page, a fast grey preview or None, a loader of the full page),
    or a reason the file is unreadable in place of the loader."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img = _open(data)
                frames = getattr(img, "n_frames", 1)
                if frames == 1:
                    preview = None
                    if img.format == "JPEG" and max(img.size) >= FAST_SIDE:
                        small = _open(data)
                        small.draft("L", (small.width // 2, small.height // 2))
                        small.load()
                        preview = _upright(small)

                    def full() -> Image.Image:
                        image = _open(data)
                        image.load()
                        return _upright(image)

                    yield None, preview, full
                    return
                for index in range(frames):
                    img.seek(index)
                    frame = img.convert("L")
                    yield index + 1, None, lambda frame=frame: frame  # type: ignore[misc]
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                yield None, None, f"像素过多（上限{MAX_PIXELS}），疑似解压炸弹"
            except UnidentifiedImageError:
                yield None, None, "不是可识别的图片或PDF文件"
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                yield None, None, f"图片已损坏或不完整：{exc}"
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _check_codes(
    image: Image.Image, source: str, page: int | None, trust: TrustBundle, decoder: Decoder,
    today: _dt.date | None, profiles: dict[str, ProvinceProfile] | None, codes: list[Found] | None = None,
) -> list[VerificationStatus]:  # fmt: skip
    """One result per QR code found (``codes`` when a preview pass already found them), or NO_QR."""
    codes = codes or find_codes(image, decoder)
    if not codes:
        return [VerificationStatus(source=source, page=page).with_finding(Reason.NO_QR, "页面上未找到二维码")]
    return [verify_text(c.text, trust, source=source, page=page, today=today, profiles=profiles) for c in codes]


def _compact(text: str) -> str:
    return "".join(text.split())


def _pdf(
    data: bytes, source: str, trust: TrustBundle, decoder: Decoder, today: _dt.date | None,
    profiles: dict[str, ProvinceProfile] | None,
) -> list[VerificationStatus]:  # fmt: skip
    import pypdfium2

    try:
        doc = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        return [_unreadable(source, f"PDF无法打开：{exc}")]
    try:
        embedded: dict[str, Any] | None = None
        for i in range(doc.count_attachments()):
            attachment = doc.get_attachment(i)
            if attachment.get_name() == ATTACHMENT_NAME:
                try:
                    embedded = json.loads(bytes(attachment.get_data()).decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
                    embedded = {"broken": True}
        results: list[VerificationStatus] = []
        pages = len(doc)
        digital = embedded is not None
        for index in range(pages):
            page = doc[index]
            number = index + 1 if pages > 1 else None
            image = page.render(scale=PDF_DPI / 72).to_pil()
            found = _check_codes(image, source, number, trust, decoder, today, profiles)
            printed = _compact(page.get_textpage().get_text_range())
            digital = digital or bool(printed)
            if embedded is not None:
                found = [_compare_embedded(r, embedded, printed) for r in found]
            results.extend(found)
        if results and not any(r.reasons == (Reason.UNREADABLE_FILE,) for r in results):
            from verify.pdfsig import check_pdf_signature

            results = check_pdf_signature(data, results, trust, embedded, digital)
        return results or [_unreadable(source, "PDF没有页面")]
    finally:
        doc.close()


def _compare_embedded(result: VerificationStatus, embedded: dict[str, Any], printed: str) -> VerificationStatus:
    """PDF_MISMATCH when our PDF's attachment or printed text disagrees with its QR code."""
    if result.claims is None or not result.intact:
        return result
    claims = result.claims
    problems = []
    if embedded.get("broken"):
        problems.append("内嵌数据损坏")
    else:
        text = embedded.get("qr_text")
        if not isinstance(text, str) or payload_sha256(text) != result.payload_sha256:
            problems.append("内嵌的二维码文本与页面二维码不同")
        record = embedded.get("record") or {}
        for key, value in claims.to_json().items():
            if key in record and record[key] != value:
                problems.append(f"内嵌记录的 {key} 为「{record[key]}」，二维码中为「{value}」")
    for field, value in (("name", claims.name), ("number", claims.number)):
        if _compact(value) not in printed:
            problems.append(f"页面上印的{label(field)}与二维码中的「{value}」不符")
    if not problems:
        return result
    return result.with_finding(Reason.PDF_MISMATCH, "；".join(problems))


def verify_bytes(
    data: bytes,
    source: str,
    trust: TrustBundle,
    *,
    decoder: Decoder = "zxing",
    today: _dt.date | None = None,
    profiles: dict[str, ProvinceProfile] | None = None,
) -> list[VerificationStatus]:
    """Every certificate in one file's bytes (one result per QR code, or one saying why none)."""
    if len(data) > MAX_FILE_BYTES:
        return [_unreadable(source, f"文件过大：{len(data)}字节，上限{MAX_FILE_BYTES}字节")]
    if not data:
        return [_unreadable(source, "文件为空")]
    if data[:5] == b"%PDF-":
        return _pdf(data, source, trust, decoder, today, profiles)
    results: list[VerificationStatus] = []
    for page, preview, load in _frames(data):
        if isinstance(load, str):
            results.append(_unreadable(source, load, page))
            continue
        codes = find_codes(preview, decoder, ladder=False) if preview is not None else []
        if codes:
            assert preview is not None
            results.extend(_check_codes(preview, source, page, trust, decoder, today, profiles, codes))
            continue
        try:
            image = load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            results.append(_unreadable(source, f"图片已损坏或不完整：{exc}", page))
            continue
        results.extend(_check_codes(image, source, page, trust, decoder, today, profiles))
    return results
