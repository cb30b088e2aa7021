"""``certkiosk register recover``: finish what interrupted issuing runs left (also run at every issue)."""

from __future__ import annotations

from pathlib import Path

import click

from certgen.exceptions import ConfigError
from kiosk.cli.base import passphrase_file_option, read_passphrase, station_of
from kiosk.cli.register import register


@register.command("recover")
@click.option(
    "--scan", "scan", multiple=True, type=click.Path(file_okay=False, path_type=Path),
    help="Also search this folder for PDFs of numbers not issued (repeatable). / 另行检查的输出目录。",
)  # fmt: skip
@passphrase_file_option("The institution key's passphrase: a revocation recovery makes is signed. / 口令文件。")
@click.pass_context
def register_recover(ctx: click.Context, scan: tuple[Path, ...], passphrase_file: Path | None) -> None:
    """Void unfinished numbers, publish committed PDFs, quarantine PDFs of void numbers.

    作废未完成的编号，补完已登记证书的发布，隔离作废编号的证书文件（并吊销该编号）。
    Searches every output folder the register knows, and --scan folders.
    """
    from certgen.issuing.recovery import recover_station
    from certgen.station.issuelock import issuing_lock

    station = station_of(ctx)
    if not station.home.register_path.exists():
        raise ConfigError(f"登记库 {station.home.register_path} 不存在")
    with station.register() as reg, issuing_lock(station.home.issue_lock_path):
        if station.keystore.kids():  # recovery may revoke a number: that commit is signed, as every revocation
            reg.signer = station.checkpoint_signer(reg, read_passphrase(passphrase_file))
        folders = tuple(sorted(set(reg.output_folders()) | set(scan)))
        result = recover_station(reg, station.home, station.trust, folders)
    for line in result.lines():
        click.echo(line)
    if not result:
        click.echo("没有需要恢复的内容：每个证书文件都对应已登记发证的编号")
