"""`certkiosk verify`: files, folders, ZIPs, QR text and standard input."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import sys
from pathlib import Path

import click

from certgen.number import load_profiles
from kiosk.cli.base import Progress, cli, json_line, station_of


@cli.command("verify")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--text", "texts", multiple=True, help="QR text as a scanner types it (repeatable). / 二维码文本。")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per certificate. / 每张证书一行 JSON。")
@click.option("--workers", type=click.IntRange(1, 64), help="Processes (default: the core count). / 进程数。")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write .csv, .json or .html. / 报告。")
@click.option(
    "--decoder",
    type=click.Choice(["zxing", "pyzbar"]),
    default="zxing",
    show_default=True,
    help="QR decoder. / 解码器。",
)
@click.option("--force", is_flag=True, help="Re-check files an earlier run already checked. / 重新核验全部文件。")
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
@click.pass_context
def verify_cmd(
    ctx: click.Context, paths: tuple[Path, ...], texts: tuple[str, ...], as_json: bool, workers: int | None,
    report: Path | None, decoder: str, force: bool, max_trust_age: int | None, today: _dt.datetime | None,
) -> None:  # fmt: skip
    """Verify certificates offline; exit 0 if all valid, 1 if not, 2 on a usage error. / 离线核验证书。

    PATHs are images, PDFs, folders or ZIP archives (re-runs skip files already checked).
    Without PATH or --text, reads QR texts from standard input, one per line (what a
    keyboard-wedge scanner types). 路径可为图片、PDF、文件夹或ZIP；否则从标准输入逐行读取扫码枪输入。
    """
    from verify.archive import default_state_path, run_archive
    from verify.check import clean_scanned_text, verify_text
    from verify.report import report_format_problem

    station = station_of(ctx)
    bundle = station.trust_for_verifying()
    if max_trust_age is not None:
        bundle = dataclasses.replace(bundle, max_age_days=max_trust_age)
    problem = report_format_problem(report) if report is not None else None
    if problem is not None:
        raise click.UsageError(problem)
    profiles = load_profiles(station.home.profiles_dir)
    day = today.date() if today else None
    results = [verify_text(clean_scanned_text(t), bundle, source="--text", profiles=profiles, today=day) for t in texts]
    if not paths and not texts:
        if sys.stdin.isatty():
            raise click.UsageError("请给出文件、文件夹或 --text，或用扫码枪/管道从标准输入输入")
        results = [
            verify_text(clean_scanned_text(line), bundle, source=f"stdin:{i}", profiles=profiles, today=day)
            for i, line in enumerate(sys.stdin, 1) if line.strip()
        ]  # fmt: skip
    run = None
    if paths:
        station.home.ensure()
        state = default_state_path(station.home.root / "verify-runs", list(paths))
        with Progress(0, "核验") as advance:
            run = run_archive(
                list(paths), bundle, state_path=state, workers=workers, decoder=decoder,  # type: ignore[arg-type]
                force=force, profiles=profiles, today=day, progress=lambda done, total: advance(done, total, ""),
            )  # fmt: skip
        results += run.results
    for result in results:
        if as_json:
            json_line(result.summary())
        else:
            click.echo(result.line())
            for note in result.notes:
                click.echo(f"    注：{note}")
    if run is not None and not as_json:
        totals = run.totals()
        click.echo(
            f"共 {run.files} 个文件、{len(run.results)} 张证书：有效 {totals['valid']}，无效 {totals['invalid']}，"
            f"无法读取 {totals['unreadable']}"
            + (f"（{run.resumed} 个文件沿用上次中断前的结果）" if run.resumed else "")
        )
        if run.skipped:
            click.echo(f"跳过 {len(run.skipped)} 个既非图片也非PDF的文件（如 {run.skipped[0]}）")
    if report is not None and run is not None:
        from verify.report import write_report

        write_report(run, report)
        click.echo(f"报告已写入 {report}", err=as_json)
    ctx.exit(0 if results and all(r.valid for r in results) else 1)


# --- issue -------------------------------------------------------------------------------------
