"""`certkiosk keys` and `certkiosk trust`: institution keys and the trust store."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import click

from certgen.trust import SCOPE_TEXT, grouped_fingerprint
from kiosk.cli.base import CertkioskGroup, cli, json_line, read_passphrase, station_of


@cli.group(cls=CertkioskGroup)
def keys() -> None:
    """Institution signing keys. / 机构签名密钥。"""


@keys.command("new")
@click.option(
    "--institution", "filing_number", required=True, help="Filing number, 13 characters. / 机构备案号（13位）。"
)
@click.option("--name", required=True, help="Institution name as filed. / 机构名称（与备案一致）。")
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the passphrase. / 口令文件。",
)
@click.option("--valid-from", type=click.DateTime(["%Y-%m-%d"]), help="First valid day (default today). / 生效日期。")
@click.option("--years", type=int, default=10, show_default=True, help="Validity in years. / 有效年限。")
@click.pass_context
def keys_new(
    ctx: click.Context, filing_number: str, name: str, passphrase_file: Path | None,
    valid_from: _dt.datetime | None, years: int,
) -> None:  # fmt: skip
    """Create the institution's key (rolls over an existing one). / 创建机构密钥（已有则轮换）。"""
    station = station_of(ctx)
    passphrase = read_passphrase(passphrase_file, confirm=True)
    info, previous = station.new_key(
        filing_number, name, passphrase, valid_from=valid_from.date() if valid_from else None, years=years
    )
    click.echo(f"已创建密钥 {info.kid_hex}：{info.filing_number} {info.institution}")
    click.echo(
        f"有效期 {info.valid_from.isoformat()} 至 {info.valid_until.isoformat() if info.valid_until else '长期'}"
    )
    click.echo(f"私钥（已加密，权限0600）：{station.keystore.path_for(info.kid)}")
    if previous is not None:
        click.echo(f"原密钥 {previous.kid_hex} 已轮换：有效期截至 {previous.valid_until}，仍用于核验此前的证书")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line. / 每行一个 JSON 对象。")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List the keys this station knows. / 列出本站已知的密钥。"""
    listings = station_of(ctx).list_keys()
    if not listings:
        click.echo("本站没有任何密钥。用 certkiosk keys new 创建，或用 certkiosk trust import 导入信任包。")
        return
    for item in listings:
        info = item.info
        if as_json:
            json_line(info.to_json() | {"has_private_key": item.has_private, "revoked": item.revoked})
            continue
        until = info.valid_until.isoformat() if info.valid_until else "长期"
        flags = ("本站私钥" if item.has_private else "仅公钥") + ("，已吊销" if item.revoked else "")
        click.echo(f"{info.kid_hex}  {info.filing_number}  {info.institution}  {info.valid_from}~{until}  [{flags}]")


# --- trust -----------------------------------------------------------------------------------
@cli.group(cls=CertkioskGroup)
def trust() -> None:
    """Trusted keys and revocations. / 信任库（受信密钥与吊销）。"""


@trust.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def trust_export(ctx: click.Context, file: Path) -> None:
    """Write the trust bundle and print its fingerprint. / 导出信任包并显示指纹。"""
    fingerprint = station_of(ctx).export_trust(file)
    click.echo(f"已导出信任包：{file}")
    click.echo(f"SHA-256 指纹：{grouped_fingerprint(fingerprint)}")
    click.echo("请通过电话或书面等其他渠道与接收方核对此指纹。")


@trust.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def trust_import(ctx: click.Context, file: Path) -> None:
    """Merge a trust bundle (never replaces a different key). / 导入信任包（不会替换不同的密钥）。"""
    result, fingerprint = station_of(ctx).import_trust(file)
    click.echo(f"信任包 SHA-256 指纹：{grouped_fingerprint(fingerprint)}（请与发送方核对）")
    added, updated = len(result.added_keys), len(result.updated_keys)
    click.echo(f"新增密钥 {added} 个，更新 {updated} 个，新增吊销 {result.added_revocations} 条")
    for kid in result.added_keys:
        info = result.bundle.key(bytes.fromhex(kid))
        assert info is not None
        click.echo(f"  + {kid}  {info.filing_number}  {info.institution}")


@trust.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle as JSON. / 以 JSON 输出。")
@click.pass_context
def trust_list(ctx: click.Context, as_json: bool) -> None:
    """Show trusted keys and revocations. / 显示受信密钥与吊销。"""
    bundle = station_of(ctx).trust.load()
    if as_json:
        click.echo(bundle.to_bytes().decode("utf-8"), nl=False)
        return
    fingerprint = grouped_fingerprint(bundle.fingerprint())
    click.echo(f"受信密钥 {len(bundle.keys)} 个，吊销 {len(bundle.revocations)} 条；指纹 {fingerprint}")
    for info in bundle.keys:
        until = info.valid_until.isoformat() if info.valid_until else "长期"
        click.echo(f"  {info.kid_hex}  {info.filing_number}  {info.institution}  {info.valid_from}~{until}")
    for rev in bundle.revocations:
        click.echo(f"  吊销{SCOPE_TEXT[rev.scope]} {rev.target}（{rev.revoked_at}）：{rev.reason}")


# --- register --------------------------------------------------------------------------------
