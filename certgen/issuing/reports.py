"""The tables an institution reports for a batch, in Chinese, as XLSX and CSV.

- 证书数据表 (004 附件4): one row per certificate, the exact column order of the annex.
- 结果汇总表 (002 附件7): occupation (job type) x level 5..1, subtotals and a total row.
- 数据合规审核表 (004 附件3): upload unit, file name, 职业名称 / 工种名称 / 等级 / 数量.
- 公示名册 (000 附件6): the public-notice list (ID numbers masked: it is published).
- manifest.json: every number, file and the SHA-256 of each PDF (and the 印制流水码 of its paper blank).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from certgen.cells import is_formula_like, neutralise_cell
from certgen.files import atomic_write
from certgen.idtypes import follows_gb11643, mask_id, sex_of
from certgen.labels import DATA_TABLE_FIELDS, label
from certgen.levels import LEVELS
from certgen.record import CertificateRecord

DATA_TABLE_COLUMNS = tuple(label(field) for field in DATA_TABLE_FIELDS)
SUMMARY_LEVELS = (5, 4, 3, 2, 1)
SUMMARY_COLUMNS = (
    "职业（工种）名称",
    "初级工（五级）",
    "中级工（四级）",
    "高级工（三级）",
    "技师（二级）",
    "高级技师（一级）",
    "小计",
)
PUBLIC_COLUMNS = (
    "序号", "姓名", "性别", "出生年月", "身份证号码", "学历", "专业工龄", "申报职业（工种）", "评价等级", "理论成绩",
    "技能成绩", "业绩评审成绩",
)  # fmt: skip
EDUCATION = (
    "博士研究生", "硕士研究生", "研究生", "大学本科", "本科", "大学专科", "大专", "专科", "高职", "技师学院",
    "中等职业教育", "中专", "中技", "技工学校", "职高", "高中", "普通高中", "初中", "小学", "其他",
)  # fmt: skip
"""学历 values the public-notice list accepts (GB/T 4658 groups as rosters write them)."""
SEXES = ("男", "女")
SCORE_COLUMNS = ("理论成绩", "技能成绩", "业绩评审成绩")
MAX_WORK_YEARS = 60


def _sex_from_id(record: CertificateRecord) -> str | None:
    """男/女 from an 18-character resident ID's 17th digit (GB 11643: odd is male), else None."""
    if record.id_type in (201, 237, 238) and len(record.id_number) == 18 and record.id_number[16].isdigit():
        return "男" if int(record.id_number[16]) % 2 else "女"
    return None


def _number_in(text: str, low: float, high: float) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return low <= value <= high and text.strip().lower() not in ("nan", "inf", "-inf", "infinity")


def check_public_columns(extras: dict[str, str], record: CertificateRecord) -> list[str]:
    """Problems (in Chinese) of a row's public-notice columns: 学历 from :data:`EDUCATION`, scores
    numbers 0-100, 专业工龄 0-60 years, 性别 男/女 and agreeing with a resident ID number."""
    problems = []
    education = extras.get("学历", "").strip()
    if education and education not in EDUCATION:
        problems.append(f"学历「{education}」不在可选值中（{'、'.join(EDUCATION)}）")
    for column in SCORE_COLUMNS:
        score = extras.get(column, "").strip()
        if score and not _number_in(score, 0, 100):
            problems.append(f"{column}「{score}」应为0-100之间的数字")
    years = extras.get("专业工龄", "").strip()
    if years and not _number_in(years, 0, MAX_WORK_YEARS):
        problems.append(f"专业工龄「{years}」应为0-{MAX_WORK_YEARS}之间的数字（年）")
    sex = extras.get("性别", "").strip()
    from_id = _sex_from_id(record)
    if sex and sex not in SEXES:
        problems.append(f"性别「{sex}」应为“男”或“女”")
    elif sex and from_id and sex != from_id:
        problems.append(f"性别「{sex}」与证件号码第17位（{from_id}）不符")
    return problems


@dataclass(frozen=True)
class BatchEntry:
    """One issued certificate of a batch, with what the reports need."""

    record: CertificateRecord
    """The record as signed."""
    pdf: Path
    """The PDF file."""
    pdf_sha256: str
    """SHA-256 of the PDF."""
    extras: dict[str, str] = field(default_factory=dict)
    """Public-notice columns from the roster (学历, 成绩 ...)."""
    print_serial: str | None = None
    """The 印制流水码 of the blank the paper form was printed on, as the register records it."""
    revoked: bool = False
    """Revoked (by itself, its batch or its key) when the reports were written: listed in the
    manifest, marked, and left out of the tables (not a qualified person's certificate; the row
    may have been issued again)."""


def data_table_row(r: CertificateRecord) -> list[Any]:
    """One 附件4 row: codes as the annex asks (证件类型 201, 等级 1-5, 日期 YYYY-MM-DD)."""
    return [
        r.name, str(r.id_type), r.id_number, r.employer, r.occupation, r.job_type or "", str(r.level),
        r.number or "", r.issue_date.isoformat(), r.evaluator, r.issuer,
    ]  # fmt: skip


def data_table_rows(entries: Iterable[BatchEntry]) -> list[list[Any]]:
    """附件4 rows, one per certificate."""
    return [data_table_row(e.record) for e in entries]


def _occupation(r: CertificateRecord) -> str:
    return f"{r.occupation}（{r.job_type}）" if r.job_type else r.occupation


class Tally:
    """The counts the summary tables need, kept as certificates pass (not the certificates)."""

    def __init__(self) -> None:
        self.by_occupation: dict[str, Counter[int]] = {}
        self.compliance: Counter[tuple[str, str, int]] = Counter()

    def add(self, r: CertificateRecord) -> None:
        self.by_occupation.setdefault(_occupation(r), Counter())[r.level] += 1
        self.compliance[(r.occupation, r.job_type or "", r.level)] += 1

    def summary_rows(self) -> list[list[Any]]:
        rows: list[list[Any]] = []
        total: Counter[int] = Counter()
        for name in sorted(self.by_occupation):
            c = self.by_occupation[name]
            total.update(c)
            rows.append([name, *(c[level] for level in SUMMARY_LEVELS), sum(c.values())])
        rows.append(["合  计", *(total[level] for level in SUMMARY_LEVELS), sum(total.values())])
        return rows

    def compliance_rows(self) -> list[list[Any]]:
        return [[occ, job, LEVELS[level].text, n] for (occ, job, level), n in sorted(self.compliance.items())]


def _tally(entries: Iterable[BatchEntry]) -> Tally:
    tally = Tally()
    for e in entries:
        tally.add(e.record)
    return tally


def summary_rows(entries: Iterable[BatchEntry]) -> list[list[Any]]:
    """附件7 rows: one per occupation (job type), counts at levels 5..1, subtotal; then 合计."""
    return _tally(entries).summary_rows()


def compliance_rows(entries: Iterable[BatchEntry]) -> list[list[Any]]:
    """附件3 rows: 职业名称, 工种名称, 等级, 数量."""
    return _tally(entries).compliance_rows()


def public_row(i: int, e: BatchEntry) -> list[Any]:
    """The 公示名册 row of the ``i``-th certificate; 性别 and 出生年月 come from an 18-character
    resident ID where not given."""
    r, x = e.record, e.extras
    sex, born = sex_of(r.id_type, r.id_number) or x.get("性别", ""), ""
    if follows_gb11643(r.id_type, r.id_number):
        born = f"{r.id_number[6:10]}.{r.id_number[10:12]}"
    return [
        i, r.name, sex, born, mask_id(r.id_number), x.get("学历", ""), x.get("专业工龄", ""), _occupation(r),
        LEVELS[r.level].text, x.get("理论成绩", ""), x.get("技能成绩", ""), x.get("业绩评审成绩", ""),
    ]  # fmt: skip


def public_rows(entries: Iterable[BatchEntry]) -> list[list[Any]]:
    """公示名册 rows."""
    return [public_row(i, e) for i, e in enumerate(entries, 1)]


def _safe_row(row: Sequence[Any]) -> list[Any]:
    return [neutralise_cell(v) if isinstance(v, str) else v for v in row]


class TableWriter:
    """One report table written as its rows arrive: ``title.csv`` row by row and ``title.xlsx``
    with XlsxWriter's constant-memory mode (each finished row goes to a temporary file, not into
    memory; ~2.5x faster than openpyxl's write-only mode, which cost ~0.25 ms a row and table). Both
    files appear (atomically) when the table is closed; an error leaves neither."""

    def __init__(
        self,
        stack: contextlib.ExitStack,
        folder: Path,
        title: str,
        head: Sequence[Sequence[Any]],
        columns: Sequence[str],
    ) -> None:
        import xlsxwriter

        self.paths = [folder / f"{title}.xlsx", folder / f"{title}.csv"]
        self._xlsx_fh = stack.enter_context(atomic_write(self.paths[0]))
        self._csv_fh = stack.enter_context(atomic_write(self.paths[1]))
        self._text = io.TextIOWrapper(self._csv_fh, encoding="utf-8-sig", newline="")  # BOM: Excel on a Chinese system
        self._csv = csv.writer(self._text)
        # XlsxWriter's temporary files (the rows, then the parts it zips) hold names and ID numbers:
        # they go in a private folder of their own, removed whatever happens (an error, Ctrl-C)
        scratch = tempfile.mkdtemp(prefix="certkiosk-xlsx-")
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        self._book = xlsxwriter.Workbook(self._xlsx_fh, {"constant_memory": True, "tmpdir": scratch})
        self._sheet = self._book.add_worksheet(title[:31])
        stack.push(self._unwind)
        self._formats = {  # (bold, quote prefix): text cells keep ID numbers and codes as text
            (bold, quoted): self._book.add_format({"num_format": "@", "bold": bold, "quote_prefix": quoted})
            for bold in (False, True)
            for quoted in (False, True)
        }
        self._bold = self._book.add_format({"bold": True})
        self._row = 0
        self._done = False
        for line in head:
            self.add(line)
        self.add(columns, bold=True)

    def _unwind(self, kind: type[BaseException] | None, _: object, trace: TracebackType | None) -> None:
        """An error before :meth:`close` has finished: the sheet's temporary row file is let go (its
        folder goes, the table's own files are removed by their atomic writes), and so is a zip that
        XlsxWriter was writing when it was stopped (a full disk, Ctrl-C), while its file is still
        open: left to the garbage collector, it would write into the closed file and print an
        ignored exception on the terminal."""
        if kind is None or self._done:
            return
        with contextlib.suppress(Exception):
            self._sheet.row_data_fh.close()
        while trace is not None:
            for value in list(trace.tb_frame.f_locals.values()):
                if isinstance(value, zipfile.ZipFile):
                    with contextlib.suppress(Exception):
                        value.close()
            trace = trace.tb_next

    def add(self, row: Sequence[Any], *, bold: bool = False) -> None:
        self._csv.writerow(_safe_row(row))
        sheet, at = self._sheet, self._row
        for col, value in enumerate(row):
            if isinstance(value, bool):
                sheet.write_boolean(at, col, value, self._bold if bold else None)
            elif isinstance(value, int | float) and math.isfinite(value):
                sheet.write_number(at, col, value, self._bold if bold else None)
            elif value == "":
                sheet.write_blank(at, col, None, self._formats[bold, False])
            elif value is not None:  # user text is never a formula: written as a string as it is
                text = value if isinstance(value, str) else str(value)
                sheet.write_string(at, col, text, self._formats[bold, is_formula_like(text)])
        self._row += 1

    def close(self) -> list[Path]:
        from xlsxwriter.exceptions import FileCreateError

        self._text.flush()
        self._text.detach()
        try:
            self._book.close()
        except FileCreateError as exc:  # XlsxWriter's wrapping of an OSError: a full disk is one
            if exc.args and isinstance(exc.args[0], OSError):
                raise exc.args[0] from exc
            raise
        self._done = True
        return self.paths


def write_table(
    folder: Path, title: str, head: Sequence[Sequence[Any]], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> list[Path]:
    """Write ``title.xlsx`` and ``title.csv`` atomically; returns both paths."""
    with contextlib.ExitStack() as stack:
        table = TableWriter(stack, folder, title, head, columns)
        for row in rows:
            table.add(row)
        paths = table.close()
    return paths


class BatchReports:
    """A batch's reports written as its certificates pass, in number order: the per-certificate
    rows go straight to the files (nothing is held per row), the tallies and the manifest's end
    are written by :meth:`close`. Every file appears (atomically) when the ExitStack ``stack``
    closes without an error; an error leaves none of them."""

    def __init__(self, stack: contextlib.ExitStack, folder: Path, batch_id: str, institution: str) -> None:
        self._stack, self._folder, self._institution = stack, folder, institution
        self._tally = Tally()
        self._count = 0
        self._listed = 0
        self._data = TableWriter(stack, folder, "证书数据表", [], DATA_TABLE_COLUMNS)
        self._public = TableWriter(
            stack, folder, "公示名册", [[f"{institution} 职业技能等级认定合格人员公示名册"]], PUBLIC_COLUMNS
        )
        self._manifest = folder / "manifest.json"
        self._out = io.TextIOWrapper(stack.enter_context(atomic_write(self._manifest)), encoding="utf-8", newline="\n")
        stack.push(self._unwind)
        self._out.write(_manifest_head({"batch_id": batch_id, "institution": institution}))

    def _unwind(self, kind: type[BaseException] | None, *_: object) -> None:
        """An error before :meth:`close`: the manifest's text layer lets go of its file before the
        atomic write removes it (nothing is flushed into a closed file when it is collected)."""
        if kind is not None:
            with contextlib.suppress(ValueError):  # already let go (by close)
                self._out.detach()

    def add(self, e: BatchEntry) -> None:
        """One certificate's rows (the caller gives them in number order); a revoked one's only in
        the manifest, marked."""
        self._count += 1
        item: dict[str, Any] = {
            "number": e.record.number, "name": e.record.name, "file": e.pdf.name, "sha256": e.pdf_sha256
        }  # fmt: skip
        if e.print_serial:
            item["print_serial"] = e.print_serial
        if e.revoked:
            item["revoked"] = True
        else:
            self._listed += 1
            self._tally.add(e.record)
            self._data.add(data_table_row(e.record))
            self._public.add(public_row(self._listed, e))
        self._out.write(_manifest_item(item, first=self._count == 1))

    def close(self, checkpoint: dict[str, Any] | None = None) -> list[Path]:
        """The tallies and the manifest's end (with the register's signed ``checkpoint`` after the
        batch); returns the files, which appear when the stack closes."""
        self._out.write(_manifest_tail({"count": self._count, "checkpoint": checkpoint}))
        self._out.flush()
        self._out.detach()
        written = self._data.close()
        institution, stack, folder = self._institution, self._stack, self._folder
        summary = TableWriter(
            stack, folder, "结果汇总表",
            [["企业职业技能等级认定结果汇总表"], [f"填报单位：{institution}（章）", "单位：人"]], SUMMARY_COLUMNS,
        )  # fmt: skip
        for row in self._tally.summary_rows():
            summary.add(row)
        written += summary.close()
        compliance = TableWriter(
            stack, folder, "数据合规审核表",
            [["职业技能等级证书数据合规审核表"], [f"上传单位：{institution}"], ["文件名称：证书数据表.xlsx"]],
            ("职业名称", "工种名称", "等级", "数量"),
        )  # fmt: skip
        for row in self._tally.compliance_rows():
            compliance.add(row)
        written += compliance.close()
        written += self._public.close()
        return [*written, self._manifest]


def _manifest_head(head: dict[str, Any]) -> str:
    return json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "certificates": ['


def _manifest_item(item: dict[str, Any], *, first: bool) -> str:
    return ("\n  " if first else ",\n  ") + json.dumps(item, ensure_ascii=False)


def _manifest_tail(tail: dict[str, Any]) -> str:
    return "\n ],\n" + json.dumps(tail, ensure_ascii=False, indent=1)[2:] + "\n"


_MANIFEST_TAIL = ("count", "checkpoint")


def manifest_text(doc: dict[str, Any]) -> str:
    """A batch manifest laid out as :class:`BatchReports` writes it (one certificate a line)."""
    head = {k: v for k, v in doc.items() if k != "certificates" and k not in _MANIFEST_TAIL}
    items = "".join(_manifest_item(item, first=i == 0) for i, item in enumerate(doc["certificates"]))
    return _manifest_head(head) + items + _manifest_tail({k: doc.get(k) for k in _MANIFEST_TAIL})


def update_manifest(
    folder: Path,
    papers: Mapping[str, tuple[str, str | None]],
    confirm: Callable[[str], bool] = lambda number: True,
) -> bool:
    """After a reprint: the batch manifest in ``folder`` lists each number's paper as ``papers``
    says (number -> its SHA-256 and blank), rewritten atomically once, the rest as it was.
    ``confirm(number)`` is asked only of an entry the manifest has otherwise, before it changes
    (recovery checks the file on disk then, not for every entry). False when there is no
    manifest there listing one of the numbers (a single certificate's folder), or it is not one
    this station wrote."""
    path = folder / "manifest.json"
    try:
        doc = json.loads(path.read_text("utf-8"))
        listed = [i for i in doc["certificates"] if isinstance(i, dict) and i.get("number") in papers]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    stale = []
    for item in listed:
        sha256, serial = papers[item["number"]]
        wanted = {"sha256": sha256} | ({"print_serial": serial} if serial else {})
        if any(item.get(k) != v for k, v in wanted.items()) and confirm(item["number"]):
            stale.append((item, wanted))
    for item, wanted in stale:
        item.update(wanted)
    if stale:  # nothing is written when the manifest says so already (recovery asks every time)
        with atomic_write(path) as fh:
            fh.write(manifest_text(doc).encode("utf-8"))
    return bool(listed)


def write_batch_reports(
    folder: Path,
    batch_id: str,
    institution: str,
    entries: Iterable[BatchEntry],
    *,
    checkpoint: dict[str, Any] | None = None,
) -> list[Path]:
    """Every report of a batch into ``folder``, written as the certificates pass (in the order
    given: a list is sorted by number first; an iterator must come in number order, as
    :meth:`Register.iter_batch` gives them); returns the files written.

    ``checkpoint`` is the register's signed checkpoint after the batch: kept in manifest.json, it
    lets ``register check --against manifest.json`` prove the register still holds this batch.
    """
    if isinstance(entries, list | tuple):
        entries = sorted(entries, key=lambda e: e.record.number or "")
    with contextlib.ExitStack() as stack:
        reports = BatchReports(stack, folder, batch_id, institution)
        for e in entries:
            reports.add(e)
        written = reports.close(checkpoint)
    return written
