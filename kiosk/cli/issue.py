"""`certkiosk issue`: batch issuance from a roster."""

from __future__ import annotations

from pathlib import Path

import click

from kiosk.cli.base import Progress, cli, issuer_options, read_passphrase, station_of, stop_notes_told


@cli.command("issue")
@click.argument("roster", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--photos", type=click.Path(file_okay=False, path_type=Path), help="Folder of photos named in 照片. / 照片目录。"
)
@issuer_options
@click.option(
    "--electronic", is_flag=True,
    help="Electronic certificates: PDFs signed with the institution's seal (PAdES). / 签发电子证书。",
)  # fmt: skip
@click.option(
    "--paper/--no-paper", "paper", default=None,
    help="With --electronic, also make the paper copy (same number). / 同时生成纸质版（同一编号）。",
)  # fmt: skip
@click.option("--tsa-url", help="RFC 3161 time-stamping URL (online stations only). / 时间戳服务地址。")
@click.option("--skip-invalid", is_flag=True, help="Issue the valid rows, list the others. / 跳过无效行。")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True,
    help="Processes that issue, this one included. / 发证进程数（含本进程）。",
)  # fmt: skip
@click.pass_context
def issue_cmd(
    ctx: click.Context, roster: Path, photos: Path | None, out_dir: Path | None, template_name: str,
    filing_number: str | None, passphrase_file: Path | None, seal: Path | None, electronic: bool,
    paper: bool | None, tsa_url: str | None, skip_invalid: bool, workers: int,
) -> None:  # fmt: skip
    """Issue certificates from a roster (CSV, XLSX or JSON). / 按名册批量发证。

    Every row is checked first; by default nothing is issued if any row is bad. Re-running the
    same roster completes an interrupted batch without issuing anyone twice. An optional column
    印制流水码 gives the serial of each paper blank (recorded; a used blank is refused).
    先检查所有行，有错误则（默认）不发任何证书；重新运行同一名册可续发中断的批次。
    可选列“印制流水码”填写每张纸质证书用纸的流水码（记入登记库，同一张用纸不能用两次）。
    """
    from certgen.issuing.batch import batch_id_of, plan_batch, run_batch
    from certgen.issuing.issuer import Issuer
    from certgen.issuing.roster import read_roster

    station = station_of(ctx)
    passphrase = read_passphrase(passphrase_file)
    forms = ("paper", "electronic") if electronic and paper else ("electronic",) if electronic else ("paper",)
    issuer = Issuer(station, passphrase, filing_number, template_name, out_dir, seal, forms=forms, tsa_url=tsa_url)
    data = read_roster(roster)
    assert issuer.out_dir is not None
    folder = issuer.out_dir / batch_id_of(data)
    # one issuing run per station: recover, plan and issue under the lock (certgen.station.issuelock)
    with station.register() as reg, issuer.locked(reg, (folder,)) as recovery:
        for line in recovery.lines():
            click.echo(line)
        plan = plan_batch(issuer, reg, data, photos)
        click.echo(f"名册 {roster}（{data.encoding}）：{len(data.rows)} 行，批次 {plan.batch_id}")
        if plan.done:
            click.echo(f"其中 {len(plan.done)} 行的证书已发（登记库中有有效证书），将跳过")
        if plan.problems:
            click.echo(f"发现 {len(plan.problems)} 处错误：", err=True)
            for problem in plan.problems:
                click.echo(f"  ✗ {problem}", err=True)
            if not skip_invalid:
                click.echo("未发任何证书。请修正名册后重新运行，或用 --skip-invalid 只发有效行。", err=True)
                ctx.exit(1)
        from certgen.exceptions import Interrupted

        with stop_notes_told(issuer):
            try:
                with Progress(len(plan.to_issue), "发证") as advance:
                    result = run_batch(issuer, plan, skip_invalid=skip_invalid, workers=workers, progress=advance)
            except Interrupted:
                click.echo(
                    "发证已中断：已签发的证书已记入登记簿，进程已全部停止。重新运行同一命令即可续发（不会重复发证）。",
                    err=True,
                )
                ctx.exit(130)
    for row, name, existing in result.already:
        click.echo(f"  已发：第{row}行 {name}，证书 {existing}")
    for note in result.blank_notes():
        click.echo(f"  {note}")
    click.echo(f"本次发证 {result.issued} 张，跳过已发 {result.skipped} 张；证书与报表在 {result.folder}")
    for path in result.reports:
        click.echo(f"  {path.name}")
    if station.last_backup_note:
        click.echo(station.last_backup_note)
    ctx.exit(1 if result.problems else 0)
