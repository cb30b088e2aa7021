"""`certkiosk keys x509`: document-signing certificates for keys made before electronic certificates."""

from __future__ import annotations

from pathlib import Path

import click

from kiosk.cli.base import passphrase_file_option, read_passphrase, station_of
from kiosk.cli.keys import keys


@keys.command("x509")
@passphrase_file_option()
@click.pass_context
def keys_x509(ctx: click.Context, passphrase_file: Path | None) -> None:
    """Give every own key without one a document-signing certificate (for electronic certificates).

    为尚无文档签名证书的本机构密钥生成证书（签发电子证书所需），并写入信任库。
    """
    from certgen.docsign import read_certificate

    station = station_of(ctx)
    done = station.add_x509(read_passphrase(passphrase_file))
    if not done:
        click.echo("所有本站密钥均已有文档签名证书")
    for info in done:
        assert info.x509 is not None
        identity = read_certificate(info.x509)
        click.echo(f"密钥 {info.kid_hex}（{info.institution}）：已生成文档签名证书（ECDSA P-256）")
        click.echo(f"  证书 SHA-256：{identity.sha256}")
        click.echo(f"  私钥（已加密，权限0600）：{station.keystore.x509_key_path(info.kid)}")
    if done:
        click.echo("请重新导出信任包（certkiosk trust export）并分发给核验站点")
