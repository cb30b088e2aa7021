"""Archive reports: CSV, JSON or HTML by the file's extension, in Chinese.

Each gives the totals by status and by reason, and every certificate that is not valid.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from certgen.cells import neutralise_cell, shown
from certgen.exceptions import ReportError
from certgen.files import write_bytes_atomic
from certgen.labels import label
from verify.reasons import Reason
from verify.status import VERDICT_TEXT

if TYPE_CHECKING:  # the report module stays light: a command checks --report before any work
    from verify.archive import ArchiveRun

COLUMNS = ("来源", "页", "结论", "原因代码", label("name"), label("number"), label("evaluator"), "说明", "吊销数据")


def _rows(run: ArchiveRun) -> list[list[str]]:
    rows = []
    for r in run.results:
        if r.valid and not r.trust_stale:
            continue
        verdict = VERDICT_TEXT[r.status] + ("（吊销数据过旧）" if r.valid else "")
        rows.append([
            shown(cell) for cell in (
                r.source, str(r.page or ""), verdict, " ".join(x.value for x in r.reasons),
                r.claims.name if r.claims and r.intact else "", r.claims.number if r.claims else "",
                r.institution or "", "；".join(f.detail for f in r.findings), r.trust_text,
            )
        ])  # fmt: skip
    return rows


def _skipped_rows(run: ArchiveRun) -> list[list[str]]:
    return [[shown(s.source), shown(s.reason)] for s in run.skipped]


def to_csv(run: ArchiveRun) -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out)
    w.writerow(["汇总", "数量"])
    w.writerow(["文件", run.files])
    w.writerow(["跳过", len(run.skipped)])
    w.writerow(["沿用上次解码结果（信任检查已重新执行）", run.reused])
    for status, n in run.totals().items():
        w.writerow([VERDICT_TEXT[status], n])
    for code, n in run.by_reason().items():
        w.writerow([f"{code} {Reason(code).text}", n])
    w.writerow([])
    w.writerow(COLUMNS)
    w.writerows([neutralise_cell(c) for c in row] for row in _rows(run))
    if run.skipped:
        w.writerow([])
        w.writerow(["跳过的项目", "原因"])
        w.writerows([neutralise_cell(c) for c in row] for row in _skipped_rows(run))
    return out.getvalue().encode("utf-8-sig")


def to_json(run: ArchiveRun) -> bytes:
    doc = {
        "files": run.files,
        "skipped": [{"source": source, "reason": reason} for source, reason in _skipped_rows(run)],
        "reused": run.reused,
        "certificates": len(run.results),
        "totals": run.totals(),
        "by_reason": run.by_reason(),
        "not_valid": [r.summary() for r in run.results if not r.valid],
        "copies": [r.summary() for r in run.results if r.notes],
        "valid_with_old_revocation_data": [r.summary() for r in run.results if r.valid and r.trust_stale],
    }
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def to_html(run: ArchiveRun) -> bytes:
    e = html.escape
    totals = "".join(f"<tr><td>{VERDICT_TEXT[s]}</td><td>{n}</td></tr>" for s, n in run.totals().items())
    reasons = "".join(
        f"<tr><td>{e(code)}</td><td>{e(Reason(code).text)}</td><td>{n}</td></tr>" for code, n in run.by_reason().items()
    )
    rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in _rows(run))
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    skipped = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td></tr>" for a, b in _skipped_rows(run))
    page = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>证书核验报告</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #999;padding:4px 8px;text-align:left}}th{{background:#eee}}</style></head>
<body><h1>证书核验报告</h1><p>共 {run.files} 个文件，{len(run.results)} 张证书；跳过 {len(run.skipped)} 项；
{run.reused} 个文件的解码结果沿用上次运行（内容未变），信任检查已重新执行。</p>
<h2>按结论</h2><table><tr><th>结论</th><th>数量</th></tr>{totals}</table>
<h2>按原因</h2><table><tr><th>代码</th><th>含义</th><th>数量</th></tr>{reasons}</table>
<h2>未通过核验或吊销数据过旧的证书</h2><table><tr>{head}</tr>{rows}</table>
<h2>跳过的项目</h2><table><tr><th>项目</th><th>原因</th></tr>{skipped}</table></body></html>
"""
    return page.encode("utf-8")


WRITERS = {".csv": to_csv, ".json": to_json, ".html": to_html, ".htm": to_html}
"""Report formats by file extension: the one list the CLI, the UI and write_report use."""


def report_format_problem(path: Path) -> str | None:
    """None when ``path`` names a report format, else the message that says which ones there are."""
    if path.suffix.lower() in WRITERS:
        return None
    return f"报告文件 {path} 的扩展名应为 " + "、".join(WRITERS) + "（分别为CSV、JSON、HTML格式）"


def write_report(run: ArchiveRun, path: Path) -> None:
    """Write the report in the format its extension names (atomically)."""
    problem = report_format_problem(path)
    if problem is not None:
        raise ReportError(problem)
    writer = WRITERS[path.suffix.lower()]
    write_bytes_atomic(path, writer(run))
