"""The ``certkiosk`` root group and what every command group shares: errors, the station, passphrases.

Imports stay light here and in every command module (click and certgen's error classes only): a
command imports what it needs when it runs, so ``certkiosk --help`` and ``certkiosk verify --text``
start fast (docs/performance.md; tests/test_quality.py guards which modules they load).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from certgen.exceptions import CertkioskError, ConfigError
from certgen.secret import Secret

if TYPE_CHECKING:
    from certgen.issuing.issuer import Issuer
    from certgen.station.home import StationHome
    from certgen.station.station import Station

ENV_PASSPHRASE = "CERTKIOSK_PASSPHRASE"


def _reportable(exc: BaseException) -> bool:
    """certkiosk's own errors, the file system's and SQLite's are shown as one line, not a traceback."""
    sqlite3 = sys.modules.get("sqlite3")  # not imported by the commands that never open a register
    return isinstance(exc, CertkioskError | OSError) or (sqlite3 is not None and isinstance(exc, sqlite3.Error))


class CertkioskGroup(click.Group):
    """A group that turns certkiosk's errors into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # the reader went away (``| head``): end quietly
            quiet_broken_pipe()
        except Exception as exc:
            if not _reportable(exc):
                raise
            from certgen.station.station import describe_error

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


class StationRef:
    """The station a command works on, made when the command first asks for it (so that
    ``certkiosk ui`` draws its first screen before the station's modules load)."""

    def __init__(self, home: StationHome) -> None:
        self.home = home
        self._station: Station | None = None

    @property
    def station(self) -> Station:
        if self._station is None:
            from certgen.station.station import Station

            self._station = Station(self.home)
        return self._station


def _ref(ctx: click.Context) -> StationRef:
    ref = ctx.find_object(StationRef)
    if ref is None:  # pragma: no cover - the root group always sets it
        raise ConfigError("内部错误：未确定站点目录")
    return ref


def station_of(ctx: click.Context) -> Station:
    return _ref(ctx).station


def home_of(ctx: click.Context) -> StationHome:
    return _ref(ctx).home


def is_terminal(stream: Any) -> bool:
    """Whether a standard stream is a terminal; False when it was closed before the process started
    (``<&-``: Python has no ``sys.stdin`` then)."""
    return stream is not None and bool(stream.isatty())


@contextlib.contextmanager
def stop_notes_told(issuer: Issuer) -> Iterator[None]:
    """Around an issuing call: when it stops by any exception (Ctrl-C, SIGTERM, an error, a
    ``ctx.exit``), what the issuer says of the numbers it revoked as it stopped, on stderr."""
    try:
        yield
    except BaseException:
        for note in issuer.stop_notes():
            click.echo(note, err=True)
        raise


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
    if not is_terminal(sys.stdin):
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
    from certgen.station.home import StationHome

    ctx.obj = StationRef(StationHome.resolve(home))
    if ctx.invoked_subcommand is None:
        if is_terminal(sys.stdin) and is_terminal(sys.stdout):
            ctx.invoke(cli.commands["ui"])
        else:
            click.echo(ctx.get_help())


class Progress:
    """A progress bar with rate and ETA on a terminal (stderr); silent otherwise."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int, str], None]:
        if is_terminal(sys.stderr):
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
            self.bar.update(self.task, completed=done, total=total, note="  ".join(x for x in (rate, note) if x))

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


F = TypeVar("F", bound=Callable[..., Any])


def passphrase_file_option(help: str = "File holding the passphrase. / 口令文件。") -> Callable[[F], F]:
    """``--passphrase-file``: every command that unlocks the institution key (see :func:`read_passphrase`)."""
    return click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=Path), help=help)


def issuer_options(command: F) -> F:
    """The options of every command that issues: output folder, template, institution, passphrase, seal."""
    for option in reversed((
        click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Output folder. / 输出目录。"),
        click.option("--template", "template_name", default="liaoning-2020", show_default=True,
                     help="Template id. / 模板。"),
        click.option("--institution", "filing_number", help="Filing number of the issuing institution. / 机构备案号。"),
        passphrase_file_option(),
        click.option("--seal", type=click.Path(dir_okay=False, path_type=Path), help="Seal image (PNG). / 印章图片。"),
    )):  # fmt: skip
        command = option(command)
    return command
