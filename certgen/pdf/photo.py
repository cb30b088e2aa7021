"""The holder's photo: checked, oriented and downsampled before it is embedded."""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from certgen.exceptions import PhotoError

# Each image is checked against this module's own pixel limit from its header before decoding;
# Pillow's warning between its default limit and twice it says nothing more (set once, at import,
# never changed: Image.MAX_IMAGE_PIXELS itself is left alone, the UI opens images in threads).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


MAX_PIXELS = 40_000_000
"""Pillow's decompression-bomb limit for photos (a 2-inch photo at 600 dpi is under 1.2 million)."""
REFUSE_DPI = 200
WARN_DPI = 300
EMBED_DPI = 300
ASPECT_TOLERANCE = 0.06
ORIENTATION = 0x0112
"""The EXIF tag of the photo's orientation (1: upright)."""
WHITE_MIN = 215
"""Mean brightness (0-255) the photo's border strip must reach to count as a white background."""
WHITE_MAX_SPREAD = 40
"""Largest difference between the mean R, G and B of the border strip (a tinted background)."""


@dataclass(frozen=True)
class PhotoCheck:
    """What checking one photo file found: enough to embed the same bytes again without checking
    them again (:func:`prepared_again`), kept instead of the bytes themselves."""

    sha256: str
    """SHA-256 of the file's bytes as checked."""
    box: tuple[float, float]
    """The width and height (mm) it was checked for."""
    plain: bool
    """The JPEG is embedded as its own compressed pixels (:func:`plain_jpeg`), not re-encoded."""
    size: tuple[int, int]
    """Pixel width and height of the JPEG embedded."""
    dpi: float
    """Resolution of the source at print size."""
    warnings: tuple[str, ...]
    """The check's remarks that do not refuse the photo."""


@dataclass(frozen=True)
class PreparedPhoto:
    """A photo ready to embed."""

    jpeg: bytes
    """JPEG bytes at no more than 300 dpi for the print size, EXIF orientation applied."""
    width_px: int
    """Pixel width of ``jpeg``."""
    height_px: int
    """Pixel height of ``jpeg``."""
    dpi: float
    """Resolution of the source at print size (before downsampling)."""
    warnings: tuple[str, ...]
    """Problems that do not refuse the photo (e.g. under 300 dpi)."""
    check: PhotoCheck | None = None
    """What the check found, to prepare the same file again without checking it (None: not from a file)."""


def prepare_photo(path: Path, width_mm: float, height_mm: float) -> PreparedPhoto:
    """Check a JPEG/PNG photo for a ``width_mm`` x ``height_mm`` box and prepare it for embedding."""
    return _prepare(_read(path), path, width_mm, height_mm)


def prepared_again(path: Path, check: PhotoCheck, width_mm: float, height_mm: float) -> PreparedPhoto:
    """The photo a check passed (``check``, made by :func:`prepare_photo` for the same box), ready
    to embed again without checking it again, when the file still holds the bytes checked: read
    once, hashed, and these very bytes embedded. A file that changed since (another photo swapped
    in) is checked in full again, as :func:`prepare_photo` would: never embedded unchecked."""
    data = _read(path)
    if hashlib.sha256(data).hexdigest() != check.sha256 or check.box != (width_mm, height_mm):
        return _prepare(data, path, width_mm, height_mm)
    if check.plain:
        plain = plain_jpeg(data)
        if plain is not None:
            return PreparedPhoto(plain, *check.size, check.dpi, check.warnings, check)
    try:
        image, full, orientation, _ = _decode(data, path, width_mm)
        jpeg, size = _embedding(image, *_upright(full, orientation), width_mm)
    except (PhotoError, Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return _prepare(data, path, width_mm, height_mm)  # cannot happen to bytes that passed: the full message
    return PreparedPhoto(jpeg, *size, check.dpi, check.warnings, check)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PhotoError(f"无法读取照片 {path}：{exc.strerror}") from None


def _decode(data: bytes, path: Path, width_mm: float) -> tuple[Image.Image, tuple[int, int], int, bytes | None]:
    """The photo's upright RGB pixels (perhaps decoded smaller, see :func:`_draft`), its full stored
    size, its EXIF orientation and, for a plain JPEG, the bytes to embed as they are."""
    img = Image.open(io.BytesIO(data))  # reads the header only: the size is known before decoding
    if img.format not in ("JPEG", "PNG"):
        raise PhotoError(f"照片 {path} 是 {img.format} 格式：只接受 JPEG 或 PNG")
    if img.width * img.height > MAX_PIXELS:
        raise Image.DecompressionBombError(f"{img.width}x{img.height}")
    full = img.size  # before a draft; turned below if EXIF says so
    plain = _draft(img, data, width_mm) if img.format == "JPEG" else None
    img.load()  # decoded once, in memory (nothing to close: the bytes are read already)
    orientation = img.getexif().get(ORIENTATION, 1)
    turned = ImageOps.exif_transpose(img) if orientation != 1 else None
    image = turned if turned is not None else img  # upright already: no copy of its pixels
    return (image if image.mode == "RGB" else image.convert("RGB")), full, orientation, plain


def _embedding(image: Image.Image, w: int, h: int, width_mm: float) -> tuple[bytes, tuple[int, int]]:
    """The JPEG to embed for a photo of ``w`` x ``h`` pixels (upright) whose pixels are ``image``
    (perhaps decoded smaller): at most 300 dpi for the box's width, and its pixel size."""
    target_w = round(width_mm / 25.4 * EMBED_DPI)
    if w > target_w:
        image = image.resize((target_w, round(h * target_w / w)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, dpi=(EMBED_DPI, EMBED_DPI))
    return out.getvalue(), image.size


def _prepare(data: bytes, path: Path, width_mm: float, height_mm: float) -> PreparedPhoto:
    """:func:`prepare_photo` of the file's bytes ``data`` (read from ``path``, named in messages)."""
    try:
        image, full, orientation, plain = _decode(data, path, width_mm)
    except Image.DecompressionBombError:  # ours, or Pillow's own above twice its default limit
        raise PhotoError(f"照片 {path} 像素过多（上限 {MAX_PIXELS} 像素），疑似解压炸弹，拒绝处理") from None
    except UnidentifiedImageError:
        raise PhotoError(f"照片 {path} 不是可识别的图片文件") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(f"照片 {path} 已损坏或不完整：{exc}") from None
    w, h = _upright(full, orientation)  # ``image`` may be decoded at 1/2-1/8 of it
    wanted, actual = width_mm / height_mm, w / h
    if abs(actual - wanted) / wanted > ASPECT_TOLERANCE:
        expected = f"{wanted:.3f}（{width_mm:g}×{height_mm:g}mm）"
        raise PhotoError(f"照片 {path} 宽高比为 {actual:.3f}（{w}×{h}像素），应为 {expected}，请裁剪")
    dpi = w / (width_mm / 25.4)
    notes: list[str] = []
    if dpi < REFUSE_DPI:
        raise PhotoError(
            f"照片 {path} 分辨率过低：打印尺寸下仅 {dpi:.0f} dpi（{w}×{h}像素），至少需要 {REFUSE_DPI} dpi"
        )
    if dpi < WARN_DPI * 0.99:  # 413 px over 35 mm is 299.7 dpi: that is 300 dpi
        notes.append(f"照片 {path} 分辨率 {dpi:.0f} dpi，低于建议的 {WARN_DPI} dpi，打印可能不够清晰")
    _check_background(image, path, (w, h))
    sha256, box = hashlib.sha256(data).hexdigest(), (width_mm, height_mm)
    if plain is not None:  # the same compressed pixels, without re-encoding them (~0.7 ms)
        return PreparedPhoto(plain, w, h, dpi, tuple(notes), PhotoCheck(sha256, box, True, (w, h), dpi, tuple(notes)))
    jpeg, size = _embedding(image, w, h, width_mm)
    return PreparedPhoto(jpeg, *size, dpi, tuple(notes), PhotoCheck(sha256, box, False, size, dpi, tuple(notes)))


def _draft(img: Image.Image, data: bytes, width_mm: float) -> bytes | None:
    """Before a JPEG is decoded, ask libjpeg to scale it down in its IDCT (draft mode: the whole
    compressed stream is still read, so a truncated or corrupt file is refused as before, but the
    pixels cost a fraction). An upright RGB JPEG at no more than 300 dpi is embedded as it is
    (returned here, walked by :func:`plain_jpeg`): its pixels serve only the background check, at
    1/8 scale. One to be downsampled is decoded at the smallest scale still at least the 300-dpi
    target. Anything else is decoded in full."""
    orientation = img.getexif().get(ORIENTATION, 1)
    fw, fh = img.size
    w = _upright(img.size, orientation)[0]
    target_w = round(width_mm / 25.4 * EMBED_DPI)
    if w > target_w:
        img.draft(img.mode, (max(1, math.ceil(fw * target_w / w)), max(1, math.ceil(fh * target_w / w))))
        return None
    plain = plain_jpeg(data) if orientation == 1 and img.mode == "RGB" else None
    if plain is not None:
        img.draft(img.mode, (max(1, fw // 8), max(1, fh // 8)))
    return plain


_TURNED = (5, 6, 7, 8)
"""EXIF orientations that swap the stored width and height."""


def _upright(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The stored ``size`` as the photo stands once its EXIF ``orientation`` is applied."""
    return (size[1], size[0]) if orientation in _TURNED else size


_KEPT_APP = (0xE0, 0xEE)
"""The application segments a plain JPEG keeps: JFIF (APP0) and Adobe (APP14, which says how to
convert its colours); EXIF, XMP, ICC profiles (APP1-APP13, APP15) and comments are dropped, as
Pillow's re-encoding drops them."""


def plain_jpeg(data: bytes) -> bytes | None:
    """The JPEG's segments from its start marker to its end marker, without metadata (EXIF with its
    camera and place, XMP, ICC profiles, comments) and without anything after the end marker; None
    when ``data`` does not walk as a JPEG (it is then re-encoded)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    kept = [b"\xff\xd8"]
    i, n = 2, len(data)
    while i + 2 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # a fill byte before a marker
            i += 1
            continue
        if marker == 0xD9:  # the end: anything after it is not the image's
            kept.append(b"\xff\xd9")
            return b"".join(kept)
        if i + 4 > n:
            return None
        end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if end <= i + 3 or end > n:
            return None
        if marker == 0xDA:  # a scan: its entropy-coded data runs to the next real marker
            j = end
            while True:
                j = data.find(b"\xff", j)
                if j < 0 or j + 1 >= n:
                    return None
                following = data[j + 1]
                if following == 0xFF:
                    j += 1
                elif following == 0x00 or 0xD0 <= following <= 0xD7:  # a stuffed 0xFF or a restart marker
                    j += 2
                else:
                    break
            end = j
        if not ((0xE0 <= marker <= 0xEF and marker not in _KEPT_APP) or marker == 0xFE):
            kept.append(data[i:end])
        i = end
    return None


def mean_rgb(region: Image.Image) -> tuple[float, float, float]:
    """The mean colour of an RGB image, exactly as ``ImageStat.Stat(region).mean`` gives it (each
    band's integer sum over the pixel count), summed in C: ImageStat adds up its 768 histogram bins
    in Python (~0.2 ms a photo's three strips)."""
    import numpy as np  # loaded with the first photo checked (a screen that only shows one need not)

    r, g, b = np.asarray(region).reshape(-1, 3).sum(axis=0, dtype=np.int64).tolist()
    count = region.width * region.height
    return r / count, g / count, b / count


def _check_background(image: Image.Image, path: Path, full: tuple[int, int]) -> None:
    """Refuse a photo whose border strip (top and sides) is not white. The strip is measured on the
    photo's ``full`` size (upright) and read from ``image``, which may be decoded smaller (draft)."""
    w, h = full
    strip = max(2, w // 20)
    sx, sy = image.size[0] / w, image.size[1] / h

    def box(left: int, top: int, right: int, bottom: int) -> tuple[int, int, int, int]:
        x0, y0 = min(image.size[0] - 1, int(left * sx)), min(image.size[1] - 1, int(top * sy))
        return x0, y0, max(x0 + 1, round(right * sx)), max(y0 + 1, round(bottom * sy))

    regions = [
        image.crop(box(0, 0, w, strip)),  # top
        image.crop(box(0, 0, strip, h // 2)),  # upper left
        image.crop(box(w - strip, 0, w, h // 2)),  # upper right
    ]
    for region in regions:
        r, g, b = mean_rgb(region)
        if min(r, g, b) < WHITE_MIN or max(r, g, b) - min(r, g, b) > WHITE_MAX_SPREAD:
            raise PhotoError(
                f"照片 {path} 背景不是白色（边缘平均颜色 RGB {r:.0f},{g:.0f},{b:.0f}）：证书要求白底彩色照片"
            )


def embedded_photo(pdf: bytes, width_mm: float, source: str) -> PreparedPhoto | None:
    """The holder's photo as a certificate PDF embeds it (its one JPEG image), to embed again
    byte for byte (a reprint shows the face the certificate was issued with, whatever the photo
    file now holds); None when the PDF has no photo. PhotoError (naming ``source``) when it has
    more than one JPEG image or cannot be read."""
    import pikepdf

    try:
        with pikepdf.open(io.BytesIO(pdf)) as doc:
            found = [
                (obj.read_raw_bytes(), int(obj.Width), int(obj.Height))
                for obj in doc.objects
                if isinstance(obj, pikepdf.Stream)
                and obj.get("/Subtype") == "/Image"
                and "/DCTDecode" in _filters(obj.get("/Filter"))
            ]
    except pikepdf.PdfError as exc:
        raise PhotoError(f"无法读取 {source} 中的照片：{exc}") from None
    if len(found) > 1:
        raise PhotoError(f"{source} 中有 {len(found)} 张 JPEG 图像，无法确定哪一张是照片")
    if not found:
        return None
    jpeg, width, height = found[0]
    return PreparedPhoto(jpeg, width, height, width / (width_mm / 25.4), ())


def _filters(value: object) -> list[str]:
    """A stream's /Filter as a list of names (a PDF writes one name or an array of them)."""
    import pikepdf

    return [str(f) for f in value] if isinstance(value, pikepdf.Array) else [str(value)]
