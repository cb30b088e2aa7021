"""`certkiosk ui`, `locate`, `number check` and `demo`."""

from __future__ import annotations

import click

from kiosk.cli.base import CertkioskGroup, cli, home_of, json_line, station_of


@cli.command()
@click.option(
    "--screen", type=click.Choice(["home", "issue", "batch", "verify", "archive", "keys", "register"]),
    default="home", show_default=True, help="Screen to open on. / 打开时显示的页面。",
)  # fmt: skip
@click.pass_context
def ui(ctx: click.Context, screen: str = "home") -> None:
    """Open the terminal UI (also: certkiosk with no command). / 打开终端界面。"""
    from kiosk.app import build_app

    build_app(home_of(ctx).ensure(), screen).run()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON. / 输出 JSON。")
@click.pass_context
def locate(ctx: click.Context, as_json: bool) -> None:
    """Show where the station keeps everything. / 显示站点各文件的位置。"""
    home = station_of(ctx).home
    places = home.locations()
    if as_json:
        json_line({"source": home.source} | {k: str(v) for k, v in places.items()})
        return
    from certgen.station.home import LOCATION_LABELS

    click.echo(f"站点目录来源：{home.source}")
    for key, path in places.items():
        state = "存在" if path.exists() else "尚未创建"
        click.echo(f"{LOCATION_LABELS[key]:<8}  {path}  （{state}）")


# --- number ----------------------------------------------------------------------------------
@cli.group(cls=CertkioskGroup)
def number() -> None:
    """Certificate numbers (002 附件5). / 证书编号。"""


@number.command("check")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line. / 每行一个 JSON 对象。")
@click.pass_context
def number_check(ctx: click.Context, numbers: tuple[str, ...], as_json: bool) -> None:
    """Check certificate numbers; exit 1 if any is invalid. / 检查证书编号，有无效则退出码为1。"""
    from certgen.number import check_number, load_profiles

    profiles = load_profiles(station_of(ctx).home.profiles_dir)
    all_valid = True
    for text in numbers:
        result = check_number(text, profiles=profiles)
        all_valid &= result.valid
        if as_json:
            json_line(result.to_json())
            continue
        click.echo(f"{'✓' if result.valid else '✗'} {text}  {'有效' if result.valid else '无效'}")
        for line in result.explain() if result.valid else result.errors:
            click.echo(f"    {line}")
    ctx.exit(0 if all_valid else 1)


# --- keys ------------------------------------------------------------------------------------


# --- demo --------------------------------------------------------------------------------------
@cli.command("demo")
@click.pass_context
def demo_cmd(ctx: click.Context) -> None:
    """Run the whole job on a built-in example, offline. / 用内置示例离线演示完整流程。

    Uses its own demo home (or --home when given): creates a fictional institution and its key,
    issues the sample roster, renders one certificate to a scan and verifies everything.
    使用单独的演示目录，不会影响真实站点。
    """
    from kiosk.demo import demo_home, run_demo

    home = demo_home(station_of(ctx).home)
    click.echo(f"演示目录：{home.root}")
    result = run_demo(home, say=click.echo)
    click.echo(f"核验：{result.verified} 张证书，有效 {result.valid} 张")
    for line in result.problems:
        click.echo(line)
    click.echo("")
    click.echo(f"证书与报表：{'、'.join(map(str, result.folders))}")
    click.echo(f"扫描图：    {result.scan}")
    click.echo(f"打开终端界面：certkiosk --home '{result.home}' ui")
    ctx.exit(0 if result.valid == result.verified and not result.problems else 1)
