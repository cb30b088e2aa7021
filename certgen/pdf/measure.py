"""Measure a certificate PDF (ours or another system's) against a template.

Measured with pdfplumber from what is actually drawn: the page box, the largest stroked rectangle
(the border) and its line width, the size of the characters inside each text block, the span of
the QR code's dark modules (or a square image where the QR is) and where it sits, the photo image,
whether anything is drawn inside the QR code's 4-module quiet zone, and whether every font the
page uses is embedded (a PDF without its fonts prints with whatever the printer substitutes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certgen.exceptions import CertkioskError
from certgen.pdf.template import OPTIONAL_BLOCKS, Box, Template

PT_PER_MM = 72 / 25.4
MM_TOLERANCE = 0.2
PT_TOLERANCE = 0.1


@dataclass(frozen=True)
class Measurement:
    """One row of the layout report."""

    item: str
    """What was measured, in Chinese."""
    expected: float
    """The template's value."""
    actual: float | None
    """What the PDF has (None: not found)."""
    unit: str
    """``mm`` or ``pt``."""

    @property
    def tolerance(self) -> float:
        return MM_TOLERANCE if self.unit == "mm" else PT_TOLERANCE

    @property
    def deviation(self) -> float | None:
        return None if self.actual is None else self.actual - self.expected

    @property
    def ok(self) -> bool:
        return self.deviation is not None and abs(self.deviation) <= self.tolerance + 1e-9


def _mm(points: float) -> float:
    return points / PT_PER_MM


def _inside(obj: dict[str, Any], box: Box) -> bool:
    cx, cy = _mm((obj["x0"] + obj["x1"]) / 2), _mm((obj["top"] + obj["bottom"]) / 2)
    return box.x <= cx <= box.right and box.y <= cy <= box.bottom


def _text_size(page: Any, box: Box, expected: float) -> float | None:
    """The size of the characters drawn inside ``box`` (the one furthest from ``expected`` when they
    differ); None when nothing is drawn there."""
    sizes = Counter(round(float(c["size"]), 2) for c in page.chars if _inside(c, box) and c["text"].strip())
    if not sizes:
        return None
    return max(sizes, key=lambda s: abs(s - expected))


def measure(pdf_path: Path, template: Template) -> tuple[list[Measurement], list[str]]:
    """Measurements and problems (marks in the QR quiet zone, missing elements)."""
    import pdfplumber
    from pdfminer.pdfparser import PDFSyntaxError

    try:
        pdf = pdfplumber.open(pdf_path)
    except (OSError, PDFSyntaxError, ValueError) as exc:
        raise CertkioskError(f"无法读取PDF {pdf_path}：{exc}") from None
    with pdf:
        if not pdf.pages:
            raise CertkioskError(f"PDF {pdf_path} 没有页面")
        page = pdf.pages[0]
        rows: list[Measurement] = [
            Measurement("页面宽度", template.page_w, _mm(float(page.width)), "mm"),
            Measurement("页面高度", template.page_h, _mm(float(page.height)), "mm"),
        ]
        stroked = [r for r in page.rects if r.get("stroke")]
        border = max(stroked, key=lambda r: r["width"] * r["height"], default=None)
        rows += [
            Measurement("边框左边距", template.border.x, _mm(border["x0"]) if border else None, "mm"),
            Measurement("边框上边距", template.border.y, _mm(border["top"]) if border else None, "mm"),
            Measurement("边框宽度", template.border.w, _mm(border["width"]) if border else None, "mm"),
            Measurement("边框高度", template.border.h, _mm(border["height"]) if border else None, "mm"),
            Measurement("边框线宽", template.border_pt, float(border["linewidth"]) if border else None, "pt"),
        ]
        labels = {"title": "证书名称字号", "body": "正文字号", "url": "网址字号", "info": "基本信息字号"}
        for key, block in template.text_blocks.items():
            rows.append(Measurement(labels[key], block.size_pt, _text_size(page, block.box, block.size_pt), "pt"))
        for key, optional in template.optional:  # measured like the others where drawn; absent: optional
            actual = _text_size(page, optional.box, optional.size_pt)
            if actual is not None:
                rows.append(Measurement(f"{OPTIONAL_BLOCKS[key]}字号", optional.size_pt, actual, "pt"))

        modules = [r for r in page.rects if r.get("fill") and not r.get("stroke") and r["height"] < 3 * PT_PER_MM]
        qr_box: tuple[float, float, float, float] | None = None
        module_pt = 0.0
        if modules:
            qr_box = (
                min(r["x0"] for r in modules), min(r["top"] for r in modules),
                max(r["x1"] for r in modules), max(r["bottom"] for r in modules),
            )  # fmt: skip
            module_pt = min(r["height"] for r in modules)
        images = sorted(page.images, key=lambda i: i["width"] * i["height"], reverse=True)
        squares = [i for i in images if abs(i["width"] - i["height"]) < 0.5 and _mm(i["width"]) < 60]
        if qr_box is None and squares:
            q = squares[0]
            qr_box = (q["x0"], q["top"], q["x1"], q["bottom"])
            module_pt = (q["x1"] - q["x0"]) / 25  # unknown version: assume a conservative 25 modules
        rows += [
            Measurement("二维码左边距", template.qr.x, _mm(qr_box[0]) if qr_box else None, "mm"),
            Measurement("二维码上边距", template.qr.y, _mm(qr_box[1]) if qr_box else None, "mm"),
            Measurement("二维码宽度", template.qr.w, _mm(qr_box[2] - qr_box[0]) if qr_box else None, "mm"),
            Measurement("二维码高度", template.qr.h, _mm(qr_box[3] - qr_box[1]) if qr_box else None, "mm"),
        ]
        photos = [i for i in images if not squares or i is not squares[0]]
        photo = photos[0] if photos else None
        rows += [
            Measurement("照片宽度", template.photo.w, _mm(photo["width"]) if photo else None, "mm"),
            Measurement("照片高度", template.photo.h, _mm(photo["height"]) if photo else None, "mm"),
        ]
        problems = []
        if qr_box is not None:
            quiet = 4 * module_pt
            x0, top, x1, bottom = qr_box[0] - quiet, qr_box[1] - quiet, qr_box[2] + quiet, qr_box[3] + quiet
            module_set = {id(r) for r in modules}
            intruders = [
                o for o in [*page.chars, *page.rects, *page.images, *page.lines, *page.curves]
                if id(o) not in module_set and o.get("x1", 0) > x0 and o.get("x0", 0) < x1
                and o.get("bottom", 0) > top and o.get("top", 0) < bottom
                and not (squares and o is squares[0]) and o is not border
            ]  # fmt: skip
            if intruders:
                problems.append(f"二维码四周4个模块（{_mm(quiet):.2f}mm）的静区内有{len(intruders)}个其他标记")
    problems += [f"字体 {name} 没有嵌入PDF（打印时会被替换成别的字体）" for name in unembedded_fonts(pdf_path)]
    return rows, problems


def unembedded_fonts(pdf_path: Path) -> list[str]:
    """The names of the first page's fonts whose font program is not in the PDF (Type 3 fonts
    are drawn by the PDF itself and count as embedded)."""
    import pikepdf

    try:
        pdf = pikepdf.open(pdf_path)
    except (OSError, pikepdf.PdfError) as exc:
        raise CertkioskError(f"无法读取PDF {pdf_path}：{exc}") from None
    missing: list[str] = []
    with pdf:
        fonts = pdf.pages[0].resources.get("/Font", pikepdf.Dictionary())
        for font in fonts.values():
            if font.get("/Subtype") == "/Type3":
                continue
            described = font.DescendantFonts[0] if font.get("/Subtype") == "/Type0" else font
            descriptor = described.get("/FontDescriptor", pikepdf.Dictionary())
            if not any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")):
                missing.append(str(font.get("/BaseFont", "?")).lstrip("/"))
    return sorted(set(missing))


def font_note(pdf_path: Path, template: Template) -> str:
    """Which font the PDF's text uses, and whether it stands in for the template's (e.g. 仿宋)."""
    import pdfplumber

    from certgen.pdf.fonts import FONT_NAMES, is_kind

    with pdfplumber.open(pdf_path) as pdf:
        names = Counter(str(c.get("fontname", "")) for c in pdf.pages[0].chars if c["text"].strip())
    if not names:
        return "字体：页面上没有文字"
    used = names.most_common(1)[0][0].split("+")[-1]
    wanted = FONT_NAMES[template.font]
    if is_kind(used, template.font):
        return f"字体：{used}（模板要求{wanted}）"
    return f"字体：模板要求{wanted}，本PDF使用 {used} 代替"


def _pad(text: str, width: int, right: bool = False) -> str:
    """Pad to ``width`` terminal columns, counting Chinese characters as two."""
    import unicodedata

    cols = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    fill = " " * max(0, width - cols)
    return fill + text if right else text + fill


def report(rows: list[Measurement], problems: list[str]) -> list[str]:
    """The measurement table as text lines, in Chinese."""
    lines = [_pad("项目", 14) + _pad("规格", 11, True) + _pad("实测", 10, True) + _pad("偏差", 9, True) + "  结果"]
    for m in rows:
        actual = "未找到" if m.actual is None else f"{m.actual:.2f}"
        dev = "" if m.deviation is None else f"{m.deviation:+.2f}"
        verdict = "✓" if m.ok else "✗ 超差"
        lines.append(
            _pad(m.item, 14) + _pad(f"{m.expected:.2f}{m.unit}", 11, True) + _pad(actual, 10, True)
            + _pad(dev, 9, True) + "  " + verdict
        )  # fmt: skip
    lines += [f"✗ {p}" for p in problems]
    return lines
