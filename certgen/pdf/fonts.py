"""The certificate font: 华文楷体 (STKaiti) where the station has it, else the bundled LXGW WenKai.

Before anything is issued, every character of the certificate is checked against the chosen font:
a missing glyph refuses the record and names the characters (never a blank box on a certificate).
"""

from __future__ import annotations

import functools
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont, TTFontFile

from certgen import assets
from certgen.exceptions import FontError

BUNDLED_FILE = "LXGWWenKai-Regular.ttf"
STKAITI_FILES = ("STKAITI.TTF", "STKaiti.ttf", "stkaiti.ttf", "华文楷体.ttf", "STKaiti.ttc", "Kaiti.ttc")
FANGSONG_FILES = (
    "仿宋_GB2312.ttf", "FS_GB2312.ttf", "SIMFANG.TTF", "simfang.ttf", "STFANGSO.TTF", "STFangsong.ttf",
    "华文仿宋.ttf", "FangSong.ttf", "fangsong.ttf", "仿宋.ttf",
)  # fmt: skip
"""仿宋_GB2312, Windows' FangSong (simfang.ttf), 华文仿宋 (STFangsong), in order of preference."""
FONT_FILES = {"kai": STKAITI_FILES, "fangsong": FANGSONG_FILES}
"""The station fonts a template may ask for (its ``font`` key), by file name."""
FONT_NAMES = {"kai": "华文楷体", "fangsong": "仿宋"}
FAMILY_MARKS = {"kai": ("kai",), "fangsong": ("fangsong", "fangso", "simfang", "fs_gb2312", "仿宋")}
"""Substrings (lower case) of a font name that show it is of the wanted kind."""


@dataclass(frozen=True)
class CertificateFont:
    """A TrueType font registered with reportlab, with what the layout needs of its metrics."""

    path: Path
    """The font file."""
    name: str
    """The name it is registered under in reportlab."""
    family: str
    """The family name from the file, e.g. ``LXGW WenKai`` or ``STKaiti``."""
    line_height_em: float
    """Single line spacing as a multiple of the size: OS/2 usWinAscent + usWinDescent (what
    Microsoft Word calls single spacing on Windows), else hhea ascender - descender + lineGap."""
    ascent_em: float
    """Distance from the top of a line to its baseline, as a multiple of the size."""
    codepoints: frozenset[int]
    """Every code point the font maps to a glyph."""
    tabular_digits: bool = False
    """Whether the digits 0-9 all have one advance width (numbers of equal length are equally wide)."""

    def missing(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that the font has no glyph for, in order of appearance."""
        seen: dict[str, None] = {}
        for ch in text:
            if ord(ch) not in self.codepoints and not ch.isspace() and ch not in seen:
                seen[ch] = None
        return list(seen)

    def require(self, text: str, what: str) -> None:
        """FontError naming the characters of ``text`` the font lacks."""
        missing = self.missing(text)
        if missing:
            listed = "、".join(f"「{c}」(U+{ord(c):04X})" for c in missing)
            raise FontError(f"{what}含字体 {self.family} 中没有的字：{listed}；为避免证书出现空白方框，拒绝发证")

    def width(self, text: str, size: float) -> float:
        """Width of ``text`` at ``size`` points, in points."""
        return float(pdfmetrics.stringWidth(text, self.name, size))


def _metrics(face: TTFontFile) -> tuple[str, float, float, frozenset[int]]:
    head = face.get_table("head")
    upm = struct.unpack(">H", head[18:20])[0]
    os2 = face.get_table("OS/2") if "OS/2" in face.table else b""
    hhea = face.get_table("hhea")
    asc, desc, gap = struct.unpack(">hhh", hhea[4:10])
    if len(os2) >= 78:
        win_ascent, win_descent = struct.unpack(">HH", os2[74:78])
        line, ascent = (win_ascent + win_descent) / upm, win_ascent / upm
    else:
        line, ascent = (asc - desc + gap) / upm, asc / upm
    family = face.familyName.decode("utf-8", "replace") if isinstance(face.familyName, bytes) else str(face.familyName)
    return family, line, ascent, frozenset(face.charToGlyph)


def system_font_dirs() -> list[Path]:
    home = Path.home()
    dirs = [home / ".fonts", home / ".local/share/fonts", Path("/usr/share/fonts"), Path("/usr/local/share/fonts")]
    if sys.platform == "darwin":
        dirs += [Path("/Library/Fonts"), home / "Library/Fonts", Path("/System/Library/Fonts")]
    if os.name == "nt":
        dirs.append(Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts")
    return dirs


def find_stkaiti(extra: list[Path] | None = None) -> Path | None:
    """The station's 华文楷体 file, searching the given folders and the system font folders."""
    return find_font("kai", extra)


def find_font(kind: str, extra: list[Path] | None = None) -> Path | None:
    """The station's font of this kind (``kai``, ``fangsong``), searching the given and system folders."""
    for folder in [*(extra or []), *system_font_dirs()]:
        if not folder.is_dir():
            continue
        for name in FONT_FILES[kind]:
            hits = list(folder.rglob(name))
            if hits:
                return hits[0]
    return None


class _TableSlices:
    """A font table read in place: slicing copies only the slice (reportlab's subsetting slices
    the glyph table per glyph, but copied the whole 15.7 MB table for every document first)."""

    def __init__(self, view: memoryview) -> None:
        self._view = view

    def __len__(self) -> int:
        return len(self._view)

    def __getitem__(self, index: slice) -> bytes:
        return bytes(self._view[index])


def _share_tables(face: TTFontFile) -> None:
    """Serve the font's tables from one parse for every document of the process (and of the
    worker processes forked after it): small tables are read once, the glyph table in place."""
    data = memoryview(face._ttf_data)
    read = face.get_table
    tables: dict[str, bytes] = {}

    def get_table(tag: str) -> bytes | _TableSlices:
        if tag == "glyf":
            pos, length = face.get_table_pos(tag)
            return _TableSlices(data[pos : pos + length])
        if tag not in tables:
            tables[tag] = read(tag)
        return tables[tag]

    face.get_table = get_table


@functools.cache
def load_font(path: Path) -> CertificateFont:
    """Register a TrueType font file with reportlab (once per process)."""
    if path.suffix.lower() == ".ttc":
        raise FontError(f"字体 {path} 是字体集（.ttc），请提供单个 .ttf 文件")
    try:
        name = f"ck-{path.stem}"
        if name in pdfmetrics.getRegisteredFontNames():
            font = pdfmetrics.getFont(name)
        else:
            font = TTFont(name, str(path))  # the file is parsed once, for reportlab and for the metrics
            _share_tables(font.face)
            pdfmetrics.registerFont(font)
        family, line, ascent, codepoints = _metrics(font.face)
    except (OSError, ValueError, struct.error, KeyError) as exc:
        raise FontError(f"无法使用字体文件 {path}：{exc}") from None
    tabular = len({pdfmetrics.stringWidth(d, name, 10) for d in "0123456789"}) == 1
    return CertificateFont(path, name, family, line, ascent, codepoints, tabular)


def is_kind(font_name: str, kind: str) -> bool:
    """Whether a font's name (family or PDF BaseFont) shows it is of ``kind``."""
    lowered = font_name.lower()
    return any(mark in lowered for mark in FAMILY_MARKS[kind])


def choose_font(configured: Path | None = None, search: list[Path] | None = None, kind: str = "kai") -> CertificateFont:
    """The configured font, else the template's kind of font (华文楷体, 仿宋) if the station has it,
    else the bundled LXGW WenKai (a Kai font) standing in."""
    if configured is not None:
        if not configured.is_file():
            raise FontError(f"配置的字体文件 {configured} 不存在")
        return load_font(configured.resolve())
    found = find_font(kind, search)
    if found is not None and found.suffix.lower() == ".ttf":
        return load_font(found.resolve())
    return bundled_font()


def bundled_font() -> CertificateFont:
    """The bundled LXGW WenKai, whatever fonts the station has."""
    path = assets.font_file(BUNDLED_FILE)
    if not path.is_file():
        raise FontError(f"找不到内置字体 {path}：安装不完整")
    return load_font(path.resolve())
