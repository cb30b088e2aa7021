"""Draw a certificate with reportlab, exactly to its template (docs/layout.md).

The QR code is drawn as vector rectangles from the encoder's module matrix, its dark modules
spanning exactly the template's size. The matrix comes from zxing-cpp's encoder (0.7 ms per
symbol against segno's 23 ms of pure-Python mask selection; the tests check both choose the same
version). Text is laid out with the font's own single line height.
"""

from __future__ import annotations

import contextvars
import io
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import zxingcpp
from reportlab import rl_config
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen.canvas import Canvas

from certgen.exceptions import LayoutError
from certgen.payload import QR_ERROR, QR_MAX_VERSION
from certgen.pdf import flate
from certgen.pdf.fonts import CertificateFont
from certgen.pdf.photo import PreparedPhoto
from certgen.pdf.qrmask import best_mask
from certgen.pdf.template import OPTIONAL_BLOCKS, Box, FieldsBlock, Template, TextBlock, placeholders
from certgen.record import CertificateRecord

rl_config.useA85 = 0  # binary streams: ASCII85 only makes files bigger and slower to write

_deflate: contextvars.ContextVar[Callable[[bytes], bytes]] = contextvars.ContextVar("deflate", default=zlib.compress)
"""How reportlab's Flate filter compresses: zlib at its default level, as stock reportlab does, except
while :func:`render` saves a certificate (certgen.pdf.flate: ISA-L, ~0.1 ms for the font subset, page
and ToUnicode streams where zlib's default level took ~1.2 ms)."""


def _flate(data: bytes | str) -> bytes:
    return _deflate.get()(data.encode("utf8") if isinstance(data, str) else data)


# reportlab's one Flate filter (a context variable: other documents and other threads are not affected)
pdfdoc.PDFZCompress.encode = _flate

NO_LINE_START = set("，。、；：？！）》」』”’…%")
"""Characters that may not begin a line (they stay with the character before)."""


LABEL = re.compile(r"\s*[^\s：]{1,10}：")
"""A ``label：`` at the start of a paragraph (e.g. 　　评价机构：): its continuation lines hang under the
value, not under the label."""


@dataclass(frozen=True)
class Line:
    """One laid-out line."""

    text: str
    """The characters."""
    x_pt: float
    """Left end, in points from the page's left edge."""
    baseline_pt: float
    """Baseline, in points from the page's bottom edge."""


class PreparedImage(ImageReader):  # type: ignore[misc]  # reportlab has no type hints
    """A prepared JPEG handed to reportlab as it is: embedded with DCTDecode, never decoded again,
    re-compressed or hashed pixel by pixel (reportlab's ImageReader does all three)."""

    def __init__(self, jpeg: bytes, width_px: int, height_px: int) -> None:  # no super(): nothing to open
        self.fileName = "prepared.jpg"
        self._jpeg = jpeg
        self._width, self._height = width_px, height_px
        self._image = None
        self._data = self._dataA = None
        self.mode = "RGB"

    def jpeg_fh(self) -> io.BytesIO:
        return io.BytesIO(self._jpeg)

    def getSize(self) -> tuple[int, int]:
        return self._width, self._height

    def getRGBData(self) -> bytes:  # reportlab takes only its cache key from it
        return self._jpeg


Laid = list[tuple[float, list[Line]]]
"""A laid-out certificate: each block's font size and placed lines."""


def wrap(text: str, font: CertificateFont, size: float, width_pt: float, indent_pt: float = 0.0) -> list[str]:
    """Break ``text`` into lines no wider than ``width_pt`` (continuation lines ``indent_pt`` less).

    Chinese breaks between any two characters, except before closing punctuation; a run of
    Latin letters or digits is kept whole where it fits on a line.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        limit = width_pt
        tokens = _tokens(paragraph)
        for token in tokens:
            candidate = current + token
            if not current or font.width(candidate, size) <= limit:
                current = candidate
                continue
            if token[0] in NO_LINE_START and len(current) > 1:
                lines.append(current[:-1])
                current = current[-1] + token
            else:
                lines.append(current)
                current = token
            limit = width_pt - indent_pt
            while font.width(current, size) > limit and len(current) > 1:  # an overlong Latin run
                cut = len(current)
                while cut > 1 and font.width(current[:cut], size) > limit:
                    cut -= 1
                lines.append(current[:cut])
                current = current[cut:]
        lines.append(current)
    return lines


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for ch in text:
        if tokens and ch.isascii() and ch.isalnum() and tokens[-1][-1:].isascii() and tokens[-1][-1:].isalnum():
            tokens[-1] += ch
        else:
            tokens.append(ch)
    return tokens


def layout_text(block: TextBlock, text: str, font: CertificateFont, page_h_mm: float, what: str) -> list[Line]:
    """Place a text block's lines; LayoutError when they do not fit its height."""
    box = block.box
    width = box.w * mm
    lines: list[tuple[str, float]] = []  # (text, indent)
    for paragraph in text.split("\n"):
        head = LABEL.match(paragraph) if block.align == "left" else None
        indent = font.width(head.group(0), block.size_pt) if head else 0.0
        for j, line in enumerate(wrap(paragraph, font, block.size_pt, width, indent)):
            lines.append((line, indent if j else 0.0))
    step = font.line_height_em * block.size_pt * block.line_spacing
    _check_height(len(lines), step, box, what)
    top = (page_h_mm - box.y) * mm
    placed = []
    for i, (line, indent) in enumerate(lines):
        w = font.width(line, block.size_pt)
        x = box.x * mm + indent + {"left": 0.0, "center": (width - w) / 2, "right": width - w}[block.align]
        placed.append(Line(line, x, top - font.ascent_em * block.size_pt - i * step))
    return placed


def layout_fields(block: FieldsBlock, values: dict[str, str], font: CertificateFont, page_h_mm: float) -> list[Line]:
    """Place ``label：value`` lines, wrapping values under themselves (hanging indent)."""
    box, size = block.box, block.size_pt
    step = font.line_height_em * size * block.line_spacing
    top = (page_h_mm - box.y) * mm
    placed: list[Line] = []
    for field, label in block.fields:
        head = f"{label}："
        indent = font.width(head, size)
        parts = wrap(values[field], font, size, box.w * mm - indent)
        for j, part in enumerate(parts):
            text = head + part if j == 0 else part
            x = box.x * mm + (0.0 if j == 0 else indent)
            placed.append(Line(text, x, top - font.ascent_em * size - len(placed) * step))
    _check_height(len(placed), step, box, "基本信息")
    return placed


def _check_height(count: int, step: float, box: Box, what: str) -> None:
    capacity = int((box.h * mm + 0.01) // step)
    if count > capacity:
        raise LayoutError(f"{what}内容过长：需要{count}行，版面只容得下{capacity}行（{box.w:g}×{box.h:g}mm）")


def qr_symbol(text: str, mask: int | None = None) -> np.ndarray:
    """The QR symbol libzint (zxing-cpp) encodes for ``text`` at level M with the data ``mask``
    (0-7; None: libzint chooses): True = dark, no quiet zone."""
    options = {} if mask is None else {"data_mask": mask}
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level=QR_ERROR, **options)
    return np.asarray(symbol.to_image(scale=1, add_quiet_zones=False)) < 128


def qr_matrix(text: str) -> np.ndarray:
    """The module matrix (True = dark, no quiet zone) of ``text`` at level M, version <= 14, with the
    data mask the penalty rules choose (certgen.pdf.qrmask: ~0.3 ms less than libzint's own choice)."""
    first = qr_symbol(text, 0)
    version = (first.shape[0] - 17) // 4
    if version > QR_MAX_VERSION:  # the record's limits make this unreachable; kept as a guard
        raise LayoutError(f"二维码版本 {version} 超过上限 {QR_MAX_VERSION}：30mm 内模块将小于 0.40mm")
    mask = best_mask(first, 0)
    return first if mask == 0 else qr_symbol(text, mask)


def qr_path(matrix: np.ndarray) -> str:
    """PDF path operators for the dark modules, in module units, one rectangle per run in a row."""
    rows, width = matrix.shape
    padded = np.zeros((rows, width + 2), dtype=bool)
    padded[:, 1:-1] = matrix
    r, c = np.nonzero(padded[:, 1:] != padded[:, :-1])  # row by row: each run's start, then its end
    runs = np.column_stack((c[::2], r[::2], c[1::2] - c[::2]))
    return ("%d %d %d 1 re\n" * len(runs) % tuple(runs.ravel().tolist()))[:-1]


def draw_qr(canvas: Canvas, matrix: np.ndarray, box: Box, page_h_mm: float) -> int:
    """Draw the QR symbol ``matrix`` (:func:`qr_matrix`) as one filled path spanning exactly ``box``;
    returns its version."""
    n = int(matrix.shape[0])
    module = box.w * mm / n
    canvas.saveState()
    canvas.setFillColorRGB(0, 0, 0)
    canvas.transform(module, 0, 0, -module, box.x * mm, (page_h_mm - box.y) * mm)  # module grid, rows down
    canvas.addLiteral(qr_path(matrix) + "\nf")
    canvas.restoreState()
    return (n - 17) // 4


def layout(
    record: CertificateRecord,
    template: Template,
    font: CertificateFont,
    form: str = "paper",
    optional: Mapping[str, str | None] | None = None,
) -> Laid:
    """Every text line the certificate prints, placed, with its font size.

    FontError when the font lacks a printed character, LayoutError when a block overflows: the
    checks issuing runs before a number is allocated, and rendering runs again on the real number.
    ``optional``: values of the template's optional lines (``province_url``, ``print_serial``); a
    line is drawn only when its value is given, and the print serial only on the paper form.
    """
    values = placeholders(record)
    if not record.job_type:
        values["job_type"] = template.absent
    texts = {key: getattr(template, key).text.format_map(values) for key in ("title", "body", "url")}
    everything = "".join(texts.values()) + "".join(label + values[f] for f, label in template.info.fields) + "："
    font.require(everything, f"证书 {record.number or ''}（{record.name}）")
    ph = template.page_h
    laid: Laid = []
    for key, what in (("title", "证书名称"), ("body", "正文"), ("url", "网址")):
        block: TextBlock = getattr(template, key)
        laid.append((block.size_pt, layout_text(block, texts[key], font, ph, f"{record.name} 的{what}")))
    laid.append((template.info.size_pt, layout_fields(template.info, values, font, ph)))
    if form == "electronic" and template.marking is not None:
        mark = template.marking
        font.require(mark.text, "电子证书标记")
        laid.append((mark.size_pt, layout_text(mark, mark.text.format_map(values), font, ph, "电子证书标记")))
    laid += layout_optional(template, font, form, optional or {})
    return laid


def layout_optional(template: Template, font: CertificateFont, form: str, values: Mapping[str, str | None]) -> Laid:
    """The template's optional lines that have a value (no value: no line, no empty label)."""
    laid: Laid = []
    for key, block in template.optional:
        value = values.get(key)
        if not value or (key == "print_serial" and form != "paper"):
            continue
        text = block.text.format_map({key: value})
        font.require(text, OPTIONAL_BLOCKS[key])
        laid.append((block.size_pt, layout_text(block, text, font, template.page_h, OPTIONAL_BLOCKS[key])))
    return laid


def renumber(laid: Laid, sample: str, number: str, font: CertificateFont) -> Laid | None:
    """The lines laid out for the ``sample`` number, now printing ``number``; None when they may differ.

    They are the same lines when the numbers differ only in digits, every digit of the font has one
    width (tabular figures) and the sample is printed whole on one line; the real number's
    characters are checked against the font here, so nothing the check would catch is skipped.
    """
    if len(sample) != len(number) or not font.tabular_digits:
        return None
    if any(a != b and not (a.isdigit() and b.isdigit()) for a, b in zip(sample, number, strict=True)):
        return None
    if sum(line.text.count(sample) for _, lines in laid for line in lines) != 1:
        return None
    font.require(number, f"证书 {number}")
    return [
        (size, [Line(ln.text.replace(sample, number), ln.x_pt, ln.baseline_pt) for ln in lines]) for size, lines in laid
    ]


def render(
    record: CertificateRecord,
    template: Template,
    font: CertificateFont,
    qr_text: str,
    photo: PreparedPhoto | None,
    seal: bytes | None = None,
    form: str = "paper",
    laid: Laid | None = None,
    optional: Mapping[str, str | None] | None = None,
) -> bytes:
    """The certificate as a one-page PDF (reportlab's output, before finishing).

    ``seal`` (PNG) is drawn into the page of a paper certificate; an electronic one gets it as the
    appearance of its PDF signature instead (certgen.pdf.sign), and its template's marking.
    ``laid``: the record's lines as :func:`layout` placed them (laid out here when not given, with
    the ``optional`` lines' values).
    """
    laid = laid if laid is not None else layout(record, template, font, form, optional)
    ph = template.page_h

    buf = io.BytesIO()
    canvas = Canvas(
        buf, pagesize=(template.page_w * mm, ph * mm), pageCompression=1, invariant=True,
        initialFontName=font.name, initialFontSize=16,
    )  # fmt: skip
    canvas.setTitle(f"职业技能等级证书 {record.number or ''}")
    canvas.setAuthor(record.evaluator)
    canvas.setSubject(f"{record.name} {record.level_text}")
    canvas.setCreator("certkiosk")

    b = template.border
    canvas.setLineWidth(template.border_pt)
    canvas.setStrokeColorRGB(0, 0, 0)
    canvas.rect(b.x * mm, (ph - b.bottom) * mm, b.w * mm, b.h * mm, stroke=1, fill=0)

    canvas.setFillColorRGB(0, 0, 0)
    for size, lines in laid:
        canvas.setFont(font.name, size)
        for line in lines:
            if line.text:
                canvas.drawString(line.x_pt, line.baseline_pt, line.text)

    if photo is not None:
        p = template.photo
        image = PreparedImage(photo.jpeg, photo.width_px, photo.height_px)
        canvas.drawImage(image, p.x * mm, (ph - p.bottom) * mm, p.w * mm, p.h * mm)
    if seal is not None and template.seal is not None and form == "paper":
        s = template.seal
        canvas.drawImage(ImageReader(io.BytesIO(seal)), s.x * mm, (ph - s.bottom) * mm, s.w * mm, s.h * mm, mask="auto")
    draw_qr(canvas, qr_matrix(qr_text), template.qr, ph)
    canvas.showPage()
    deflate = _deflate.set(flate.compress)
    try:
        canvas.save()
    finally:
        _deflate.reset(deflate)
    return buf.getvalue()
