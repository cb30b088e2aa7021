"""``certkiosk register sign``: sign the register's current head with the institution key."""

from __future__ import annotations

from pathlib import Path

import click

from kiosk.cli.base import passphrase_file_option, read_passphrase, station_of
from kiosk.cli.register import register


@register.command("sign")
@passphrase_file_option()
@click.pass_context
def register_sign(ctx: click.Context, passphrase_file: Path | None) -> None:
    """Sign the register's head now (e.g. after a revocation made in the UI). / 立即签名登记库链头。"""
    station = station_of(ctx)
    checkpoint = station.sign_register(read_passphrase(passphrase_file))
    if checkpoint is None:
        click.echo("登记库为空，没有需要签名的记录")
        return
    click.echo(f"已签名登记库检查点：第{checkpoint.seq}条，链头 {checkpoint.head[:16]}…，密钥 {checkpoint.kid}")
