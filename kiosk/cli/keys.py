"""`certkiosk keys` and `certkiosk trust`: institution keys and the trust store."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import click

from kiosk.cli.base import CertkioskGroup, cli, json_line, passphrase_file_option, read_passphrase, station_of


@cli.group(cls=CertkioskGroup)
def keys() -> None:
    """Institution signing keys. / 机构签名密钥。"""


@keys.command("new")
@click.option(
    "--institution", "filing_number", required=True, help="Filing number, 13 characters. / 机构备案号（13位）。"
)
@click.option("--name", required=True, help="Institution name as filed. / 机构名称（与备案一致）。")
@passphrase_file_option()
@click.option("--valid-from", type=click.DateTime(["%Y-%m-%d"]), help="First valid day (default today). / 生效日期。")
@click.option("--years", type=int, default=10, show_default=True, help="Validity in years. / 有效年限。")
@click.option(
    "--old-passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
    help="Passphrase of the key being rolled over, if different. / 原密钥口令文件（不同时）。",
)  # fmt: skip
@click.pass_context
def keys_new(
    ctx: click.Context, filing_number: str, name: str, passphrase_file: Path | None,
    valid_from: _dt.datetime | None, years: int, old_passphrase_file: Path | None,
) -> None:  # fmt: skip
    """Create the institution's key (rolls over an existing one, which signs the roll-over).

    创建机构密钥（已有则轮换，原密钥签署轮换声明）。
    """
    from certgen.trust import grouped_fingerprint, key_fingerprint

    station = station_of(ctx)
    passphrase = read_passphrase(passphrase_file, confirm=True)
    old = read_passphrase(old_passphrase_file) if old_passphrase_file else None
    info, previous = station.new_key(
        filing_number, name, passphrase, valid_from=valid_from.date() if valid_from else None, years=years,
        old_passphrase=old,
    )  # fmt: skip
    click.echo(f"已创建密钥 {info.kid_hex}：{info.filing_number} {info.institution}")
    click.echo(
        f"有效期 {info.valid_from.isoformat()} 至 {info.valid_until.isoformat() if info.valid_until else '长期'}"
    )
    click.echo(f"私钥（已加密，权限0600）：{station.keystore.path_for(info.kid)}")
    click.echo(f"公钥指纹：{grouped_fingerprint(key_fingerprint(info))}")
    click.echo(f"文档签名私钥（电子证书用，ECDSA P-256，已加密）：{station.keystore.x509_key_path(info.kid)}")
    if previous is not None:
        click.echo(f"原密钥 {previous.kid_hex} 已轮换：有效期截至 {previous.valid_until}，仍用于核验此前的证书")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line. / 每行一个 JSON 对象。")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List the keys this station knows. / 列出本站已知的密钥。"""
    from certgen.trust import grouped_fingerprint, key_fingerprint

    listings = station_of(ctx).list_keys()
    if not listings:
        click.echo("本站没有任何密钥。用 certkiosk keys new 创建，或用 certkiosk trust import 导入信任包。")
        return
    for item in listings:
        info = item.info
        if as_json:
            json_line(
                info.to_json()
                | {"fingerprint": key_fingerprint(info), "has_private_key": item.has_private, "revoked": item.revoked}
            )
            continue
        until = info.valid_until.isoformat() if info.valid_until else "长期"
        flags = ("本站私钥" if item.has_private else "仅公钥") + ("，已吊销" if item.revoked else "")
        click.echo(f"{info.kid_hex}  {info.filing_number}  {info.institution}  {info.valid_from}~{until}  [{flags}]")
        click.echo(f"    指纹 {grouped_fingerprint(key_fingerprint(info))}")


# --- trust -----------------------------------------------------------------------------------
@cli.group(cls=CertkioskGroup)
def trust() -> None:
    """Trusted keys and revocations. / 信任库（受信密钥与吊销）。"""


@trust.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--institution", "filing_number", help="Filing number (if the station has several). / 机构备案号。")
@click.option(
    "--since", type=click.IntRange(1), help="Only what changed since bundle N (an update). / 只导出第N号之后的变化。"
)
@passphrase_file_option()
@click.pass_context
def trust_export(
    ctx: click.Context, file: Path, filing_number: str | None, since: int | None, passphrase_file: Path | None
) -> None:
    """Write the institution's signed trust bundle. / 导出本机构签名的信任包。"""
    from certgen.trust import grouped_fingerprint

    station = station_of(ctx)
    result = station.export_trust(file, read_passphrase(passphrase_file), filing_number=filing_number, since=since)
    kind = f"更新包（第{result.since}号之后的变化）" if result.since is not None else "信任包"
    click.echo(f"已导出{kind}：{file}，序号 {result.sequence}；密钥 {result.keys} 个，吊销 {result.revocations} 条")
    click.echo(f"文件 SHA-256：{grouped_fingerprint(result.fingerprint)}")
    click.echo("接收方首次导入时，请通过电话或书面等其他渠道与其核对签名密钥指纹（certkiosk keys list 显示指纹）。")


@trust.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--accept-fingerprint",
    help="Trust a new key of a known institution whose fingerprint you confirmed out of band. / 确认新密钥指纹。",
)
@click.pass_context
def trust_import(ctx: click.Context, file: Path, accept_fingerprint: str | None) -> None:
    """Verify and merge a signed trust bundle. / 校验并导入签名的信任包。"""
    from certgen.bundle import import_lines

    result = station_of(ctx).import_trust(file, accept_fingerprint=accept_fingerprint)
    for line in import_lines(result):
        click.echo(line)


@trust.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle as JSON. / 以 JSON 输出。")
@click.pass_context
def trust_list(ctx: click.Context, as_json: bool) -> None:
    """Show trusted keys, revocations and each institution's data age. / 显示受信密钥、吊销与数据时效。"""
    from certgen.trust import SCOPE_TEXT, freshness_lines

    bundle = station_of(ctx).trust.load()
    if as_json:
        click.echo(bundle.to_bytes().decode("utf-8"), nl=False)
        return
    click.echo(f"受信密钥 {len(bundle.keys)} 个，吊销 {len(bundle.revocations)} 条")
    for line in freshness_lines(bundle, _dt.date.today()):
        click.echo(line)
    for info in bundle.keys:
        until = info.valid_until.isoformat() if info.valid_until else "长期"
        click.echo(f"  {info.kid_hex}  {info.filing_number}  {info.institution}  {info.valid_from}~{until}")
    for rev in bundle.revocations:
        click.echo(f"  吊销{SCOPE_TEXT[rev.scope]} {rev.target}（{rev.revoked_at}）：{rev.reason}")


@trust.command("stale-after")
@click.argument("days", type=click.IntRange(1, 3650))
@click.pass_context
def trust_stale_after(ctx: click.Context, days: int) -> None:
    """Report revocation data older than DAYS as old (default 30). / 吊销数据超过几天视为过旧（默认30）。"""
    station_of(ctx).set_stale_after(days)
    click.echo(f"已设置：签发机构的吊销数据超过 {days} 天时，核验结果会注明数据过旧")
