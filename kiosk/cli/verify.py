"""`certkiosk verify`: files, folders, ZIPs, QR text and standard input."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import sys
from pathlib import Path
from typing import Any

import click

from kiosk.cli.base import Progress, cli, is_terminal, json_line, station_of


@cli.command("verify")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--text", "texts", multiple=True, help="QR text as a scanner types it (repeatable). / 二维码文本。")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per certificate. / 每张证书一行 JSON。")
@click.option("--workers", type=click.IntRange(1, 64), help="Processes (default: the core count). / 进程数。")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the PATHs' verdicts to .csv, .json or .html (not with --text or standard input). / 文件核验报告。",
)
@click.option(
    "--decoder",
    type=click.Choice(["zxing", "pyzbar"]),
    default="zxing",
    show_default=True,
    help="QR decoder. / 解码器。",
)
@click.option("--force", is_flag=True, help="Decode every file again, even unchanged ones. / 重新解码全部文件。")
@click.option(
    "--max-trust-age",
    type=click.IntRange(0),
    metavar="DAYS",
    help="Invalid when the issuer's revocation data is older than DAYS. / 吊销数据超过DAYS天即判为无效。",
)
@click.option(
    "--today", type=click.DateTime(["%Y-%m-%d"]), hidden=True,
    help="Check as of this day (ages and number rules; for tests and re-checks). / 按指定日期核验。",
)  # fmt: skip
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT|local:N",
    help="Verify on a Dask cluster (needs certkiosk[cluster]; docs/cluster.md). / 在 Dask 集群上核验。",
)
@click.pass_context
def verify_cmd(
    ctx: click.Context, paths: tuple[Path, ...], texts: tuple[str, ...], as_json: bool, workers: int | None,
    report: Path | None, decoder: str, force: bool, max_trust_age: int | None, today: _dt.datetime | None,
    scheduler: str | None,
) -> None:  # fmt: skip
    """Verify certificates offline; exit 0 if all valid, 1 if not, 2 on a usage error. / 离线核验证书。

    PATHs are images, PDFs, folders or ZIP archives (a re-run decodes again only files whose
    content changed; every trust check runs again).
    Without PATH or --text, reads QR texts from standard input, one per line (what a
    keyboard-wedge scanner types). 路径可为图片、PDF、文件夹或ZIP；否则从标准输入逐行读取扫码枪输入。
    """
    from certgen.number import load_profiles
    from verify.check import clean_scanned_text, verify_text

    if report is not None:
        from verify.report import report_format_problem

        problem = report_format_problem(report)
        if problem is not None:
            raise click.UsageError(problem)
        if not paths or texts:  # a report that left verdicts out could say "all valid" about a revoked one
            raise click.UsageError(
                f"--report {report}：报告只列出文件、文件夹或ZIP的核验结果，"
                + (
                    "--text 的结果不会写入报告，请分开核验"
                    if texts
                    else "请给出要核验的路径（标准输入的结果不写入报告）"
                )
            )
    station = station_of(ctx)
    bundle = station.trust_for_verifying()
    if max_trust_age is not None:
        bundle = dataclasses.replace(bundle, max_age_days=max_trust_age)
    profiles = load_profiles(station.home.profiles_dir)
    day = today.date() if today else None
    results = [verify_text(clean_scanned_text(t), bundle, source="--text", profiles=profiles, today=day) for t in texts]
    for result in results:
        _say(result, as_json)
    if not paths and not texts:
        if sys.stdin is None:  # closed (``<&-``): Python has no standard input at all
            raise click.UsageError("标准输入已关闭：请给出文件、文件夹或 --text")
        if is_terminal(sys.stdin):
            raise click.UsageError("请给出文件、文件夹或 --text，或用扫码枪/管道从标准输入输入")
        from kiosk.cli.stdin import verify_lines

        ok = verify_lines(sys.stdin.buffer, bundle, profiles, lambda r: _say(r, as_json), today=day)
        ctx.exit(0 if ok else 1)
    counted, valid = len(results), all(r.valid for r in results)  # the exit code: from every verdict printed
    run = None
    if paths:
        from certgen.exceptions import Interrupted
        from verify.archive import default_state_path, run_archive
        from verify.executors import Executor, LocalExecutor

        station.home.ensure()
        state = default_state_path(station.home.verify_runs_dir, list(paths))
        executor: Executor = LocalExecutor(workers or os.cpu_count() or 1)
        if scheduler is not None:
            if workers is not None:
                raise click.UsageError("--workers 只用于本机核验；本地集群的进程数请写成 --scheduler local:N")
            from verify.cluster import DaskExecutor

            executor = DaskExecutor(scheduler)
        try:
            with executor, Progress(0, "核验") as advance:
                run = run_archive(
                    list(paths), bundle, state_path=state, executor=executor, decoder=decoder,  # type: ignore[arg-type]
                    force=force, profiles=profiles, today=day,
                    progress=lambda done, total: advance(done, total, f"{executor.workers} 个进程"),
                )  # fmt: skip
        except Interrupted:
            click.echo(
                "核验已中断：已完成文件的解码结果已保存。重新运行同一命令即可继续"
                "（内容未变的文件不再解码，信任检查会全部重新执行）。",
                err=True,
            )
            ctx.exit(130)
        for result in run.results:  # streamed from the run's state file, in input order
            _say(result, as_json)
            counted += 1
            valid = valid and result.valid
    if run is not None and not as_json:
        for line in run.summary_lines():
            click.echo(line)
        if results:  # the line above counts the files only
            good = sum(r.valid for r in results)
            click.echo(f"另有 --text 二维码文本 {len(results)} 条：有效 {good}，无效 {len(results) - good}")
    if report is not None and run is not None:
        from verify.report import write_report

        write_report(run, report)
        click.echo(f"报告已写入 {report}", err=as_json)
    ctx.exit(0 if counted and valid else 1)


def _say(result: Any, as_json: bool) -> None:
    """Print one verdict at once (a scanner's operator waits for it)."""
    from certgen.cells import shown

    if as_json:
        json_line(result.summary())
    else:
        click.echo(result.line())
        for note in result.notes:
            click.echo(f"    注：{shown(note)}")
    sys.stdout.flush()
