"""The ``certkiosk`` root group and what every command group shares: errors, the station, passphrases."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from certgen.exceptions import CertkioskError, ConfigError
from certgen.secret import Secret
from certgen.station.home import StationHome
from certgen.station.station import Station, describe_error

ENV_PASSPHRASE = "CERTKIOSK_PASSPHRASE"


class CertkioskGroup(click.Group):
    """A group that turns certkiosk's errors into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # the reader went away (``| head``): end quietly
            quiet_broken_pipe()
        except (CertkioskError, OSError, sqlite3.Error) as exc:
            click.echo(f"错误：{describe_error(exc)}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("已取消。", err=True)
            ctx.exit(130)


BROKEN_PIPE_EXIT = 141
"""Exit status when standard output was closed by its reader: 128 + SIGPIPE, as a shell reports."""


def quiet_broken_pipe() -> None:
    """Exit with :data:`BROKEN_PIPE_EXIT`, without a message, when stdout's reader has gone."""
    # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(BROKEN_PIPE_EXIT)


def station_of(ctx: click.Context) -> Station:
    station = ctx.find_object(Station)
    if station is None:  # pragma: no cover - the root group always sets it
        raise ConfigError("内部错误：未确定站点目录")
    return station


def read_passphrase(path: Path | None, *, confirm: bool = False) -> Secret:
    """From ``--passphrase-file``, else ``$CERTKIOSK_PASSPHRASE``, else a hidden prompt."""
    if path is not None:
        try:
            return Secret(path.read_text("utf-8").rstrip("\r\n"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"无法读取口令文件 {path}：{getattr(exc, 'strerror', None) or exc}") from None
    env = os.environ.get(ENV_PASSPHRASE)
    if env:
        return Secret(env)
    if not sys.stdin.isatty():
        raise ConfigError(
            f"需要私钥口令：请用 --passphrase-file 或环境变量 {ENV_PASSPHRASE} 提供（非交互环境无法提示输入）"
        )
    return Secret(click.prompt("私钥口令 / Passphrase", hide_input=True, confirmation_prompt=confirm))


def json_line(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, sort_keys=False))


@click.group(cls=CertkioskGroup, invoke_without_command=True)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Station home folder (else $CERTKIOSK_HOME, else the user data folder). / 站点目录。",
)
@click.version_option(package_name="certkiosk")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """certkiosk: issue and check vocational skill level certificates offline.

    certkiosk：离线签发与核验职业技能等级证书。
    """
    ctx.obj = Station(StationHome.resolve(home))
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            ctx.invoke(cli.commands["ui"])
        else:
            click.echo(ctx.get_help())


class Progress:
    """A progress bar with rate and ETA on a terminal (stderr); silent otherwise."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int, str], None]:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn(self.label), BarColumn(), TaskProgressColumn(), TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.speed:.1f}/秒" if False else "{task.fields[note]}"), TimeRemainingColumn(),
                transient=True, console=Console(stderr=True),
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total or None, note="")
        return self.advance

    def advance(self, done: int, total: int, note: str) -> None:
        if self.bar is not None:
            speed = self.bar.tasks[0].speed
            rate = f"{speed:.1f}/秒" if speed else ""
            self.bar.update(self.task, completed=done, total=total, note=note or rate)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
