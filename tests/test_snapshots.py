"""Snapshot tests of the station's main screens (pytest-textual-snapshot).

The station lives at a relative path inside each test's own temporary folder (so concurrent runs
never share it) with a key of fixed validity, and the app's clock is frozen at ``TODAY``: what the
screens show is the same on every machine and every day.
Update the snapshots deliberately: pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from certgen.issuing.issuer import Issuer
from certgen.station import Station
from certgen.station.home import StationHome
from kiosk.app import build_app
from tests.conftest import FILING, INSTITUTION, PASSPHRASE, TODAY, make_record

SIZE = (120, 40)


@pytest.fixture
def station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Station:
    monkeypatch.chdir(tmp_path)
    station = Station(StationHome(Path("station-home"), "--home").ensure())
    station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1), years=10)
    return station


def frozen() -> dt.date:
    return TODAY


def test_home_screen(snap_compare: Any, station: Station) -> None:
    assert snap_compare(build_app(station.home, "home", today=frozen), terminal_size=SIZE)


def test_issue_screen(snap_compare: Any, station: Station) -> None:
    assert snap_compare(build_app(station.home, "issue", today=frozen), terminal_size=SIZE)


def test_the_issue_screen_proposes_the_apps_today_not_the_machines(station: Station) -> None:
    """The guard against the clock leaking into a snapshot: two frozen days, two proposed dates."""
    from kiosk.widgets.field import Field

    async def proposed(day: dt.date) -> str:
        async with build_app(station.home, "issue", today=lambda: day).run_test(size=SIZE) as pilot:
            await pilot.pause()
            return str(pilot.app.screen.query_one("#field-issue_date", Field).value)

    assert asyncio.run(proposed(TODAY)) == "2024-05-20"
    assert asyncio.run(proposed(dt.date(2031, 2, 28))) == "2031-02-28"
    stored = Path(__file__).parent / "__snapshots__" / "test_snapshots" / "test_issue_screen.svg"
    assert "2024-05-20" in stored.read_text("utf-8")


def test_verify_screen_with_a_valid_certificate(snap_compare: Any, station: Station, tmp_path: Path) -> None:
    with station.register() as reg:
        issued = Issuer(station, PASSPHRASE, out_dir=Path("out")).issue(reg, make_record(name="赵孟𫖯"))

    async def scan(pilot: Pilot[None]) -> None:
        pilot.app.screen.query_one("#scan").value = issued.qr_text  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()

    app = build_app(station.home, "verify", today=frozen)
    assert snap_compare(app, terminal_size=SIZE, run_before=scan)
