"""Certificate templates: TOML data (page, border, blocks, fonts sizes), shipped in ``certgen.assets``.

Pure: parsing and validation only. Coordinates are millimetres from the page's top-left corner.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Formatter
from typing import Any

from certgen import assets
from certgen.exceptions import TemplateError
from certgen.record import CertificateRecord

QR_CLEAR_MM = 6.0
"""Clear margin kept around the QR symbol: the 4-module quiet zone at any version >= 1 is <= 5.72 mm."""


@dataclass(frozen=True)
class Box:
    """A rectangle on the page, in millimetres from the top-left corner."""

    x: float
    """Left edge."""
    y: float
    """Top edge."""
    w: float
    """Width."""
    h: float
    """Height."""

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def grown(self, margin: float) -> Box:
        return Box(self.x - margin, self.y - margin, self.w + 2 * margin, self.h + 2 * margin)

    def overlaps(self, other: Box) -> bool:
        return self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom


@dataclass(frozen=True)
class TextBlock:
    """A block of text: a fixed text with ``{placeholders}`` from the record."""

    box: Box
    """Where the text goes; lines start at the top."""
    size_pt: float
    """Font size in points."""
    line_spacing: float
    """Multiple of the font's single line height."""
    align: str
    """``left``, ``center`` or ``right``."""
    text: str
    """The text; ``\\n`` breaks lines; long lines wrap."""


@dataclass(frozen=True)
class FieldsBlock:
    """The basic-information block: one ``label：value`` line per field, wrapped with a hanging indent."""

    box: Box
    """Where the lines go."""
    size_pt: float
    """Font size in points."""
    line_spacing: float
    """Multiple of the font's single line height."""
    fields: tuple[tuple[str, str], ...]
    """(placeholder, label) in print order."""


@dataclass(frozen=True)
class Template:
    """A certificate layout."""

    id: str
    """Short id, e.g. ``liaoning-2020``; also signed into the QR payload."""
    name: str
    """Human name."""
    source: str
    """The rule it implements."""
    page_w: float
    """Page width, mm."""
    page_h: float
    """Page height, mm."""
    border: Box
    """The border rectangle (centred on the page)."""
    border_pt: float
    """Border line width, points."""
    title: TextBlock
    """Left page, top."""
    body: TextBlock
    """Left page, middle."""
    url: TextBlock
    """Left page, bottom."""
    photo: Box
    """Right page, top: the holder's photo."""
    qr: Box
    """Right page, top: the QR code (square)."""
    info: FieldsBlock
    """Right page, bottom: basic information."""
    seal: Box | None
    """The institution's seal, if the template places one (on an electronic certificate: the
    visible appearance of the PDF signature)."""
    absent: str = "——"
    """What 工种 prints as when there is none (002 附件9: ——; 人社鉴发〔2021〕1号: --)."""
    font: str = "kai"
    """The kind of font the rule asks for: ``kai`` (华文楷体) or ``fangsong`` (仿宋); the bundled Kai
    font stands in when the station has none."""
    marking: TextBlock | None = None
    """What an electronic certificate prints to say so (e.g. 电子证书, or the R of Suzhou 2019); None:
    no marking."""
    optional: tuple[tuple[str, TextBlock], ...] = ()
    """Lines drawn only when their value is given, in print order: ``(key, block)`` with ``key`` one
    of :data:`OPTIONAL_BLOCKS` (the provincial query URL; the print serial, on paper only)."""

    def optional_block(self, key: str) -> TextBlock | None:
        """The optional block ``key`` (``province_url``, ``print_serial``), if the template has it."""
        return dict(self.optional).get(key)

    @property
    def text_blocks(self) -> dict[str, TextBlock | FieldsBlock]:
        return {"title": self.title, "body": self.body, "url": self.url, "info": self.info}


PLACEHOLDERS = (
    "name", "id_type_name", "id_number", "employer", "occupation", "occupation_code", "occupation_full",
    "job_type", "level_text", "level_grade", "level_title", "number", "issue_date", "issue_date_cn",
    "year", "evaluator", "issuer",
)  # fmt: skip


def placeholders(record: CertificateRecord) -> dict[str, str]:
    """The values a template may print, all as text."""
    from certgen.levels import LEVELS

    level = LEVELS[record.level]
    d = record.issue_date
    return {
        "name": record.name,
        "id_type_name": record.id_type_name,
        "id_number": record.id_number,
        "employer": record.employer or "——",
        "occupation": record.occupation,
        "occupation_code": record.occupation_code,
        "occupation_full": f"{record.occupation}（{record.job_type}）" if record.job_type else record.occupation,
        "job_type": record.job_type_text,
        "level_text": level.text,
        "level_grade": level.grade,
        "level_title": level.title,
        "number": record.number or "",
        "issue_date": d.isoformat(),
        "issue_date_cn": f"{d.year}年{d.month}月{d.day}日",
        "year": str(d.year),
        "evaluator": record.evaluator,
        "issuer": record.issuer or record.evaluator,
    }


_SAMPLE = dict.fromkeys(PLACEHOLDERS, "")

OPTIONAL_BLOCKS = {"province_url": "省级查询网址", "print_serial": "证书印制流水码"}
"""Optional items of 人社鉴发〔2021〕1号 a template may place, each as a table of its own name whose
text prints ``{key}``: drawn only when the value is given (the province profile's query URL; the
blank's print serial, on the paper form only). Their values are not in the record nor signed."""


class _Reader:
    """Reads one TOML table, remembering which keys were used so unknown ones can be refused."""

    def __init__(self, data: Any, where: str, source: str) -> None:
        if not isinstance(data, dict):
            raise TemplateError(f"模板 {source}：[{where}] 应为表")
        self.data, self.where, self.source, self.used = data, where, source, set[str]()

    def _get(self, key: str, default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise TemplateError(f"模板 {self.source}：[{self.where}] 缺少 {key}")
            return default
        return self.data[key]

    def number(self, key: str, *, positive: bool = True, default: Any = ...) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TemplateError(f"模板 {self.source}：[{self.where}] {key} 应为数字，实际为 {value!r}")
        if value < 0 or (positive and value == 0):
            raise TemplateError(f"模板 {self.source}：[{self.where}] {key} 应为正数，实际为 {value}")
        return float(value)

    def text(self, key: str, default: Any = ...) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise TemplateError(f"模板 {self.source}：[{self.where}] {key} 应为文本，实际为 {value!r}")
        return value

    def raw(self, key: str) -> Any:
        return self._get(key)

    def box(self, square: bool = False) -> Box:
        x, y = self.number("x_mm", positive=False), self.number("y_mm", positive=False)
        if square:
            size = self.number("size_mm")
            return Box(x, y, size, size)
        return Box(x, y, self.number("width_mm"), self.number("height_mm"))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise TemplateError(f"模板 {self.source}：[{self.where}] 有未知的键 {', '.join(unknown)}")


def _text_block(data: Any, where: str, source: str, extra: tuple[str, ...] = ()) -> TextBlock:
    r = _Reader(data, where, source)
    block = TextBlock(
        box=r.box(),
        size_pt=r.number("size_pt"),
        line_spacing=r.number("line_spacing", default=1.0),
        align=r.text("align", "left"),
        text=r.text("text"),
    )
    r.done()
    if block.align not in ("left", "center", "right"):
        raise TemplateError(f"模板 {source}：[{where}] align 应为 left、center 或 right，实际为 {block.align!r}")
    for _, name, _, _ in Formatter().parse(block.text):
        if name is not None and name not in _SAMPLE and name not in extra:
            raise TemplateError(
                f"模板 {source}：[{where}] 的文字含未知占位符 {{{name}}}，可用：{', '.join((*PLACEHOLDERS, *extra))}"
            )
    for name in extra:
        if f"{{{name}}}" not in block.text:
            raise TemplateError(f"模板 {source}：[{where}] 的文字应含占位符 {{{name}}}（{OPTIONAL_BLOCKS[name]}）")
    return block


def parse_template(data: dict[str, Any], source: str) -> Template:
    """Validate a parsed TOML template; TemplateError naming the table and key otherwise."""
    top = _Reader(data, "模板", source)
    tid, name, src = top.text("id"), top.text("name"), top.text("source")
    font_kind = top.text("font", "kai")
    absent = top.text("absent", "——")
    if font_kind not in ("kai", "fangsong"):
        raise TemplateError(f"模板 {source}：font 应为 kai 或 fangsong，实际为 {font_kind!r}")
    page = _Reader(top.raw("page"), "page", source)
    page_w, page_h = page.number("width_mm"), page.number("height_mm")
    page.done()
    border = _Reader(top.raw("border"), "border", source)
    bw, bh, bpt = border.number("width_mm"), border.number("height_mm"), border.number("line_pt")
    border.done()
    blocks = {key: _text_block(top.raw(key), key, source) for key in ("title", "body", "url")}
    photo_r = _Reader(top.raw("photo"), "photo", source)
    photo = photo_r.box()
    photo_r.done()
    qr_r = _Reader(top.raw("qr"), "qr", source)
    qr = qr_r.box(square=True)
    qr_r.done()
    info_r = _Reader(top.raw("info"), "info", source)
    info_box, info_size = info_r.box(), info_r.number("size_pt")
    spacing = info_r.number("line_spacing", default=1.0)
    raw_fields = info_r.raw("fields")
    info_r.done()
    if not isinstance(raw_fields, list) or not raw_fields:
        raise TemplateError(f"模板 {source}：[info] fields 应为 [字段, 标签] 列表")
    fields = []
    for item in raw_fields:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(s, str) for s in item)):
            raise TemplateError(f"模板 {source}：[info] fields 的每一项应为 [字段, 标签]，实际为 {item!r}")
        if item[0] not in _SAMPLE:
            raise TemplateError(f"模板 {source}：[info] 未知字段 {item[0]}，可用：{', '.join(PLACEHOLDERS)}")
        fields.append((item[0], item[1]))
    marking = _text_block(top.raw("marking"), "marking", source) if "marking" in data else None
    seal = None
    if "seal" in data:
        seal_r = _Reader(top.raw("seal"), "seal", source)
        seal = seal_r.box(square=True)
        seal_r.done()
    optional = tuple((key, _text_block(top.raw(key), key, source, (key,))) for key in OPTIONAL_BLOCKS if key in data)
    top.done()
    template = Template(
        tid, name, src, page_w, page_h,
        Box((page_w - bw) / 2, (page_h - bh) / 2, bw, bh), bpt,
        blocks["title"], blocks["body"], blocks["url"], photo, qr,
        FieldsBlock(info_box, info_size, spacing, tuple(fields)), seal, absent, font_kind, marking, optional,
    )  # fmt: skip
    _check_geometry(template, source)
    return template


def _check_geometry(t: Template, source: str) -> None:
    if t.border.w > t.page_w or t.border.h > t.page_h:
        raise TemplateError(f"模板 {source}：边框 {t.border.w}×{t.border.h}mm 大于页面")
    placed: dict[str, Box] = {
        "title": t.title.box, "body": t.body.box, "url": t.url.box, "photo": t.photo, "qr": t.qr,
        "info": t.info.box,
    }  # fmt: skip
    placed |= {key: block.box for key, block in t.optional}
    for key, box in placed.items():
        if box.x < t.border.x or box.y < t.border.y or box.right > t.border.right or box.bottom > t.border.bottom:
            raise TemplateError(f"模板 {source}：[{key}] 超出边框（{box.x},{box.y} {box.w}×{box.h}mm）")
    clear = t.qr.grown(QR_CLEAR_MM)
    for key, box in placed.items():
        if key != "qr" and box.overlaps(clear):
            raise TemplateError(f"模板 {source}：[{key}] 侵入二维码四周{QR_CLEAR_MM}mm的静区")
    for key, extra in (("seal", t.seal), ("marking", t.marking.box if t.marking else None)):
        if extra is not None and extra.overlaps(clear):
            raise TemplateError(f"模板 {source}：[{key}] 侵入二维码四周{QR_CLEAR_MM}mm的静区")


def _folders(extra_dir: Path | None) -> list[Traversable]:
    """Where templates are looked up by id: the station's own folder first, then the shipped ones."""
    return [*([extra_dir] if extra_dir is not None else []), assets.templates()]


def load_template(name_or_path: str | Path, extra_dir: Path | None = None) -> Template:
    """A template by id (from the station's ``templates/`` or the shipped ones) or by file path."""
    path: Traversable = Path(name_or_path)
    if Path(name_or_path).suffix != ".toml":
        candidates = [d / f"{name_or_path}.toml" for d in _folders(extra_dir)]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise TemplateError(f"找不到模板 {name_or_path}：可用模板为 {', '.join(available_templates(extra_dir))}")
        path = found
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise TemplateError(f"无法读取模板 {path}：{exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"模板 {path} 不是有效的 TOML：{exc}") from None
    return parse_template(data, str(path))


def available_templates(extra_dir: Path | None = None) -> list[str]:
    """The ids of every template found by :func:`load_template`, sorted."""
    names = {
        p.name.removesuffix(".toml")
        for d in _folders(extra_dir)
        if d.is_dir()
        for p in d.iterdir()
        if p.name.endswith(".toml")
    }
    return sorted(names)
