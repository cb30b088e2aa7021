"""The kiosk: a locked, verify-only Textual app for a public counter, and its one factory.

Only :class:`~kiosk.screens.kiosk.KioskScreen` exists: no issuing, keys, register or files, no
command palette, no suspend. Quitting (Ctrl+Q, Ctrl+C, or anything that asks the app to quit)
opens the PIN dialog; only the operator PIN ends the app.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from certgen.exceptions import ConfigError
from certgen.station import Station
from certgen.station.home import StationHome
from kiosk.checklog import KioskLog
from kiosk.pin import check_pin, lockout_seconds
from kiosk.screens.kiosk import KioskScreen
from kiosk.settings import load_settings
from kiosk.widgets.pin_dialog import PinDialog
from verify.status import VerificationStatus
from verify.watch import POLL_SECONDS


def trust_age(result: VerificationStatus) -> str:
    """How old the revocation data behind ``result`` is, in Chinese (the signing institution's own
    freshness, recorded by the trust store), with a warning when it is older than the station's limit."""
    text = result.trust_text
    if text and result.trust_stale:
        text += f"（超过 {result.stale_after_days} 天，可能未包含最近的吊销，请工作人员更新信任包）"
    return text


@dataclass(frozen=True)
class KioskOptions:
    """How the kiosk runs (the CLI's options; tests set the rest)."""

    camera: str | None = None
    """``--camera`` source: device index, device path, URL or video file."""
    watch: Path | None = None
    """``--watch`` folder a document scanner writes into."""
    clear_seconds: float | None = None
    """Seconds a verdict stays; None: the station's ``kiosk_clear_seconds`` setting."""
    scanimage: str | None = None
    """SANE's scanimage program (None hides the 扫描 key)."""
    scanner_device: str | None = None
    """SANE device name (None: scanimage's default)."""
    pin_delay: Callable[[int], float] = lockout_seconds
    """Wrong attempts in a row -> seconds to refuse further attempts."""
    trust_age: Callable[[VerificationStatus], str] = trust_age
    """The trust data's age as shown with a verdict."""
    poll_seconds: float = POLL_SECONDS
    """How often the watched folder is polled."""


class KioskApp(App[None]):
    """The verification kiosk."""

    CSS_PATH = "app.tcss"
    TITLE = "certkiosk 证书核验"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "leave", "退出（需PIN）", priority=True),
        Binding("ctrl+c", "leave", show=False, priority=True),
    ]

    def __init__(self, station: Station, options: KioskOptions) -> None:
        super().__init__()
        self.station, self.options = station, options
        settings = load_settings(station.home)
        self.retention_years = settings.retention_years
        self.clear_seconds = options.clear_seconds or settings.kiosk_clear_seconds
        self.kiosk_log = KioskLog(station.home)
        self.pin_failures = 0
        self.pin_locked = False

    def get_default_screen(self) -> Screen[None]:
        return KioskScreen()

    def on_mount(self) -> None:
        self.kiosk_log.prune(self.retention_years)

    # --- leaving ---------------------------------------------------------------------------
    def action_leave(self) -> None:
        if not isinstance(self.screen, PinDialog):
            self.push_screen(PinDialog())

    async def action_quit(self) -> None:
        """Anything that asks to quit asks for the PIN instead."""
        self.action_leave()

    def action_suspend_process(self) -> None:
        """No shell behind the kiosk."""

    def action_command_palette(self) -> None:
        """No command palette."""

    def try_pin(self, pin: str) -> None:
        """End the kiosk on the right PIN; lock the dialog for a growing delay on a wrong one."""
        try:
            right = check_pin(self.station.home, pin)
        except ConfigError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        if right:
            self.pin_failures = 0
            self.exit()
            return
        self.pin_failures += 1
        self.pin_locked = True
        self.set_timer(max(self.options.pin_delay(self.pin_failures), 0.001), self.unlock_pin)
        self._refresh_pin_dialog()

    def unlock_pin(self) -> None:
        self.pin_locked = False
        self._refresh_pin_dialog()

    def _refresh_pin_dialog(self) -> None:
        if isinstance(self.screen, PinDialog):
            self.screen.refresh_lock()


def build_kiosk_app(home: StationHome, options: KioskOptions | None = None) -> KioskApp:
    """The kiosk on a station home (for the CLI and the tests)."""
    return KioskApp(Station(home), options or KioskOptions())


def find_scanimage() -> str | None:
    """SANE's scanimage when it is installed."""
    return shutil.which("scanimage")
