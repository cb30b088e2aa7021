"""`certkiosk keys x509`: document-signing certificates for keys made before electronic certificates."""

from __future__ import annotations

from pathlib import Path

import click

from kiosk.cli.base import passphrase_file_option, read_passphrase, station_of
from kiosk.cli.keys import keys


@keys.command("x509")
@passphrase_file_option()
@click.option(
    "--export", "export_dir", type=click.Path(file_okay=False, path_type=Path),
    help="Write every known key's certificate as <filing>-<kid>.cer (DER) for PDF readers, and exit. "
    "/ 导出各密钥的文档签名证书（.cer），供 PDF 阅读器添加为受信证书。",
)  # fmt: skip
@click.pass_context
def keys_x509(ctx: click.Context, passphrase_file: Path | None, export_dir: Path | None) -> None:
    """Give every own key without one a document-signing certificate (for electronic certificates).

    为尚无文档签名证书的本机构密钥生成证书（签发电子证书所需），并写入信任库。
    """
    from certgen.docsign import read_certificate

    station = station_of(ctx)
    if export_dir is not None:
        from certgen.files import write_bytes_atomic

        export_dir.mkdir(parents=True, exist_ok=True)
        listed = [k.info for k in station.list_keys() if k.info.x509 is not None]
        if not listed:
            click.echo("没有带文档签名证书的密钥可导出")
        for info in listed:
            der = info.document_certificate()  # checked to name its key before it is handed out
            assert der is not None
            path = export_dir / f"{info.filing_number}-{info.kid_hex[:16]}.cer"
            write_bytes_atomic(path, der, mode=0o644)  # public: handed to PDF readers
            click.echo(f"{path}  {info.institution}  SHA-256 {read_certificate(der).sha256}")
        return
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
