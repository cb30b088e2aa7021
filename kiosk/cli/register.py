"""`certkiosk register`: check, find and revoke."""

from __future__ import annotations

from pathlib import Path

import click

from kiosk.cli.base import CertkioskGroup, cli, json_line, passphrase_file_option, read_passphrase, station_of


@cli.group(cls=CertkioskGroup)
def register() -> None:
    """The issuance register. / 发证登记库。"""


@register.command("check")
@click.option(
    "--against", type=click.Path(dir_okay=False, path_type=Path),
    help="A batch manifest.json or register backup whose signed checkpoint the register must still hold. "
    "/ 批次清单或登记库备份：证明登记库未被清空或截断。",
)  # fmt: skip
@click.pass_context
def register_check(ctx: click.Context, against: Path | None) -> None:
    """Verify the chain, the rows, the signed checkpoint; exit 1 on tampering. / 校验审计链、登记表与签名检查点。"""
    station = station_of(ctx)
    problems = station.check_register(against)
    with station.register() as reg:
        counts = reg.counts()
        entries = len(reg.audit_entries())
        checkpoint = reg.latest_checkpoint()
    click.echo(
        f"审计日志 {entries} 条；证书：已发证 {counts['issued']}，作废 {counts['void']}，未完成 {counts['pending']}"
    )
    if checkpoint is not None:
        click.echo(f"最近的签名检查点：第{checkpoint.seq}条，{checkpoint.at}，密钥 {checkpoint.kid}")
    if problems:
        click.echo(f"发现 {len(problems)} 处问题：")
        for problem in problems:
            click.echo(f"  ✗ {problem}")
        ctx.exit(1)
    click.echo(
        "✓ 登记库完整：审计链与各登记表一致，链头有机构密钥的有效签名"
        + ("，且包含所给清单证明的全部记录" if against else "")
    )


@register.command("find")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line. / 每行一个 JSON 对象。")
@click.pass_context
def register_find(ctx: click.Context, text: str, as_json: bool) -> None:
    """Search by number, name or ID number. / 按编号、姓名或证件号码查找。"""
    from certgen.station.register import REISSUE_TEXT, STATUS_TEXT
    from certgen.trust import SCOPE_TEXT

    station = station_of(ctx)
    found = station.find_certificates(text)
    with station.register() as reg:
        links = {state.certificate.number: reg.reissue_links(state.certificate.number) for state in found}
        blanks = {state.certificate.number: reg.print_serials(state.certificate.number) for state in found}
    if not found:  # with --json, standard output stays JSON lines only (none)
        click.echo(f"没有找到包含「{text}」的证书", err=as_json)
    for state in found:
        item = state.certificate
        if as_json:
            json_line(
                {
                    "number": item.number,
                    "status": item.status,
                    "revoked": state.revoked,
                    "revocation": state.revocation.to_json() if state.revocation else None,
                    "batch_id": item.batch_id,
                    "record": item.record.to_dict(),
                    "output_path": item.output_path,
                    "print_serials": blanks[item.number],
                    "reissues": [
                        {"number": x.number, "replaces": x.replaces, "reason": x.reason, "at": x.at}
                        for x in links[item.number]
                    ],
                }
            )
            continue
        mark = f"，已吊销（{SCOPE_TEXT[state.revocation.scope]}）" if state.revocation else ""
        blank = f"  印制流水码 {'、'.join(blanks[item.number])}" if blanks[item.number] else ""
        click.echo(
            f"{item.number}  {item.record.name}  {item.record.level_text}  {STATUS_TEXT[item.status]}{mark}{blank}"
        )
        for x in links[item.number]:
            what = REISSUE_TEXT[x.reason]
            if x.number == item.number:
                click.echo(f"    {what}：替代原证书 {x.replaces}（{x.at}）")
            else:
                click.echo(f"    已{what}：新证书 {x.number}（{x.at}）")


@register.command("revoke")
@click.option("--certificate", "number", help="A certificate number. / 证书编号。")
@click.option("--batch", help="A batch id. / 批次号。")
@click.option("--key", "kid", help="A key id (hex). / 密钥标识。")
@click.option("--reason", required=True, help="Why (recorded in the audit log). / 吊销原因。")
@passphrase_file_option("File holding the passphrase (the revocation is signed). / 口令文件（吊销记录需签名）。")
@click.pass_context
def register_revoke(
    ctx: click.Context, number: str | None, batch: str | None, kid: str | None, reason: str,
    passphrase_file: Path | None,
) -> None:  # fmt: skip
    """Revoke a certificate, a whole batch or a key. / 吊销证书、整批证书或密钥。"""

    chosen = [(s, t) for s, t in (("certificate", number), ("batch", batch), ("key", kid)) if t]
    if len(chosen) != 1:
        raise click.UsageError("请恰好指定 --certificate、--batch 或 --key 之一")
    scope, target = chosen[0]
    station = station_of(ctx)
    passphrase = read_passphrase(passphrase_file)  # the revocation is signed (and so is the automatic backup)
    revocation = station.revoke(scope, target, reason, passphrase)  # type: ignore[arg-type]
    extra = f"（含 {len(revocation.numbers)} 张证书）" if revocation.numbers else ""
    click.echo(f"已吊销 {target}{extra}：{reason}")
    if station.last_backup_note:
        click.echo(station.last_backup_note)
    click.echo("请导出更新包（certkiosk trust export --since 上次序号）或完整信任包，并分发给核验方。")


# --- verify ----------------------------------------------------------------------------------
