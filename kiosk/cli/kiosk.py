"""``certkiosk kiosk``: the locked verification kiosk, and ``--set-pin`` for its operator PIN."""

from __future__ import annotations

from pathlib import Path

import click

from certgen.exceptions import CameraError, ConfigError
from kiosk.cli.base import cli, station_of


@cli.command("kiosk")
@click.option(
    "--camera", metavar="SOURCE",
    help="Camera: device index (0), device path (/dev/video0), RTSP/HTTP URL or video file. / 摄像头。",
)  # fmt: skip
@click.option(
    "--watch", type=click.Path(file_okay=False, path_type=Path),
    help="Folder a document scanner saves into; each scan is verified and moved to done/ or failed/. / 扫描文件夹。",
)  # fmt: skip
@click.option(
    "--clear-after", type=click.FloatRange(1, 3600), metavar="SECONDS",
    help="Seconds a verdict stays on screen (default: the station's setting, 20). / 结果显示秒数。",
)  # fmt: skip
@click.option("--scanner", metavar="DEVICE", help="SANE device for the 扫描 key (default: scanimage's). / 扫描仪设备。")
@click.option("--set-pin", is_flag=True, help="Set the operator PIN that leaves the kiosk. / 设置退出用的操作员 PIN。")
@click.pass_context
def kiosk_cmd(
    ctx: click.Context, camera: str | None, watch: Path | None, clear_after: float | None,
    scanner: str | None, set_pin: bool,
) -> None:  # fmt: skip
    """Locked self-service verification for a public counter. / 自助核验模式（锁定，仅核验）。

    Verifies certificates from a camera, a scan-to-folder scanner, a SANE scanner (F8 扫描) or a
    handheld scanner. Nothing else is reachable; leaving needs the operator PIN.
    摄像头、扫描文件夹、扫描仪与扫码枪核验证书；退出需要操作员 PIN。
    """
    from kiosk.pin import check_new_pin, has_pin
    from kiosk.pin import set_pin as store_pin

    station = station_of(ctx)
    home = station.home
    if set_pin:
        first: str = click.prompt("新的操作员 PIN / New operator PIN", hide_input=True)
        try:
            check_new_pin(first)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        again: str = click.prompt("再次输入 / Repeat", hide_input=True)
        if again != first:
            raise ConfigError("两次输入的 PIN 不一致，未保存")
        path = store_pin(home, first)
        click.echo(f"操作员 PIN 已保存（加盐 scrypt 哈希，权限 0600）：{path}")
        return
    if not has_pin(home):
        raise ConfigError("未设置操作员 PIN（退出核验模式需要它）：请先执行 certkiosk kiosk --set-pin")
    station.trust_for_verifying()  # no trust store: say so now, not on the public screen
    if camera is not None:
        from verify.camera import load_cv2

        try:
            load_cv2()
        except CameraError:
            raise ConfigError("使用 --camera 需要 OpenCV：pip install 'certkiosk[camera]'") from None
    if watch is not None:
        watch = watch.expanduser().absolute()
        if not watch.is_dir():
            raise ConfigError(f"扫描文件夹 {watch} 不存在")
    from kiosk.kiosk_app import KioskOptions, build_kiosk_app, find_scanimage

    options = KioskOptions(
        camera=camera, watch=watch, clear_seconds=clear_after, scanimage=find_scanimage(), scanner_device=scanner
    )
    build_kiosk_app(home.ensure(), options).run()
