"""Verify what a file holds: images (PNG, JPEG, TIFF pages, BMP, WebP) and PDFs (page by page).

Two steps, so that archives can keep the slow one and must redo the other:

1. :func:`examine_bytes` turns bytes into *facts*: the QR texts found on each page, and for PDFs
   the embedded record and what is printed in the name and number fields. It needs no trust
   store and depends only on the bytes (and the decoder and limits), so a fact can be reused for
   the same bytes (same SHA-256) in a later run.
2. :func:`results_from_facts` runs every check that depends on the trust store (signature, key
   validity, revocation) and compares the PDF facts with the signed claims. It is cheap and runs
   on every run.

Every input is bounded before the work is done (:class:`Limits`): bytes per file, pixels per
image, pixels per rendered PDF page, pages per file.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import io
import json
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from certgen.bounded import read_regular
from certgen.cells import shown
from certgen.exceptions import InputRefused
from certgen.number import ProvinceProfile
from certgen.payload import ATTACHMENT_NAME, payload_sha256
from certgen.trust import TrustBundle
from verify.check import verify_text
from verify.reasons import Reason
from verify.scan import Decoder, Found, find_codes
from verify.status import VerificationStatus

# Each image is checked against this module's own pixel limit from its header before decoding;
# Pillow's warning between its default limit and twice it says nothing more (set once, at import,
# never changed: Image.MAX_IMAGE_PIXELS itself is left alone, the UI opens images in threads).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


PDF_DPI = 200
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
PDF_SUFFIXES = {".pdf"}
FACTS_VERSION = 2
"""2: a PDF's facts include its signature (electronic certificates) and whether it has text."""
"""Version of what :func:`examine_bytes` records; stored facts of another version are not reused."""


@dataclass(frozen=True)
class Limits:
    """How much work one input may cause, decided before doing it (docs/verify.md lists them)."""

    max_file_bytes: int = 128 * 1024 * 1024
    """Bytes read from one file or ZIP member (a 600 dpi A4 colour TIFF, uncompressed, is 105 MB)."""
    max_pixels: int = 100_000_000
    """Pixels of one image or TIFF page (an A3 page at 600 dpi is 70 million)."""
    max_render_pixels: int = 25_000_000
    """Pixels a PDF page is rendered to; larger pages are rendered at a smaller scale (an A4 page
    at 200 dpi is 3.9 million)."""
    max_pages: int = 50
    """Pages (PDF) or frames (TIFF) of one file."""
    max_page_objects: int = 20_000
    """Page objects inspected on one PDF page (ours have about 20)."""


DEFAULT_LIMITS = Limits()
MAX_PIXELS = DEFAULT_LIMITS.max_pixels
MAX_FILE_BYTES = DEFAULT_LIMITS.max_file_bytes

Facts = dict[str, Any]
"""What decoding found in one file's bytes, as JSON-able data (see :func:`examine_bytes`)."""

FAST_SIDE = 3000
"""JPEGs this large (a 300 dpi A4 page is 3508 px) are first decoded at half scale in grey: JPEG's
DCT scaling makes that cheaper than a full decode, and a 30 mm QR code keeps >= 3 px modules."""


def _unreadable(source: str, why: str, page: int | None = None) -> VerificationStatus:
    return VerificationStatus(source=source, page=page).with_finding(Reason.UNREADABLE_FILE, why)


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _upright(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation (phone photos) only where there is one."""
    try:
        orientation = image.getexif().get(0x0112, 1)
    except (ValueError, OSError):
        orientation = 1
    return ImageOps.exif_transpose(image) if orientation not in (0, 1) else image


def _frames(
    data: bytes, limits: Limits
) -> Iterator[tuple[int | None, Image.Image | None, Callable[[], Image.Image] | str]]:
    """Each page of an image file: (page, a fast grey preview or None, a loader of the full page),
    or a reason the file is unreadable in place of the loader."""
    try:
        img = _open(data)  # the header only: the size is known before anything is decoded
        if img.width * img.height > limits.max_pixels:
            raise Image.DecompressionBombError(f"{img.width}x{img.height}")
        frames = getattr(img, "n_frames", 1)
        if frames > limits.max_pages:
            yield None, None, f"图片有{frames}页，上限{limits.max_pages}页：未处理"
            return
        if frames == 1:
            preview = None
            if img.format == "JPEG" and max(img.size) >= FAST_SIDE:
                small = _open(data)
                small.draft("L", (small.width // 2, small.height // 2))
                small.load()
                preview = _upright(small)

            def full() -> Image.Image:
                image = _open(data)
                image.draft("L", image.size)  # a colour JPEG decodes straight to grey, what is read
                image.load()
                return _upright(image)

            yield None, preview, full
            return
        for index in range(frames):
            img.seek(index)
            if img.width * img.height > limits.max_pixels:
                yield index + 1, None, f"第{index + 1}页像素过多（上限{limits.max_pixels}），疑似解压炸弹"
                continue
            frame = img.convert("L")
            yield index + 1, None, lambda frame=frame: frame  # type: ignore[misc]
    except Image.DecompressionBombError:  # ours, or Pillow's own above twice its default limit
        yield None, None, f"像素过多（上限{limits.max_pixels}），疑似解压炸弹"
    except UnidentifiedImageError:
        yield None, None, "不是可识别的图片或PDF文件"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        yield None, None, f"图片已损坏或不完整：{exc}"


def _codes(image: Image.Image, decoder: Decoder, codes: list[Found] | None = None) -> list[str]:
    return [c.text for c in (codes or find_codes(image, decoder))]


def _compact(text: str) -> str:
    return "".join(text.split())


# --- facts -------------------------------------------------------------------------------------
def _page(page: int | None, *, codes: list[str] | None = None, error: str | None = None) -> dict[str, Any]:
    return {"page": page, "codes": codes or [], "error": error}


def examine_bytes(data: bytes, limits: Limits = DEFAULT_LIMITS, decoder: Decoder = "zxing") -> Facts:
    """The facts in one file's bytes: ``{"version", "pages": [{"page", "codes", "error",
    "printed"?}], "embedded"?}``. No trust store is involved; nothing here is a verdict."""
    facts: Facts = {"version": FACTS_VERSION, "pages": []}
    if len(data) > limits.max_file_bytes:
        facts["pages"].append(_page(None, error=f"文件过大：{len(data)}字节，上限{limits.max_file_bytes}字节"))
    elif not data:
        facts["pages"].append(_page(None, error="文件为空"))
    elif data[:5] == b"%PDF-":
        _pdf_facts(data, limits, decoder, facts)
    else:
        for page, preview, load in _frames(data, limits):
            if isinstance(load, str):
                facts["pages"].append(_page(page, error=load))
                continue
            found = find_codes(preview, decoder, ladder=False) if preview is not None else []
            if found:
                facts["pages"].append(_page(page, codes=[c.text for c in found]))
                continue
            try:
                image = load()
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                facts["pages"].append(_page(page, error=f"图片已损坏或不完整：{exc}"))
                continue
            facts["pages"].append(_page(page, codes=_codes(image, decoder)))
    return facts


def render_scale(width_pt: float, height_pt: float, limits: Limits) -> float:
    """The scale a page is rendered at: 200 dpi, less when that would exceed the pixel cap."""
    wanted = PDF_DPI / 72
    area = max(width_pt, 1.0) * max(height_pt, 1.0)
    return min(wanted, math.sqrt(limits.max_render_pixels / area))


def _pdf_facts(data: bytes, limits: Limits, decoder: Decoder, facts: Facts) -> None:
    import pypdfium2

    try:
        doc = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        facts["pages"].append(_page(None, error=f"PDF无法打开：{exc}"))
        return
    try:
        for i in range(doc.count_attachments()):
            attachment = doc.get_attachment(i)
            if attachment.get_name() == ATTACHMENT_NAME:
                try:
                    embedded = json.loads(bytes(attachment.get_data()).decode("utf-8"))
                except (UnicodeDecodeError, ValueError, RecursionError):
                    embedded = None
                facts["embedded"] = embedded if isinstance(embedded, dict) else {"broken": True}
        made_by_us = "certkiosk" in " ".join(str(v) for v in doc.get_metadata_dict().values())
        pages = len(doc)
        digital = False
        if pages > limits.max_pages:
            facts["pages"].append(_page(None, error=f"PDF有{pages}页，上限{limits.max_pages}页：未处理"))
            return
        for index in range(pages):
            page = doc[index]
            number = index + 1 if pages > 1 else None
            width, height = page.get_size()
            scale = render_scale(width, height, limits)
            image = page.render(scale=scale, grayscale=True).to_pil()  # grey: what the decoder reads
            entry = _page(number, codes=_codes(image, decoder))
            del image
            entry["printed"] = printed_fields(page, ours=made_by_us or "embedded" in facts, limits=limits)
            textpage = page.get_textpage()
            digital = digital or bool(textpage.get_text_range().strip())
            facts["pages"].append(entry)
        if not pages:
            facts["pages"].append(_page(None, error="PDF没有页面"))
    finally:
        doc.close()
    from verify.pdfsig import signature_facts

    facts["digital"] = digital or "embedded" in facts  # born digital (not a scanner's image-only PDF)
    facts["signature"] = signature_facts(data)


# --- what a PDF page prints --------------------------------------------------------------------
FIELD_LABELS = {"name": "姓名：", "number": "证书编号："}
"""The printed fields checked against the QR code, by their label (spaces removed)."""
OUR_LABELS = ("姓名：", "证件号码：", "职业名称：", "证书编号：", "发证日期：", "评价机构：")
"""Labels of the basic-information block: a page printing them is one of our certificates."""


@dataclass(frozen=True)
class _Obj:
    kind: int
    bounds: tuple[float, float, float, float]
    text: str = ""
    visible_text: bool = True
    rect_stroke_only: float | None = None
    """For a path that only strokes a rectangle: its stroke width (it covers only a band)."""


def _text_of(raw: Any, obj: Any, textpage: Any) -> str:
    size = raw.FPDFTextObj_GetText(obj, textpage, None, 0)
    if size <= 2:
        return ""
    buf = ctypes.create_string_buffer(size)
    raw.FPDFTextObj_GetText(obj, textpage, ctypes.cast(buf, ctypes.POINTER(ctypes.c_ushort)), size)
    return buf.raw[: size - 2].decode("utf-16-le", errors="replace")


def _clipped(raw: Any, obj: Any) -> bool:
    clip = raw.FPDFPageObj_GetClipPath(obj)
    return bool(clip) and raw.FPDFClipPath_CountPaths(clip) > 0


def _stroked_rectangle(raw: Any, obj: Any) -> float | None:
    """The stroke width when the path only strokes one axis-aligned rectangle, else None."""
    fill, stroke = ctypes.c_int(), ctypes.c_int()
    if not raw.FPDFPath_GetDrawMode(obj, fill, stroke) or fill.value != 0:
        return None
    if not stroke.value:
        return 0.0
    segments = raw.FPDFPath_CountSegments(obj)
    if segments not in (4, 5):
        return None
    matrix = raw.FS_MATRIX()
    if not raw.FPDFPageObj_GetMatrix(obj, matrix) or matrix.b or matrix.c:
        return None
    xs, ys = set(), set()
    for i in range(segments):
        x, y = ctypes.c_float(), ctypes.c_float()
        raw.FPDFPathSegment_GetPoint(raw.FPDFPath_GetPathSegment(obj, i), x, y)
        xs.add(round(x.value, 2))
        ys.add(round(y.value, 2))
    if len(xs) != 2 or len(ys) != 2:
        return None
    width = ctypes.c_float()
    raw.FPDFPageObj_GetStrokeWidth(obj, width)
    return float(width.value) * float(max(abs(matrix.a), abs(matrix.d)))


def _objects(page: Any, limits: Limits) -> list[_Obj] | None:
    import pypdfium2.raw as raw

    count = raw.FPDFPage_CountObjects(page)
    if count > limits.max_page_objects:
        return None
    textpage = page.get_textpage()
    found = []
    for index in range(count):
        obj = raw.FPDFPage_GetObject(page, index)
        kind = raw.FPDFPageObj_GetType(obj)
        left, bottom, right, top = (ctypes.c_float() for _ in range(4))
        if not raw.FPDFPageObj_GetBounds(obj, left, bottom, right, top):
            continue
        bounds = (left.value, bottom.value, right.value, top.value)
        if kind == raw.FPDF_PAGEOBJ_TEXT:
            r, g, b, a = (ctypes.c_uint() for _ in range(4))
            raw.FPDFPageObj_GetFillColor(obj, r, g, b, a)
            visible = (
                raw.FPDFTextObj_GetTextRenderMode(obj) == raw.FPDF_TEXTRENDERMODE_FILL
                and (r.value, g.value, b.value, a.value) == (0, 0, 0, 255)
                and not _clipped(raw, obj)
            )
            found.append(_Obj(kind, bounds, _text_of(raw, obj, textpage), visible))
        elif kind == raw.FPDF_PAGEOBJ_PATH:
            found.append(_Obj(kind, bounds, rect_stroke_only=_stroked_rectangle(raw, obj)))
        else:
            found.append(_Obj(kind, bounds))
    return found


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float], pad: float = 0.0) -> bool:
    return a[0] - pad < b[2] and b[0] - pad < a[2] and a[1] - pad < b[3] and b[1] - pad < a[3]


def _band_only(rect: tuple[float, float, float, float], width: float, box: tuple[float, float, float, float]) -> bool:
    """Whether a stroked rectangle's band (``width`` wide along its edges) stays clear of ``box``."""
    inner = (rect[0] + width, rect[1] + width, rect[2] - width, rect[3] - width)
    outside = not _overlap(rect, box)
    inside = inner[0] < box[0] and inner[1] < box[1] and box[2] < inner[2] and box[3] < inner[3]
    return outside or inside


def printed_fields(page: Any, *, ours: bool, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """What the page prints in the name and number fields, and whether anything alters them.

    ``{"ours": bool, "name": str | None, "number": str | None, "altered": [problems]}``. A page
    is ours when the file says so (embedded record, producer) or prints our field labels. On our
    pages each field must be exactly one visible (black, filled, unclipped) text line, wrapped
    lines included, and no other page object (a box, an image, other text, a form, a shading)
    may touch any of its lines: a white box with another name drawn on it is found.
    """
    objects = _objects(page, limits)
    if objects is None:
        return {"ours": ours, "name": None, "number": None, "altered": ["页面对象过多，无法核对印刷内容"]}
    texts = [o for o in objects if o.kind == 1]
    compact = [_compact(o.text) for o in texts]
    ours = ours or any(c.startswith(OUR_LABELS) for c in compact)
    out: dict[str, Any] = {"ours": ours, "name": None, "number": None, "altered": []}
    if not ours:
        return out
    altered: list[str] = out["altered"]
    import pypdfium2.raw as raw

    widgets = []  # an electronic certificate's seal is a signature widget: allowed where it covers no field
    for index in range(raw.FPDFPage_GetAnnotCount(page)):
        annot = raw.FPDFPage_GetAnnot(page, index)
        try:
            rect = raw.FS_RECTF()
            placed = raw.FPDFAnnot_GetRect(annot, rect)
            if raw.FPDFAnnot_GetSubtype(annot) == raw.FPDF_ANNOT_WIDGET and placed:
                widgets.append(_Obj(kind=-1, bounds=(rect.left, rect.bottom, rect.right, rect.top)))
            else:
                altered.append("页面上有批注（注释层可覆盖印刷内容）")
        finally:
            raw.FPDFPage_CloseAnnot(annot)
    objects = objects + widgets
    for field, label in FIELD_LABELS.items():
        heads = [i for i, c in enumerate(compact) if c.startswith(label)]
        if len(heads) != 1:
            altered.append(f"页面上「{label.rstrip('：')}」栏出现{len(heads)}次（应为1次）")
            continue
        head = heads[0]
        lines = [texts[head]]
        value = compact[head][len(label) :]
        for nxt in range(head + 1, len(texts)):  # wrapped lines: indented, directly below
            o = texts[nxt]
            if o.bounds[0] <= texts[head].bounds[0] + 1 or o.bounds[3] > lines[-1].bounds[1] + 1:
                break
            if lines[-1].bounds[1] - o.bounds[3] > (lines[-1].bounds[3] - lines[-1].bounds[1]):
                break
            lines.append(o)
            value += compact[nxt]
        out[field] = value
        for line in lines:
            if not line.visible_text:
                altered.append(f"「{label.rstrip('：')}」栏的文字被设为不可见、非黑色或被裁剪")
            for other in objects:
                if other is line:
                    continue
                if other.rect_stroke_only is not None and _band_only(other.bounds, other.rect_stroke_only, line.bounds):
                    continue
                if _overlap(other.bounds, line.bounds, pad=-0.5):
                    what = {1: "另一段文字", 2: "图形", 3: "图片", -1: "表单或签名外观"}.get(other.kind, "其他对象")
                    altered.append(f"「{label.rstrip('：')}」栏被{what}覆盖")
    out["altered"] = list(dict.fromkeys(altered))
    return out


# --- trust-dependent checks on the facts --------------------------------------------------------
def results_from_facts(
    facts: Facts,
    source: str,
    trust: TrustBundle,
    *,
    today: _dt.date | None = None,
    profiles: dict[str, ProvinceProfile] | None = None,
) -> list[VerificationStatus]:
    """Every certificate the facts show, checked against ``trust`` now (one result per QR code,
    or one saying why none)."""
    embedded = facts.get("embedded")
    results: list[VerificationStatus] = []
    for entry in facts["pages"]:
        page = entry["page"]
        if entry.get("error"):
            results.append(_unreadable(source, entry["error"], page))
            continue
        if not entry["codes"]:
            none = VerificationStatus(source=source, page=page)
            results.append(none.with_finding(Reason.NO_QR, "页面上未找到二维码"))
            continue
        for text in entry["codes"]:
            result = verify_text(text, trust, source=source, page=page, today=today, profiles=profiles)
            if embedded is not None:
                result = _compare_embedded(result, embedded)
            printed = entry.get("printed")
            if printed is not None and printed["ours"]:
                result = _compare_printed(result, printed)
            results.append(result)
    signature = facts.get("signature")
    if signature is not None and results and not any(r.reasons == (Reason.UNREADABLE_FILE,) for r in results):
        from verify.pdfsig import check_pdf_signature

        results = check_pdf_signature(signature, results, trust, embedded, bool(facts.get("digital")))
    return results or [_unreadable(source, "文件中没有可核验的内容")]


def _compare_embedded(result: VerificationStatus, embedded: dict[str, Any]) -> VerificationStatus:
    """PDF_MISMATCH when our PDF's attachment disagrees with its QR code."""
    if result.claims is None or not result.intact:
        return result
    problems = []
    if embedded.get("broken"):
        problems.append("内嵌数据损坏")
    else:
        text = embedded.get("qr_text")
        if not isinstance(text, str) or payload_sha256(text) != result.payload_sha256:
            problems.append("内嵌的二维码文本与页面二维码不同")
        record = embedded.get("record")
        record = record if isinstance(record, dict) else {}
        for key, value in result.claims.to_json().items():
            if key in record and record[key] != value:
                problems.append(f"内嵌记录的 {key} 为「{shown(str(record[key]))}」，二维码中为「{shown(str(value))}」")
    if not problems:
        return result
    return result.with_finding(Reason.PDF_MISMATCH, "；".join(problems))


def _compare_printed(result: VerificationStatus, printed: dict[str, Any]) -> VerificationStatus:
    """PDF_CONTENT_ALTERED when the printed name or number is not exactly the QR code's, or
    something covers them."""
    if result.claims is None or not result.intact:
        return result
    problems = list(printed["altered"])
    for field, label in (("name", "姓名"), ("number", "证书编号")):
        wanted = _compact(getattr(result.claims, field))
        got = printed.get(field)
        if got is not None and got != wanted:
            problems.append(f"页面上印的{label}为「{shown(got)}」，二维码中为「{shown(wanted)}」")
    if not problems:
        return result
    return result.with_finding(Reason.PDF_CONTENT_ALTERED, "；".join(problems))


def verify_bytes(
    data: bytes,
    source: str,
    trust: TrustBundle,
    *,
    decoder: Decoder = "zxing",
    today: _dt.date | None = None,
    profiles: dict[str, ProvinceProfile] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[VerificationStatus]:
    """Every certificate in one file's bytes (one result per QR code, or one saying why none)."""
    return results_from_facts(examine_bytes(data, limits, decoder), source, trust, today=today, profiles=profiles)


def verify_path(
    path: Path,
    trust: TrustBundle,
    *,
    decoder: Decoder = "zxing",
    profiles: dict[str, ProvinceProfile] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    today: _dt.date | None = None,
) -> list[VerificationStatus]:
    """One file, read within the limits (a FIFO or device is refused, not opened)."""
    source = shown(str(path))
    try:
        data = read_regular(path, limits.max_file_bytes)
    except InputRefused as exc:
        return [_unreadable(source, str(exc))]
    return verify_bytes(data, source, trust, decoder=decoder, profiles=profiles, limits=limits, today=today)
