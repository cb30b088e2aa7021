"""Snapshot tests of the station's main screens (pytest-textual-snapshot).

The station lives at a relative path inside each test's own temporary folder (so concurrent runs
never share it) with a key of fixed validity: what the screens show is the same on every machine.
Update the snapshots deliberately: pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from certgen.issuing.issuer import Issuer
from certgen.station import Station
from certgen.station.home import StationHome
from kiosk.app import build_app
from tests.conftest import FILING, INSTITUTION, PASSPHRASE, make_record

SIZE = (120, 40)


@pytest.fixture
def station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Station:
    monkeypatch.chdir(tmp_path)
    station = Station(StationHome(Path("station-home"), "--home").ensure())
    station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1), years=10)
    return station


def test_home_screen(snap_compare: Any, station: Station) -> None:
    assert snap_compare(build_app(station.home, "home"), terminal_size=SIZE)


def test_issue_screen(snap_compare: Any, station: Station) -> None:
    assert snap_compare(build_app(station.home, "issue"), terminal_size=SIZE)


def test_verify_screen_with_a_valid_certificate(snap_compare: Any, station: Station, tmp_path: Path) -> None:
    with station.register() as reg:
        issued = Issuer(station, PASSPHRASE, out_dir=Path("out")).issue(reg, make_record(name="赵孟𫖯"))

    async def scan(pilot: Pilot[None]) -> None:
        pilot.app.screen.query_one("#scan").value = issued.qr_text  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()

    app = build_app(station.home, "verify")
    assert snap_compare(app, terminal_size=SIZE, run_before=scan)
