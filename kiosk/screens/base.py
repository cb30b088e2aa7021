"""What every station screen shares: the station, and errors shown as notifications."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from textual.screen import Screen

from certgen.station.station import Station, describe_error

if TYPE_CHECKING:
    from kiosk.app import StationApp


class StationScreen(Screen[None]):
    """A screen of the station app."""

    @property
    def station(self) -> Station:
        app: StationApp = self.app  # type: ignore[assignment]
        return app.station

    def today(self) -> _dt.date:
        """Today, as the app was told (tests inject a fixed day)."""
        app: StationApp = self.app  # type: ignore[assignment]
        return app.today()

    def fail(self, exc: BaseException) -> None:
        """Show an error as a notification (never a traceback)."""
        self.notify(describe_error(exc), title="错误", severity="error", timeout=10)
