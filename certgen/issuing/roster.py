"""Rosters: the lists of people an institution already keeps, as CSV, XLSX or JSON.

Headers are the data table's Chinese column names (004 附件4) plus 职业编码 and 照片, or the record's
English field names. CSV may be UTF-8, UTF-8 with BOM, or GB18030 (what Excel writes on a Chinese
system); the encoding is detected.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as _dt
import hashlib
import io
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certgen.exceptions import RosterChanged, RosterError
from certgen.labels import FIELD_LABELS, HEADER_ALIASES
from certgen.printserial import PRINT_SERIAL_HEADER, PRINT_SERIAL_HEADERS
from certgen.record import FIELD_NAMES

HEADERS: dict[str, str] = {text: field for field, text in FIELD_LABELS.items() if field != "template"} | HEADER_ALIASES
"""Roster header → record field."""
EXTRA_HEADERS = ("性别", "学历", "专业工龄", "理论成绩", "技能成绩", "业绩评审成绩")
"""Columns kept for the public-notice list (公示名册); not part of the certificate."""
MAX_ROWS = 100_000
"""The most data rows one roster may have; applied while reading, so a huge file is not read whole."""
OTHER_ENCODINGS = (("shift_jis", "Shift-JIS（日文）"), ("euc_jp", "EUC-JP（日文）"), ("big5", "Big5（繁体中文）"),
                   ("euc_kr", "EUC-KR（韩文）"))  # fmt: skip
"""Encodings a roster is sometimes saved in by mistake; named when a header decodes only in one of them."""


@dataclass(frozen=True)
class RosterRow:
    """One person of a roster."""

    row: int
    """The row number as the spreadsheet shows it (the header is row 1)."""
    fields: dict[str, Any]
    """Values by record field name, as read."""
    extras: dict[str, str] = field(default_factory=dict)
    """Values of the public-notice columns, by Chinese header."""


@dataclass(frozen=True)
class Roster:
    """A roster as read: its file, checked whole, and the digest of the bytes that were checked.

    The rows are not held: :attr:`rows` reads them from the file again, each time, and refuses
    (:class:`RosterChanged`) when the file is no longer the one that was checked. A 100,000-row
    roster then costs memory for one row at a time (a JSON roster is parsed whole)."""

    source: Path
    """The file."""
    encoding: str
    """``utf-8``, ``utf-8-sig``, ``gb18030``, ``xlsx`` or ``json``."""
    count: int
    """How many non-empty rows it has."""
    sha256: str
    """SHA-256 of the file's bytes as read and checked."""
    max_rows: int = MAX_ROWS
    """The row limit it was read with."""

    @property
    def rows(self) -> RosterRows:
        """Every non-empty row, read from the file again (``len`` without reading)."""
        return RosterRows(self)

    def check_unchanged(self) -> None:
        """RosterChanged unless the file still holds the bytes that were read and checked."""
        with _open_roster(self.source) as fh:
            self._same(fh)

    def _same(self, fh: io.BufferedReader) -> None:
        if _digest(fh) != self.sha256:
            raise RosterChanged(
                f"名册 {self.source} 在读取和检查之后被修改过：未按修改后的内容发证。请关闭编辑该文件的程序，"
                "重新检查名册后再发证"
            )


class RosterRows:
    """A roster's rows, read from its file on each pass (see :class:`Roster`)."""

    def __init__(self, roster: Roster) -> None:
        self.roster = roster

    def __len__(self) -> int:
        return self.roster.count

    def __iter__(self) -> Iterator[RosterRow]:
        roster = self.roster
        with _open_roster(roster.source) as fh:
            roster._same(fh)
            yield from _read(fh, roster.source, roster.max_rows)[1]


def _map_headers(headers: list[str], source: Path) -> list[str | None]:
    mapped: list[str | None] = []
    unknown = []
    for raw in headers:
        h = (raw or "").strip()
        if h in HEADERS:
            mapped.append(HEADERS[h])
        elif h in FIELD_NAMES:
            mapped.append(h)
        elif h in EXTRA_HEADERS:
            mapped.append("extra:" + h)
        elif h in PRINT_SERIAL_HEADERS:  # the paper blank's serial: not a record field (certgen.printserial)
            mapped.append("extra:" + PRINT_SERIAL_HEADER)
        elif not h:
            mapped.append(None)
        else:
            unknown.append(h)
    if unknown:
        known = "、".join([*HEADERS, *EXTRA_HEADERS, PRINT_SERIAL_HEADER])
        raise RosterError(f"名册 {source} 有无法识别的列：{'、'.join(unknown)}。可用列名：{known}（或英文字段名）")
    names = [m for m in mapped if m]
    duplicates = sorted({m for m in names if names.count(m) > 1})
    if duplicates:
        raise RosterError(f"名册 {source} 的列重复：{', '.join(duplicates)}")
    for required in ("name", "id_type", "id_number", "occupation", "occupation_code", "level", "issue_date"):
        if required not in names:
            raise RosterError(f"名册 {source} 缺少必需的列：{required}")
    return mapped


def _rows(table: Iterable[list[Any]], source: Path, max_rows: int = MAX_ROWS) -> Iterator[RosterRow]:
    """The non-empty rows of a table (its header first), one at a time, each checked as it comes."""
    lines = iter(table)
    header = next(lines, None)
    if header is None:
        raise RosterError(f"名册 {source} 是空的")
    mapped = _map_headers([str(h) if h is not None else "" for h in header], source)
    count = 0
    for index, values in enumerate(lines, start=2):
        if index > max_rows + 1:  # the header plus max_rows data rows already read
            raise RosterError(f"名册 {source} 超过{max_rows}行：请分批发证")
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        if len(values) > len(mapped) and any(v not in (None, "") for v in values[len(mapped) :]):
            raise RosterError(f"名册 {source} 第{index}行的列数多于表头")
        fields: dict[str, Any] = {}
        extras: dict[str, str] = {}
        for key, value in zip(mapped, values, strict=False):
            if key is None:
                continue
            if isinstance(value, str):
                value = value.strip() if key != "name" else value.strip(" \t\u3000")
            if key == "extra:" + PRINT_SERIAL_HEADER and isinstance(value, int | float) and not isinstance(value, bool):
                raise RosterError(
                    f"名册 {source} 第{index}行：印制流水码被存成了数字（{value}），开头的0或末几位可能已丢失；"
                    "请把该列设为文本后重新录入"
                )
            if key.startswith("extra:"):
                extras[key[6:]] = "" if value is None else str(value)
            else:
                fields[key] = value
        count += 1
        if count > max_rows:
            raise RosterError(f"名册 {source} 超过{max_rows}行：请分批发证")
        yield RosterRow(index, fields, extras)
    if not count:
        raise RosterError(f"名册 {source} 只有表头，没有数据行")


def _csv_encoding(fh: io.BufferedReader, source: Path) -> str:
    """The CSV file's encoding, found by decoding it whole, a block at a time (nothing kept)."""
    bom = fh.read(3) == b"\xef\xbb\xbf"
    for encoding in ("utf-8-sig",) if bom else ("utf-8", "gb18030"):
        fh.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while block := fh.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise RosterError(f"名册 {source} 的编码无法识别：应为 UTF-8 或 GB18030（Excel 另存为 CSV）")


def _known_headers(headers: list[str]) -> int:
    return sum(1 for h in headers if h.strip() in (*HEADERS, *FIELD_NAMES, *EXTRA_HEADERS, *PRINT_SERIAL_HEADERS))


def _check_csv_encoding(first_line: bytes, encoding: str, source: Path) -> None:
    """A GB18030 decode succeeds on almost any bytes: when the header it yields has unknown
    columns that another encoding (Shift-JIS ...) reads as known ones, name that encoding instead
    of listing mojibake; when no column is known at all, say the encoding is unrecognised."""
    if encoding != "gb18030":
        return
    header = next(csv.reader(io.StringIO(first_line.decode(encoding))), [])
    known = _known_headers(header)
    if known == len([h for h in header if h.strip()]):
        return
    for codec, label in OTHER_ENCODINGS:
        try:
            other = first_line.decode(codec)
        except UnicodeDecodeError:
            continue
        if _known_headers(next(csv.reader(io.StringIO(other)), [])) > known:
            raise RosterError(
                f"名册 {source} 的编码是 {label}，不受支持：请在 Excel 中另存为“CSV UTF-8”或 GB18030 编码的 CSV"
            )
    if not known:
        raise RosterError(
            f"名册 {source} 的编码无法识别：按 GB18030 解码后表头中没有任何已知列（{'、'.join(header)[:60]}）；"
            "请另存为 UTF-8 或 GB18030 编码的 CSV，并使用证书数据表的列名"
        )


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return value.date()
    return value


@contextlib.contextmanager
def _open_roster(path: Path) -> Iterator[io.BufferedReader]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise RosterError(f"无法读取名册 {path}：{exc.strerror}") from None
    with fh:
        yield fh


def _digest(fh: io.BufferedReader) -> str:
    """SHA-256 of the whole file, read in blocks; the file is left at its start."""
    fh.seek(0)
    digest = hashlib.file_digest(fh, "sha256").hexdigest()
    fh.seek(0)
    return digest


def read_roster(path: Path, *, max_rows: int = MAX_ROWS) -> Roster:
    """Read and check a roster of at most ``max_rows`` data rows, keeping none of them (see
    :class:`Roster`); RosterError naming the file and what is wrong."""
    with _open_roster(path) as fh:
        sha256 = _digest(fh)
        encoding, rows = _read(fh, path, max_rows)
        count = 0
        numeric_id: RosterError | None = None
        for row in rows:
            count += 1
            value = row.fields.get("id_number")
            if encoding == "xlsx" and numeric_id is None and isinstance(value, int | float):
                numeric_id = RosterError(
                    f"名册 {path} 第{row.row}行：证件号码被 Excel 存成了数字（{value}），末几位可能已丢失；"
                    "请把该列设为文本后重新录入"
                )
        if numeric_id is not None:  # after the whole file, as a too-long roster is said first
            raise numeric_id
    return Roster(path, encoding, count, sha256, max_rows)


def _read(fh: io.BufferedReader, path: Path, max_rows: int) -> tuple[str, Iterator[RosterRow]]:
    """The roster's encoding and its rows, read from ``fh`` as they are asked for."""
    suffix = path.suffix.lower()
    if suffix == ".json":  # parsed whole: JSON has no rows to stream
        try:
            doc = json.loads(fh.read().decode("utf-8-sig"))
        except RecursionError:
            raise RosterError(f"名册 {path} 不是有效的名册：JSON 嵌套层数过多") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RosterError(f"名册 {path} 不是有效的 JSON：{exc}") from None
        except ValueError:  # an integer of more digits than sys.get_int_max_str_digits()
            raise RosterError(
                f"名册 {path} 不是有效的名册：JSON 中有位数过多的数字（超过{sys.get_int_max_str_digits()}位）"
            ) from None
        items = doc if isinstance(doc, list) else [doc]
        if len(items) > max_rows:
            raise RosterError(f"名册 {path} 超过{max_rows}行：请分批发证")
        if not items or not all(isinstance(i, dict) for i in items):
            raise RosterError(f"名册 {path} 应为一个记录对象（或记录对象的列表）")
        headers = list(dict.fromkeys(k for item in items for k in item))
        table = itertools.chain([headers], ([item.get(h) for h in headers] for item in items))
        return "json", _rows(table, path, max_rows)
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            book = load_workbook(fh, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise RosterError(f"名册 {path} 不是有效的 XLSX 文件：{type(exc).__name__}") from None

        def sheet_rows() -> Iterator[list[Any]]:
            try:
                for row in book.worksheets[0].iter_rows(values_only=True):
                    yield [_xlsx_cell(v) for v in row]
            finally:
                book.close()

        return "xlsx", _rows(sheet_rows(), path, max_rows)
    if suffix in (".csv", ".txt"):
        encoding = _csv_encoding(fh, path)
        fh.seek(0)
        _check_csv_encoding(fh.readline().rstrip(b"\n"), encoding, path)
        fh.seek(0)

        def csv_rows() -> Iterator[list[Any]]:
            text = io.TextIOWrapper(fh, encoding=encoding, newline="")
            try:
                yield from csv.reader(text)
            except csv.Error as exc:
                raise RosterError(f"名册 {path} 不是有效的 CSV：{exc}") from None
            finally:  # read through or dropped: the wrapper and the file go now, not when collected
                text.close()

        return encoding, _rows(csv_rows(), path, max_rows)
    raise RosterError(f"名册 {path} 的类型 {suffix or '（无扩展名）'} 不受支持：请用 .csv、.xlsx 或 .json")
