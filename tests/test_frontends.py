"""Each application operation run through both front ends, the command line and the terminal UI,
which must agree because both call the same certgen / verify service."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from certgen.issuing.issuer import Issued
from certgen.station import Station
from certgen.trust import PublicKeyInfo
from kiosk.app import StationApp
from kiosk.widgets.field import Field
from tests.conftest import PASSPHRASE, make_record
from tests.test_cli import run
from tests.test_kiosk import ROSTER, drive, notes, press, settle, type_into


def _issue(station: Station, key: PublicKeyInfo, tmp_path: Path) -> Issued:
    from certgen.issuing.issuer import Issuer

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


def test_an_unknown_report_format_is_refused_alike_before_any_work(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, key = keyed_station
    cert = _issue(station, key, tmp_path)
    report = tmp_path / "report.pdf"
    code, _, err = run("verify", str(cert.path), "--report", str(report), home=station.home.root)
    assert code == 2 and "report.pdf" in err and ".csv" in err

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#field-archive-path", Field).value = str(cert.path.parent)
        app.screen.query_one("#field-report-path", Field).value = str(report)
        await press(app, pilot, "#start")
        await settle(app, pilot)

    app = drive(station, "archive", script)
    errors = notes(app, "error")
    assert len(errors) == 1 and errors[0] in err
    assert not report.exists()


def test_issue_a_roster_with_relative_photo_names_from_both_front_ends(
    keyed_station: tuple[Station, PublicKeyInfo],
    tmp_path: Path,
    photo_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `certkiosk issue ROSTER` end to end; a relative 照片 path is found beside the roster, whatever the
    # current directory (the CLI looked in the current directory, the UI beside the roster)
    station, _ = keyed_station
    intake = tmp_path / "intake"
    intake.mkdir()
    rows = ROSTER.read_text("utf-8").splitlines()
    roster = intake / "roster.csv"
    roster.write_text("\n".join(rows[:6]).replace("2025-06-18", "2020-06-18") + "\n", "utf-8")
    for i in range(1, 6):
        shutil.copy(photo_dir / f"p{i % 5}.jpg", intake / f"photo-{i:02d}.jpg")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    code, out, err = run("issue", str(roster), "--out", str(tmp_path / "out"), home=station.home.root,
                         env={"CERTKIOSK_PASSPHRASE": PASSPHRASE})  # fmt: skip
    assert code == 0, out + err
    assert "本次发证 5 张" in out
    pdfs = sorted((tmp_path / "out").rglob("Y*.pdf"))
    assert len(pdfs) == 5
    code, out, _ = run("verify", *map(str, pdfs), "--json", home=station.home.root)
    assert code == 0 and [json.loads(line)["status"] for line in out.splitlines()] == ["valid"] * 5

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#field-roster", Field).value = str(roster)
        app.screen.query_one("#field-batch-passphrase", Field).value = PASSPHRASE
        await press(app, pilot, "#load")
        await settle(app, pilot)
        shown.append(str(app.screen.query_one("#result", Static).render()))

    shown: list[str] = []
    app = drive(station, "batch", script)
    assert notes(app, "error") == []
    assert "待发 0，有错误 0 行，已发 5" in shown[0]


def test_register_find_from_the_command_line_by_name_id_number_and_number(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    import datetime as dt

    from certgen.issuing.issuer import Issuer
    from tests.conftest import resident_id

    station, key = keyed_station
    home = station.home.root
    old = _issue(station, key, tmp_path)
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        other = issuer.issue(reg, make_record(name="李四", id_number=resident_id(3), level=2))
        corrected, when = {"job_type": "数控车工"}, dt.date(2020, 12, 1)
        new = issuer.reissue(reg, old.record.number or "", "correction", changes=corrected, issue_date=when)
    old_no, new_no = old.record.number or "", new.record.number or ""

    code, out, _ = run("register", "find", "张三", home=home)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{old_no}  张三  三级/高级工  已发证，已吊销（证书）"
    assert re.fullmatch(rf"    已换发（更正）：新证书 {new_no}（\S+）", lines[1])
    assert lines[2] == f"{new_no}  张三  三级/高级工  已发证"
    assert re.fullmatch(rf"    换发（更正）：替代原证书 {old_no}（\S+）", lines[3])
    assert len(lines) == 4  # 李四 is not listed

    code, out, _ = run("register", "find", "张三", "--json", home=home)
    found = {f["number"]: f for f in map(json.loads, out.splitlines())}
    assert code == 0 and set(found) == {old_no, new_no}
    assert found[old_no]["revoked"] is True and found[old_no]["revocation"]["scope"] == "certificate"
    assert found[new_no]["revoked"] is False and found[new_no]["revocation"] is None
    assert found[new_no]["record"]["job_type"] == "数控车工" and found[old_no]["record"]["job_type"] is None
    assert found[new_no]["reissues"] == found[old_no]["reissues"]
    assert [(x["number"], x["replaces"], x["reason"]) for x in found[new_no]["reissues"]] == [
        (new_no, old_no, "correction")
    ]
    assert all(f["status"] == "issued" and f["record"]["name"] == "张三" for f in found.values())

    _, out, _ = run("register", "find", resident_id(3)[-6:], "--json", home=home)  # part of an ID number
    assert [json.loads(line)["number"] for line in out.splitlines()] == [other.record.number]
    _, out, _ = run("register", "find", other.record.number or "", home=home)
    assert out == f"{other.record.number}  李四  二级/技师  已发证\n"

    code, out, err = run("register", "find", "王五", home=home)
    assert code == 0 and out == "没有找到包含「王五」的证书\n"
    code, out, err = run("register", "find", "王五", "--json", home=home)
    assert code == 0 and out == "" and "没有找到包含「王五」的证书" in err  # stdout stays JSON lines


def test_every_file_a_station_writes_in_its_home_is_a_path_its_home_names(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    # every station path comes from StationHome (certkiosk locate lists them), not from code of its own
    station, key = keyed_station
    cert = _issue(station, key, tmp_path)
    station.revoke("certificate", cert.record.number or "", "测试", PASSPHRASE)
    home = station.home.root
    assert run("verify", str(cert.path.parent), home=home)[0] == 1  # revoked
    assert run("trust", "export", str(tmp_path / "b.json"), "--passphrase-file", str(_passfile(tmp_path)),
               home=home)[0] == 0  # fmt: skip
    _, out, _ = run("locate", "--json", home=home)
    named = {Path(p).name for p in json.loads(out).values()}
    companions = {f"{n}{s}" for n in named for s in ("-wal", "-shm", "-journal")}
    written = {p.name for p in home.iterdir()}
    assert written - named - companions == set()


def _passfile(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE, "utf-8")
    return path
