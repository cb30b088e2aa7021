"""The Textual station app, and the one factory that builds it for the CLI and the tests."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from textual.app import App
from textual.binding import Binding

from certgen.assets import shipped_file
from certgen.station import Station
from certgen.station.home import StationHome
from kiosk.screens.archive import ArchiveScreen
from kiosk.screens.batch import BatchScreen
from kiosk.screens.home import HomeScreen
from kiosk.screens.issue import IssueScreen
from kiosk.screens.keys import KeysScreen
from kiosk.screens.register import RegisterScreen
from kiosk.screens.verify import VerifyScreen

SCREENS = ("home", "issue", "batch", "verify", "archive", "keys", "register")


class StationApp(App[None]):
    """certkiosk's terminal UI: every screen one key away, shown in the footer."""

    CSS_PATH = shipped_file("kiosk", "app.tcss")
    TITLE = "certkiosk 职业技能等级证书工作站"
    MODES = {
        "home": HomeScreen,
        "issue": IssueScreen,
        "batch": BatchScreen,
        "verify": VerifyScreen,
        "archive": ArchiveScreen,
        "keys": KeysScreen,
        "register": RegisterScreen,
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

    def __init__(self, station: Station, start: str = "home", today: Callable[[], _dt.date] | None = None) -> None:
        super().__init__()
        self.station = station
        self.today = today or _dt.date.today
        """Today's date (injectable: ages of trust data and backups are computed from it)."""
        self.start = start if start in SCREENS else "home"
        self.sub_title = str(station.home.root)

    def on_mount(self) -> None:
        self.switch_mode(self.start)


def build_app(home: StationHome, start: str = "home", today: Callable[[], _dt.date] | None = None) -> StationApp:
    """The app on a station home, opening on ``start`` (one of SCREENS)."""
    return StationApp(Station(home), start, today)
