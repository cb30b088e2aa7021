"""The Textual station app, and the one factory that builds it for the CLI and the tests.

Each screen's module is imported when its mode is first entered, so the first screen draws
without the PDF, image and spreadsheet libraries the other screens need (docs/performance.md;
tests/test_quality.py guards it).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from certgen.assets import shipped_file
from certgen.station.home import StationHome

if TYPE_CHECKING:
    from certgen.station.station import Station

SCREENS = ("home", "issue", "batch", "verify", "archive", "keys", "register")


def _lazy(module: str, name: str) -> Callable[[], Screen[Any]]:
    """A mode's screen factory that imports ``kiosk.screens.<module>`` on first use."""

    def make() -> Screen[Any]:
        screen: Screen[Any] = getattr(importlib.import_module(f"kiosk.screens.{module}"), name)()
        return screen

    make.__qualname__ = make.__name__ = name
    return make


class StationApp(App[None]):
    """certkiosk's terminal UI: every screen one key away, shown in the footer."""

    CSS_PATH = shipped_file("kiosk", "app.tcss")
    TITLE = "certkiosk 职业技能等级证书工作站"
    MODES = {
        "home": _lazy("home", "HomeScreen"),
        "issue": _lazy("issue", "IssueScreen"),
        "batch": _lazy("batch", "BatchScreen"),
        "verify": _lazy("verify", "VerifyScreen"),
        "archive": _lazy("archive", "ArchiveScreen"),
        "keys": _lazy("keys", "KeysScreen"),
        "register": _lazy("register", "RegisterScreen"),
    }
    BINDINGS = [
        Binding("f1", "switch_mode('home')", "首页"),
        Binding("f2", "switch_mode('issue')", "发证"),
        Binding("f3", "switch_mode('batch')", "批量"),
        Binding("f4", "switch_mode('verify')", "验证"),
        Binding("f5", "switch_mode('archive')", "档案"),
        Binding("f6", "switch_mode('keys')", "密钥"),
        Binding("f7", "switch_mode('register')", "登记"),
        Binding("ctrl+q", "quit", "退出", priority=True),
    ]

    def __init__(self, home: StationHome, start: str = "home", today: Callable[[], _dt.date] | None = None) -> None:
        super().__init__()
        self.home = home
        """The station's home folder."""
        self._station: Station | None = None
        self._station_lock = threading.Lock()
        self.today = today or _dt.date.today
        """Today's date (injectable: ages of trust data and backups are computed from it)."""
        self.start = start if start in SCREENS else "home"
        self.sub_title = str(home.root)

    @property
    def station(self) -> Station:
        """The station on :attr:`home`, made on first use: its keys, trust store and register (and
        the cryptography they need) load after the first screen has drawn."""
        with self._station_lock:  # a worker thread may be first
            if self._station is None:
                from certgen.station.station import Station

                self._station = Station(self.home)
            return self._station

    def on_mount(self) -> None:
        self.switch_mode(self.start)


def build_app(home: StationHome, start: str = "home", today: Callable[[], _dt.date] | None = None) -> StationApp:
    """The app on a station home, opening on ``start`` (one of SCREENS)."""
    return StationApp(home, start, today)
