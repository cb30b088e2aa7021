"""``certkiosk reissue``: a deliberate re-issue (补发 lost / 换发 correction) linked in the register."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from certgen.exceptions import ConfigError
from kiosk.cli.base import cli, issuer_options, read_passphrase, station_of, stop_notes_told

if TYPE_CHECKING:
    from certgen.station.register import ReissueReason


@cli.command("reissue")
@click.argument("number")
@click.option(
    "--reason", type=click.Choice(["lost", "correction"]), required=True,
    help="lost: 补发, same content, the old one stays valid; correction: 换发, the old one is revoked. / 补发或换发。",
)  # fmt: skip
@click.option("--set", "changes", multiple=True, metavar="FIELD=VALUE", help="A corrected field. / 更正的字段。")
@click.option("--issue-date", type=click.DateTime(["%Y-%m-%d"]), help="Issue date (default today). / 发证日期。")
@click.option("--photo", type=click.Path(dir_okay=False, path_type=Path), help="Photo (else the original). / 照片。")
@click.option(
    "--print-serial", metavar="SERIAL",
    help="The 印制流水码 of the new paper blank (recorded; a used blank is refused). / 新证书用纸的印制流水码。",
)  # fmt: skip
@issuer_options
@click.pass_context
def reissue_cmd(
    ctx: click.Context, number: str, reason: str, changes: tuple[str, ...], issue_date: _dt.datetime | None,
    photo: Path | None, print_serial: str | None, out_dir: Path | None, template_name: str, filing_number: str | None,
    passphrase_file: Path | None, seal: Path | None,
) -> None:  # fmt: skip
    """Re-issue a certificate under a new number linked to the old one. / 补发或换发证书（新编号关联原证书）。

    Re-running a roster never issues a person's result twice; this is the one way to do it on
    purpose. 重新运行名册不会重复发证；补发、换发只能用本命令。
    """
    from certgen.issuing.issuer import Issuer

    fields: dict[str, object] = {}
    for item in changes:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"--set 应为 字段=值，收到「{item}」")
        fields[key.strip()] = value
    station = station_of(ctx)
    if not station.home.register_path.exists():
        raise ConfigError(f"登记库 {station.home.register_path} 不存在")
    issuer = Issuer(station, read_passphrase(passphrase_file), filing_number, template_name, out_dir, seal)
    when = issue_date.date() if issue_date else _dt.date.today()
    with station.register() as reg, stop_notes_told(issuer):
        why: ReissueReason = "lost" if reason == "lost" else "correction"
        issued = issuer.reissue(
            reg, number, why, changes=fields, issue_date=when, photo=photo, print_serial=print_serial
        )
    for line in issuer.last_recovery.lines():
        click.echo(line)
    what = "补发" if reason == "lost" else "换发"
    click.echo(f"已{what}：新证书 {issued.record.number}（原证书 {number}）  {issued.path}")
    if reason == "correction":
        click.echo(f"原证书 {number} 已吊销。请重新导出信任包（certkiosk trust export）并分发给核验方。")


@cli.command("reprint")
@click.argument("number")
@click.option(
    "--print-serial", metavar="SERIAL", required=True,
    help="The 印制流水码 of the new blank (the spoiled one stays recorded). / 新证书用纸的印制流水码。",
)  # fmt: skip
@issuer_options
@click.pass_context
def reprint_cmd(
    ctx: click.Context, number: str, print_serial: str, out_dir: Path | None, template_name: str,
    filing_number: str | None, passphrase_file: Path | None, seal: Path | None,
) -> None:  # fmt: skip
    """Make a certificate's paper form again for a new blank. / 换用新证书用纸重新生成纸质证书。

    The same number and signed QR code; the new blank's 印制流水码 is printed and recorded, the
    spoiled blank stays recorded against the certificate. 编号与二维码不变；记录新用纸的流水码。
    """
    from certgen.issuing.issuer import Issuer

    station = station_of(ctx)
    if not station.home.register_path.exists():
        raise ConfigError(f"登记库 {station.home.register_path} 不存在")
    issuer = Issuer(station, read_passphrase(passphrase_file), filing_number, template_name, out_dir, seal)
    with station.register() as reg:
        path = issuer.reprint(reg, number, print_serial)
        blanks = reg.print_serials(number)
    for line in issuer.last_recovery.lines():
        click.echo(line)
    click.echo(f"已重新生成证书 {number} 的纸质版：{path}")
    click.echo(f"  本证书用过的印制流水码：{'、'.join(blanks)}（最后一个为本次用纸）")
