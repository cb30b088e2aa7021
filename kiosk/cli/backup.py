"""`certkiosk backup`, `certkiosk restore` and `certkiosk restore-settle`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from certgen.exceptions import ConfigError
from kiosk.cli.base import cli, passphrase_file_option, read_passphrase, station_of

_PASSPHRASE = passphrase_file_option(
    "File holding the passphrase (the manifest is signed). / 口令文件（签署备份清单）。"
)


@cli.command("backup")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", "check_only", is_flag=True, help="Verify FILE without restoring it. / 只校验备份文件。")
@click.option("--with-pdfs", is_flag=True, help="Also the issued PDFs in the home. / 同时备份已发证书PDF。")
@click.option(
    "--auto-folder", type=click.Path(file_okay=False, path_type=Path),
    help="Back up to this folder after every batch and revocation. / 每批发证、每次吊销后自动备份到此目录。",
)  # fmt: skip
@click.option("--keep", type=click.IntRange(1, 1000), default=10, show_default=True, help="Automatic copies kept.")
@click.option("--auto-off", is_flag=True, help="Stop automatic backups. / 停止自动备份。")
@_PASSPHRASE
@click.pass_context
def backup_cmd(
    ctx: click.Context, file: Path | None, check_only: bool, with_pdfs: bool, auto_folder: Path | None, keep: int,
    auto_off: bool, passphrase_file: Path | None,
) -> None:  # fmt: skip
    """Back up the station to one signed file, or check one. / 备份站点到一个签名文件，或校验备份。

    The register (consistent even while a batch runs), the encrypted keys, the trust store,
    settings, templates, fonts and profiles; a manifest of SHA-256 digests signed by the
    institution's key. 登记库、加密私钥、信任库、设置、模板、字体，清单由机构私钥签名。
    """
    from certgen.station.backup import check_backup, create_backup, set_auto_backup

    station = station_of(ctx)
    if auto_folder is not None or auto_off:
        set_auto_backup(station.home, None if auto_off else auto_folder, keep)
        click.echo(
            "已停止自动备份" if auto_off else f"每批发证和每次吊销后将自动备份到 {auto_folder}，保留最近 {keep} 份"
        )
        if file is None:
            return
    if file is None:
        raise click.UsageError("请给出备份文件 FILE")
    if check_only:
        check = check_backup(file)
        click.echo(f"✓ 备份完整：{file}")
        click.echo(f"  站点 {check.station_id}，创建于 {check.created_at}，审计日志 {check.audit_seq} 条")
        click.echo(f"  {len(check.manifest['files'])} 个文件的 SHA-256 与清单一致，清单由密钥 {check.signer} 签名")
        return
    result = create_backup(station.home.ensure(), file, read_passphrase(passphrase_file), with_pdfs=with_pdfs)
    click.echo(f"已备份到 {file}：{len(result.manifest['files'])} 个文件，审计日志 {result.audit_seq} 条")
    click.echo("请把备份文件存放在本机以外（U盘、网络共享），并妥善保管：其中的私钥已加密，但登记库含个人信息。")


_SETTLE_OPTIONS = [
    click.option(
        "--scan", multiple=True, type=click.Path(exists=True, path_type=Path),
        help="Folder or file to search for numbers issued after the backup (repeatable). / 查找备份后发出的编号。",
    ),
    click.option(
        "--highest-serial", "highest", multiple=True, metavar="YEAR:LEVEL:SERIAL",
        help="Highest serial known to be used (repeatable). / 已知用过的最大序号（年份:等级:序号）。",
    ),
    click.option(
        "--nothing-later", is_flag=True,
        help="Confirm nothing was issued after the backup. / 确认备份之后未发过证书。",
    ),
]  # fmt: skip


F = TypeVar("F", bound=Callable[..., Any])


def _settle_options(func: F) -> F:
    for option in reversed(_SETTLE_OPTIONS):
        func = option(func)
    return func


@cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--to", "to", type=click.Path(file_okay=False, path_type=Path), help="Restore into this new home.")
@click.option("--force", is_flag=True, help="Replace a register newer than the backup. / 覆盖比备份新的登记库。")
@_settle_options
@click.pass_context
def restore_cmd(
    ctx: click.Context, file: Path, to: Path | None, force: bool, scan: tuple[Path, ...], highest: tuple[str, ...],
    nothing_later: bool,
) -> None:  # fmt: skip
    """Restore a backup (checked first; the current home is kept aside). / 从备份恢复（先校验，原目录保留）。"""
    from certgen.station.backup import restore_backup
    from certgen.station.home import StationHome

    target = StationHome(to.expanduser().absolute(), "--to") if to else station_of(ctx).home
    result = restore_backup(file, target, force=force, scan=scan, highest=highest, nothing_later=nothing_later)
    click.echo(f"已恢复到 {result.home}")
    if result.replaced:
        click.echo(f"原站点目录保留在 {result.replaced}")
    for line in (*result.raised, *result.revocations):
        click.echo(f"  {line}")
    if result.settled:
        click.echo("编号已确认，可以继续发证。")
    else:
        click.echo(
            "注意：备份之后可能已发出证书。在确认之前本站暂停发证：请执行 certkiosk restore-settle "
            "--scan <证书输出目录或自动备份目录>，或 --highest-serial 年份:等级:序号，或 --nothing-later"
        )


@cli.command("restore-settle")
@_settle_options
@click.pass_context
def restore_settle_cmd(
    ctx: click.Context, scan: tuple[Path, ...], highest: tuple[str, ...], nothing_later: bool
) -> None:
    """After a restore: move the counters past numbers issued after the backup, then allow issuing.

    恢复后：把序号调到备份之后发出的编号之后，然后恢复发证。
    """
    from certgen.station.backup import carry_after_backup, settle_numbers, station_id

    if not (scan or highest or nothing_later):
        raise click.UsageError("请给出 --scan、--highest-serial 或 --nothing-later")
    station = station_of(ctx)
    if not station.home.register_path.exists():
        raise ConfigError(f"登记库 {station.home.register_path} 不存在")
    with station.register() as reg:
        moved = settle_numbers(reg, list(scan), highest, settle=True)
    kept = carry_after_backup(station.home, [p for p in scan if p.exists()], station_id(station.home))
    for line in (*moved, *kept):
        click.echo(f"  {line}")
    click.echo(f"已确认编号（调整 {len(moved)} 处），可以继续发证。")
