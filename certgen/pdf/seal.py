"""The institution's seal image: a station's own PNG, checked when loaded, or a generated sample.

A seal is printed (paper certificates) or is the visible appearance of the PDF signature
(electronic certificates) in the template's square ``[seal]`` box. The sample seal of the demo is
red and round, with the institution's name around a star and 示例 ("sample") across it, so that
it can never pass for a real seal.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from certgen.exceptions import SealError

# Each image is checked against this module's own pixel limit from its header before decoding;
# Pillow's warning between its default limit and twice it says nothing more (set once, at import,
# never changed: Image.MAX_IMAGE_PIXELS itself is left alone, the UI opens images in threads).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


MIN_DPI = 200
"""Refused below this resolution at the printed size."""
GOOD_DPI = 300
"""Warned below this resolution."""
MAX_PIXELS = 25_000_000
ASPECT_TOLERANCE = 0.06
WHITE = 235
"""Channels at least this bright count as white background (made transparent)."""
SEAL_RED = (220, 20, 30)


@dataclass(frozen=True)
class PreparedSeal:
    """A seal ready to draw: RGBA PNG bytes with a transparent background."""

    png: bytes
    """The seal as an RGBA PNG."""
    source: str
    """Where it came from (file path or ``示例印章``)."""
    warnings: tuple[str, ...] = ()
    """Non-fatal remarks (e.g. under 300 dpi at the printed size)."""


def _transparent_white(image: Image.Image) -> Image.Image:
    """RGBA with near-white pixels made transparent (a scanned seal on white paper)."""
    rgba = image.convert("RGBA")
    r, g, b, a = rgba.split()
    white = Image.eval(Image.merge("RGB", (r, g, b)).convert("L"), lambda v: 255 if v >= WHITE else 0)
    mask = Image.eval(white, lambda v: 0 if v else 255)
    rgba.putalpha(Image.composite(mask, a, white).point(lambda v: v))
    return rgba


def prepare_seal(path: Path, size_mm: float) -> PreparedSeal:
    """Load and check a station's seal for a ``size_mm`` square box; SealError naming the problem."""
    try:
        with Image.open(path) as opened:  # the header only: the size is known before decoding
            if opened.format != "PNG":
                raise SealError(f"印章文件 {path} 应为 PNG（透明背景），实际为 {opened.format}")
            if opened.width * opened.height > MAX_PIXELS:
                raise Image.DecompressionBombError(f"{opened.width}x{opened.height}")
            opened.load()
            image = opened.copy()
    except FileNotFoundError:
        raise SealError(f"印章文件 {path} 不存在") from None
    except Image.DecompressionBombError:
        raise SealError(f"印章文件 {path} 像素过多（上限{MAX_PIXELS}）") from None
    except UnidentifiedImageError:
        raise SealError(f"印章文件 {path} 不是可识别的图片") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise SealError(f"印章文件 {path} 已损坏或不完整：{exc}") from None
    w, h = image.size
    if abs(w / h - 1) > ASPECT_TOLERANCE:
        raise SealError(f"印章 {path} 应近似正方形：{w}×{h} 像素，宽高比偏差超过{ASPECT_TOLERANCE:.0%}")
    dpi = min(w, h) / (size_mm / 25.4)
    if dpi < MIN_DPI:
        raise SealError(
            f"印章 {path} 分辨率过低：{w}×{h} 像素印成 {size_mm:g}mm 只有 {dpi:.0f} dpi，至少需要 {MIN_DPI} dpi"
        )
    notes: list[str] = []
    if dpi < GOOD_DPI:
        notes.append(f"印章 {path} 印成 {size_mm:g}mm 为 {dpi:.0f} dpi，低于建议的 {GOOD_DPI} dpi")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    rgba = image.convert("RGBA")
    if not has_alpha or rgba.getchannel("A").getextrema()[0] == 255:
        corners = [rgba.getpixel(p) for p in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))]
        if not all(isinstance(c, tuple) and min(c[:3]) >= WHITE for c in corners):
            raise SealError(f"印章 {path} 没有透明通道，且背景不是白色：请提供透明背景的 PNG")
        rgba = _transparent_white(rgba)
        notes.append(f"印章 {path} 没有透明背景：已将白色背景设为透明")
    if rgba.getchannel("A").getextrema()[1] == 0:
        raise SealError(f"印章 {path} 完全透明：没有可见内容")
    return PreparedSeal(_png(rgba), str(path), tuple(notes))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _star(cx: float, cy: float, outer: float) -> list[tuple[float, float]]:
    inner = outer * 0.382
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def sample_seal(institution: str, font_path: Path, side: int = 600) -> PreparedSeal:
    """A generated sample seal: red ring, the institution's name around a star, 示例 across it."""
    scale = 2  # drawn at twice the size and reduced: smooth edges
    n = side * scale
    image = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    red = (*SEAL_RED, 255)
    ring = n * 0.035
    draw.ellipse((ring / 2, ring / 2, n - ring / 2, n - ring / 2), outline=red, width=round(ring))
    draw.polygon(_star(n / 2, n / 2, n * 0.16), fill=red)
    name = institution.strip()[:24] or "示例机构"
    size = round(n * (0.13 if len(name) <= 12 else 0.10))
    font = ImageFont.truetype(str(font_path), size)
    radius = n / 2 - ring - size * 0.75
    span = min(math.radians(250), math.radians(21) * len(name) * size / (n * 0.13))
    for i, ch in enumerate(name):
        angle = -math.pi / 2 - span / 2 + (span * (i + 0.5) / len(name))
        glyph = Image.new("RGBA", (size * 2, size * 2), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((size, size), ch, font=font, fill=red, anchor="mm")
        glyph = glyph.rotate(-math.degrees(angle) - 90, resample=Image.Resampling.BICUBIC)
        x, y = n / 2 + radius * math.cos(angle), n / 2 + radius * math.sin(angle)
        image.alpha_composite(glyph, (round(x - size), round(y - size)))
    mark = ImageFont.truetype(str(font_path), round(n * 0.2))
    draw.text((n / 2, n * 0.74), "示例", font=mark, fill=red, anchor="mm")
    return PreparedSeal(_png(image.resize((side, side), Image.Resampling.LANCZOS)), "示例印章")
