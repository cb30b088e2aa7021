"""Each application operation run through both front ends, the command line and the terminal UI,
which must agree because both call the same certgen / verify service."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable

from certgen.issuing.issuer import Issued
from certgen.station import Station
from certgen.trust import PublicKeyInfo
from kiosk.app import StationApp
from tests.conftest import make_record
from tests.test_cli import run
from tests.test_kiosk import drive, type_into


def _issue(station: Station, key: PublicKeyInfo, tmp_path: Path) -> Issued:
    from certgen.issuing.issuer import Issuer
    from tests.conftest import PASSPHRASE

    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        return issuer.issue(reg, make_record(), batch_id="B1", row_key="r1")


def _ui_rows(station: Station, text: str) -> list[list[str]]:
    rows: list[list[str]] = []

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        await type_into(pilot, "#search", text)
        await pilot.press("enter")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        rows.extend([str(c) for c in table.get_row_at(i)] for i in range(table.row_count))

    drive(station, "register", script)
    return rows


def test_register_find_knows_a_key_revocation_in_both_front_ends(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    # revoking the signing key revokes every certificate it signed: the CLI and the UI computed
    # "revoked" by hand from certificate and batch revocations only, and both said not revoked
    station, key = keyed_station
    cert = _issue(station, key, tmp_path)
    station.revoke("key", key.kid_hex, "私钥泄露")

    code, out, _ = run("register", "find", "张三", "--json", home=station.home.root)
    found = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [f["number"] for f in found] == [cert.record.number]
    assert found[0]["revoked"] is True and found[0]["revocation"]["scope"] == "key"
    code, out, _ = run("register", "find", "张三", home=station.home.root)
    assert "已吊销（密钥）" in out

    rows = _ui_rows(station, "张三")
    assert [r[0] for r in rows] == [cert.record.number]
    assert rows[0][5] == "已吊销（密钥）"


def test_register_find_agrees_on_a_live_certificate(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, key = keyed_station
    cert = _issue(station, key, tmp_path)
    _, out, _ = run("register", "find", cert.record.number or "", "--json", home=station.home.root)
    cli_found = [json.loads(line) for line in out.splitlines()]
    ui_rows = _ui_rows(station, cert.record.number or "")
    assert [f["number"] for f in cli_found] == [r[0] for r in ui_rows] == [cert.record.number]
    assert cli_found[0]["revoked"] is False and ui_rows[0][5] == ""
