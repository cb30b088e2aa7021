"""Archive reports: CSV, JSON or HTML by the file's extension, in Chinese.

Each gives the totals by status and by reason, and every certificate that is not valid.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from certgen.cells import neutralise_cell, shown
from certgen.exceptions import ReportError
from certgen.files import atomic_write
from certgen.labels import label
from verify.reasons import Reason
from verify.status import VERDICT_TEXT

if TYPE_CHECKING:  # the report module stays light: a command checks --report before any work
    from verify.archive import ArchiveRun

COLUMNS = ("来源", "页", "结论", "原因代码", label("name"), label("number"), label("evaluator"), "说明", "吊销数据")


def _rows(run: ArchiveRun) -> Iterator[list[str]]:
    """The report's rows (see COLUMNS), from each result's summary_fields, as the CLI and the UI,
    streamed from the run's state in input order."""
    for r in run.select("reported"):
        fields = r.summary_fields()
        got = dict(fields)
        verdict = VERDICT_TEXT[r.status] + ("（吊销数据过旧）" if r.valid else "")
        details = "；".join(value.split("：", 1)[-1] for label, value in fields if label == "原因")
        yield [
            got["来源"].rsplit(" 第", 1)[0], str(r.page or ""), verdict, " ".join(x.value for x in r.reasons),
            got.get("姓名", ""), got.get("证书编号", ""), (r.institution and shown(r.institution)) or "", details,
            got.get("吊销数据", ""),
        ]  # fmt: skip


def _skipped_rows(run: ArchiveRun) -> Iterator[list[str]]:
    return ([shown(s.source), shown(s.reason)] for s in run.skipped)


def write_csv(run: ArchiveRun, out: BinaryIO) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    try:
        w = csv.writer(text)
        w.writerow(["汇总", "数量"])
        w.writerow(["文件", run.files])
        skipped = len(run.skipped)
        w.writerow(["跳过", skipped])
        w.writerow(["沿用上次解码结果（信任检查已重新执行）", run.reused])
        for status, n in run.totals().items():
            w.writerow([VERDICT_TEXT[status], n])
        for code, n in run.by_reason().items():
            w.writerow([f"{code} {Reason(code).text}", n])
        w.writerow([])
        w.writerow(COLUMNS)
        w.writerows([neutralise_cell(c) for c in row] for row in _rows(run))
        if skipped:
            w.writerow([])
            w.writerow(["跳过的项目", "原因"])
            w.writerows([neutralise_cell(c) for c in row] for row in _skipped_rows(run))
        text.flush()
    finally:
        text.detach()  # the caller closes ``out``


def _json_list(out: BinaryIO, items: Iterator[Any]) -> None:
    """A list inside the report's top object, as ``json.dumps(indent=1)`` writes it, one item at a time."""
    first = True
    for item in items:
        body = json.dumps(item, ensure_ascii=False, indent=1).replace("\n", "\n  ")
        out.write((("[\n  " if first else ",\n  ") + body).encode())
        first = False
    out.write(b"[]" if first else b"\n ]")


def write_json(run: ArchiveRun, out: BinaryIO) -> None:
    """The same bytes as ``json.dumps(doc, ensure_ascii=False, indent=1)`` of the whole report, streamed."""
    out.write(b'{\n "files": ' + json.dumps(run.files).encode() + b',\n "skipped": ')
    _json_list(out, ({"source": source, "reason": reason} for source, reason in _skipped_rows(run)))
    for name, value in (("reused", run.reused), ("certificates", len(run.results)), ("totals", run.totals()),
                        ("by_reason", run.by_reason())):  # fmt: skip
        body = json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n ")
        out.write(f',\n "{name}": {body}'.encode())
    for name, which in (("not_valid", "not_valid"), ("copies", "noted"), ("valid_with_old_revocation_data", "stale")):
        out.write(f',\n "{name}": '.encode())
        _json_list(out, (r.summary() for r in run.select(which)))
    out.write(b"\n}\n")


def write_html(run: ArchiveRun, out: BinaryIO) -> None:
    e = html.escape
    totals = "".join(f"<tr><td>{VERDICT_TEXT[s]}</td><td>{n}</td></tr>" for s, n in run.totals().items())
    reasons = "".join(
        f"<tr><td>{e(code)}</td><td>{e(Reason(code).text)}</td><td>{n}</td></tr>" for code, n in run.by_reason().items()
    )
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    out.write(
        f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>证书核验报告</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #999;padding:4px 8px;text-align:left}}th{{background:#eee}}</style></head>
<body><h1>证书核验报告</h1><p>共 {run.files} 个文件，{len(run.results)} 张证书；跳过 {len(run.skipped)} 项；
{run.reused} 个文件的解码结果沿用上次运行（内容未变），信任检查已重新执行。</p>
<h2>按结论</h2><table><tr><th>结论</th><th>数量</th></tr>{totals}</table>
<h2>按原因</h2><table><tr><th>代码</th><th>含义</th><th>数量</th></tr>{reasons}</table>
<h2>未通过核验或吊销数据过旧的证书</h2><table><tr>{head}</tr>""".encode()
    )
    for row in _rows(run):
        out.write(("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>").encode())
    out.write("</table>\n<h2>跳过的项目</h2><table><tr><th>项目</th><th>原因</th></tr>".encode())
    for a, b in _skipped_rows(run):
        out.write(f"<tr><td>{e(a)}</td><td>{e(b)}</td></tr>".encode())
    out.write(b"</table></body></html>\n")


def _in_memory(writer: Callable[[ArchiveRun, BinaryIO], None]) -> Callable[[ArchiveRun], bytes]:
    def whole(run: ArchiveRun) -> bytes:
        out = io.BytesIO()
        writer(run, out)
        return out.getvalue()

    whole.__doc__ = f"The report as bytes (small runs and tests; :func:`write_report` streams): {writer.__name__}."
    return whole


to_csv = _in_memory(write_csv)
to_json = _in_memory(write_json)
to_html = _in_memory(write_html)


WRITERS = {".csv": write_csv, ".json": write_json, ".html": write_html, ".htm": write_html}
"""Report formats by file extension: the one list the CLI, the UI and write_report use."""


def report_format_problem(path: Path) -> str | None:
    """None when ``path`` names a report format, else the message that says which ones there are."""
    if path.suffix.lower() in WRITERS:
        return None
    return f"报告文件 {path} 的扩展名应为 " + "、".join(WRITERS) + "（分别为CSV、JSON、HTML格式）"


def write_report(run: ArchiveRun, path: Path) -> None:
    """Write the report in the format its extension names (atomically), streaming the results."""
    problem = report_format_problem(path)
    if problem is not None:
        raise ReportError(problem)
    writer = WRITERS[path.suffix.lower()]
    with atomic_write(path) as out:
        writer(run, out)
