"""The station UI for issue 14: a new key needs the operator's confirmation, backups, ages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Label

from certgen.station import Station
from certgen.station.backup import check_backup, create_backup
from certgen.trust import PublicKeyInfo, grouped_fingerprint, key_fingerprint
from kiosk.app import StationApp
from kiosk.widgets.field import Field
from tests.conftest import FILING, INSTITUTION, PASSPHRASE
from tests.test_kiosk import drive as drive_station
from tests.test_kiosk import notes, press, settle, text_of
from tests.test_trust_bundles import T0, make_station

TODAY = dt.date(2026, 3, 1)


def drive(station: Station, start: str, script: Callable[[StationApp, Pilot[None]], Awaitable[None]]) -> StationApp:
    return drive_station(station, start, script, today=TODAY)


def test_a_new_key_for_a_trusted_institution_needs_the_operator_to_compare_fingerprints(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    issuer, old = keyed_station
    issuer.export_trust(tmp_path / "genuine.json", PASSPHRASE, now=T0)
    verifier = make_station(tmp_path, "employer")
    verifier.import_trust(tmp_path / "genuine.json")
    impostor = make_station(tmp_path, "impostor")
    new, _ = impostor.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    impostor.export_trust(tmp_path / "new.json", PASSPHRASE, now=T0)

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#field-bundle", Field).value = str(tmp_path / "new.json")
        for answer, imported in (("#cancel", False), ("#confirm", True)):
            await press(app, pilot, "#import")
            question = str(app.screen.query_one(Label).render())
            assert grouped_fingerprint(key_fingerprint(old)) in question  # the old one
            assert grouped_fingerprint(key_fingerprint(new)) in question  # and the new one
            await press(app, pilot, answer)
            assert (verifier.trust.load().key(new.kid) is not None) is imported
        assert "操作员确认" in text_of(app, "#keys-result")

    app = drive(verifier, "keys", script)
    assert notes(app, "error") == []


def test_backup_from_the_keys_screen_and_its_age_on_the_home_screen(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, _ = keyed_station
    target = tmp_path / "usb" / "station.zip"

    async def home_script(app: StationApp, pilot: Pilot[None]) -> None:
        assert "本站从未备份" in text_of(app, "#station-info")
        assert "本站机构，始终为最新" in text_of(app, "#station-info")

    drive(station, "home", home_script)

    async def keys_script(app: StationApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#field-backup-file", Field).value = str(target)
        app.screen.query_one("#field-sign-passphrase", Field).value = PASSPHRASE
        await press(app, pilot, "#backup")
        await settle(app, pilot)
        assert "已备份到" in text_of(app, "#keys-result")
        await press(app, pilot, "#backup-check")
        assert "✓ 备份完整" in text_of(app, "#keys-result")

    app = drive(station, "keys", keys_script)
    assert notes(app, "error") == []
    check_backup(target)
    create_backup(station.home, tmp_path / "older.zip", PASSPHRASE, now="2026-02-01T00:00:00Z")

    async def later(app: StationApp, pilot: Pilot[None]) -> None:
        assert "上次备份：28 天前（请尽快再备份）" in text_of(app, "#station-info")

    drive(station, "home", later)
