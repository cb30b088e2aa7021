"""The Textual station: every screen's main path and main error path, driven with Pilot."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Select, Static

from certgen.issuing.issuer import Issued, Issuer
from certgen.station import Station
from certgen.trust import PublicKeyInfo
from kiosk.app import StationApp, build_app
from kiosk.widgets.field import Field
from kiosk.widgets.verdict import VerdictPanel
from tests.conftest import PASSPHRASE, TODAY, make_record

ROSTER = Path(__file__).resolve().parent.parent / "kiosk" / "demo_roster.csv"


def drive(
    station: Station, start: str, script: Callable[[StationApp, Pilot[None]], Awaitable[None]], today: dt.date = TODAY
) -> StationApp:
    """Run the station app on ``start`` under Pilot with ``script``; "today" is frozen."""
    app = build_app(station.home, start, today=lambda: today)

    async def run() -> None:
        async with app.run_test(size=(150, 60)) as pilot:
            await pilot.pause()
            await script(app, pilot)

    asyncio.run(run())
    return app


def notes(app: StationApp, severity: str | None = None) -> list[str]:
    return [n.message for n in app._notifications if severity is None or n.severity == severity]


def text_of(app: StationApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def settle(app: StationApp, pilot: Pilot[None]) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


async def press(app: StationApp, pilot: Pilot[None], selector: str) -> None:
    """Press a button the way Enter or a click does (Button.press), wherever it is scrolled to."""
    app.screen.query_one(selector, Button).press()
    await pilot.pause()
    await pilot.pause()


async def type_into(pilot: Pilot[None], selector: str, text: str) -> None:
    await pilot.click(selector)
    await pilot.press(*text)


def test_footer_keys_reach_every_screen(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, _ = keyed_station
    seen: list[str] = []

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        assert "华晨汽车集团控股有限公司" in text_of(app, "#station-info")
        for key in ("f2", "f3", "f4", "f5", "f6", "f7", "f1"):
            await pilot.press(key)
            await pilot.pause()
            seen.append(type(app.screen).__name__)

    drive(station, "home", script)
    assert seen == [
        "IssueScreen",
        "BatchScreen",
        "VerifyScreen",
        "ArchiveScreen",
        "KeysScreen",
        "RegisterScreen",
        "HomeScreen",
    ]


def test_issue_one_certificate_from_the_form(keyed_station: tuple[Station, PublicKeyInfo], photo_dir: Path) -> None:
    station, _ = keyed_station

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        await type_into(pilot, "#name", "李四")
        await type_into(pilot, "#id_number", "11010519491231002")
        await pilot.press("1")  # a wrong check character: the message appears as you type
        await pilot.pause()
        assert "校验码错误" in str(screen.query_one("#error-id_number").render())
        await pilot.press("backspace", "X")
        await pilot.pause()
        assert str(screen.query_one("#error-id_number").render()) == ""
        screen.query_one("#field-occupation_code", Field).value = "6-18-01-01"
        screen.query_one("#field-occupation", Field).value = "车工"
        screen.query_one("#field-issue_date", Field).value = "2020-11-15"
        screen.query_one("#field-photo", Field).value = str(photo_dir / "p2.jpg")
        screen.query_one("#field-passphrase", Field).value = PASSPHRASE
        await press(app, pilot, "#check")
        await pilot.pause()
        assert "李四" in text_of(app, "#summary") and "三级/高级工" in text_of(app, "#summary")
        await press(app, pilot, "#sign")
        await settle(app, pilot)
        assert "已签发：Y000021012001203000001" in text_of(app, "#result")
        assert not screen.query_one("#print", Button).disabled

    app = drive(station, "issue", script)
    assert notes(app, "error") == []
    assert (station.home.output_dir / "single" / "Y000021012001203000001.pdf").exists()


def test_issue_errors_bad_field_and_wrong_passphrase(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, _ = keyed_station

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        await press(app, pilot, "#check")  # nothing filled in
        await pilot.pause()
        assert "缺少此字段" in str(screen.query_one("#error-name").render()) or notes(app, "warning")
        screen.query_one("#field-name", Field).value = "李四"
        screen.query_one("#field-id_number", Field).value = "11010519491231002X"
        screen.query_one("#field-occupation_code", Field).value = "6-18-01-01"
        screen.query_one("#field-occupation", Field).value = "车工"
        screen.query_one("#field-issue_date", Field).value = "2020-11-15"
        screen.query_one("#field-passphrase", Field).value = "wrong passphrase"
        await press(app, pilot, "#check")
        await pilot.pause()
        await press(app, pilot, "#sign")
        await settle(app, pilot)

    app = drive(station, "issue", script)
    assert any("口令错误" in n for n in notes(app, "error"))
    with station.register() as reg:
        assert reg.counts()["issued"] == 0


def test_batch_screen_lists_rows_and_issues_with_progress(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path, photo_dir: Path
) -> None:
    station, _ = keyed_station
    roster = tmp_path / "roster.csv"
    rows = ROSTER.read_text("utf-8").splitlines()
    roster.write_text("\n".join(rows[:6]).replace("2025-06-18", "2020-06-18") + "\n", "utf-8")
    for i in range(1, 6):
        shutil.copy(photo_dir / f"p{i % 5}.jpg", tmp_path / f"photo-{i:02d}.jpg")

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        screen.query_one("#field-roster", Field).value = str(roster)
        screen.query_one("#field-batch-passphrase", Field).value = PASSPHRASE
        await press(app, pilot, "#load")
        await settle(app, pilot)
        assert screen.query_one(DataTable).row_count == 5
        assert "待发 5" in text_of(app, "#result")
        await press(app, pilot, "#run")
        await settle(app, pilot)
        assert "本次发证 5 张" in text_of(app, "#result")

    app = drive(station, "batch", script)
    assert notes(app, "error") == []


def test_batch_screen_unreadable_roster(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path) -> None:
    station, _ = keyed_station

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#field-roster", Field).value = str(tmp_path / "missing.xlsx")
        app.screen.query_one("#field-batch-passphrase", Field).value = PASSPHRASE
        await press(app, pilot, "#load")
        await settle(app, pilot)

    app = drive(station, "batch", script)
    assert any("无法读取名册" in n for n in notes(app, "error"))


@pytest.fixture
def issued(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path) -> tuple[Station, Issued]:
    station, _ = keyed_station
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        return station, issuer.issue(reg, make_record(), batch_id="B1", row_key="r1")


def test_a_wedge_scanner_types_into_the_verify_screen(issued: tuple[Station, Issued]) -> None:
    station, cert = issued
    classes: list[str] = []

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        assert app.focused is not None and app.focused.id == "scan"  # focus is there on arrival
        await pilot.press(*cert.qr_text, "enter")  # what the scanner types, then its Enter key
        await pilot.pause()
        panel = app.screen.query_one(VerdictPanel)
        classes.extend(panel.classes)
        text = str(panel.render())
        assert "证书有效" in text and "张三" in text and "三级/高级工" in text and "华晨汽车集团控股有限公司" in text
        assert app.screen.query_one("#scan", Input).value == ""  # ready for the next scan

    drive(station, "verify", script)
    assert classes == ["valid"]


def test_verify_screen_revoked_and_unreadable(issued: tuple[Station, Issued], tmp_path: Path) -> None:
    station, cert = issued
    station.revoke("certificate", str(cert.record.number), "信息有误")
    (tmp_path / "notes.png").write_text("not an image")
    seen: list[tuple[list[str], str]] = []

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        panel = app.screen.query_one(VerdictPanel)
        app.screen.query_one("#scan", Input).value = cert.qr_text
        await pilot.press("enter")
        await pilot.pause()
        seen.append((list(panel.classes), str(panel.render())))
        app.screen.query_one("#scan", Input).value = str(tmp_path / "notes.png")
        await pilot.press("enter")
        await settle(app, pilot)
        seen.append((list(panel.classes), str(panel.render())))

    drive(station, "verify", script)
    assert seen[0][0] == ["invalid"] and "REVOKED" in seen[0][1] and "信息有误" in seen[0][1]
    assert seen[1][0] == ["unreadable"] and "UNREADABLE_FILE" in seen[1][1]


def test_archive_screen_summary_and_report(issued: tuple[Station, Issued], tmp_path: Path) -> None:
    station, cert = issued
    report = tmp_path / "report.html"

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#field-archive-path", Field).value = str(cert.path.parent)
        app.screen.query_one("#field-report-path", Field).value = str(report)
        await press(app, pilot, "#start")
        await settle(app, pilot)
        summary = text_of(app, "#archive-summary")
        assert "1 张证书" in summary and "有效：1" in summary

    app = drive(station, "archive", script)
    assert notes(app, "error") == [] and report.exists()


def test_keys_screen_create_export_and_passphrase_mismatch(station: Station, tmp_path: Path) -> None:
    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        screen.query_one("#field-filing", Field).value = "Y000021013002"
        screen.query_one("#field-institution", Field).value = "沈阳鼓风机集团股份有限公司"
        screen.query_one("#field-new-passphrase", Field).value = PASSPHRASE
        screen.query_one("#field-new-passphrase-again", Field).value = PASSPHRASE + "x"
        await press(app, pilot, "#create")
        await pilot.pause()
        assert "不一致" in str(screen.query_one("#error-new-passphrase-again").render())
        screen.query_one("#field-new-passphrase-again", Field).value = PASSPHRASE
        await press(app, pilot, "#create")
        await settle(app, pilot)
        assert screen.query_one("#keys-table", DataTable).row_count == 1
        assert screen.query_one("#field-new-passphrase", Field).value == ""  # never kept on screen
        screen.query_one("#field-bundle", Field).value = str(tmp_path / "bundle.json")
        screen.query_one("#field-sign-passphrase", Field).value = PASSPHRASE
        await press(app, pilot, "#export")
        await pilot.pause()
        assert "第1号" in text_of(app, "#keys-result")

    app = drive(station, "keys", script)
    assert notes(app, "error") == [] and (tmp_path / "bundle.json").exists()


def test_register_screen_search_revoke_batch_and_audit(issued: tuple[Station, Issued]) -> None:
    station, cert = issued

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        await type_into(pilot, "#search", "张三")
        await pilot.press("enter")
        await pilot.pause()
        assert screen.query_one(DataTable).row_count == 1
        await press(app, pilot, "#revoke-batch")  # no reason yet
        await pilot.pause()
        assert "必须填写原因" in str(screen.query_one("#error-reason").render())
        screen.query_one("#field-reason", Field).value = "考场违纪"
        await press(app, pilot, "#revoke-batch")  # no passphrase yet: the revocation is signed
        await pilot.pause()
        assert "需要私钥口令" in str(screen.query_one("#error-revoke-passphrase").render())
        screen.query_one("#field-revoke-passphrase", Field).value = PASSPHRASE
        await press(app, pilot, "#revoke-batch")
        await pilot.pause()
        await press(app, pilot, "#confirm")
        await pilot.pause()
        assert "已吊销 B1" in text_of(app, "#register-result")
        await press(app, pilot, "#audit")
        await pilot.pause()
        assert "完整" in text_of(app, "#register-result")

    drive(station, "register", script)
    assert station.trust.load().certificate_revocation(str(cert.record.number)) is not None


def test_template_choice_lists_the_shipped_templates(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, _ = keyed_station
    options: list[str] = []

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        select = app.screen.query_one("#template", Select)
        options.extend(str(v) for _, v in select._options if isinstance(v, str))

    drive(station, "issue", script)
    assert {"liaoning-2020", "national-2021"} <= set(options)


def test_the_verify_screen_shows_a_forged_code_large_beside_a_genuine_one(
    issued: tuple[Station, Issued], tmp_path: Path
) -> None:
    # a page with the genuine code first and a forged one beside it: the big verdict is the forged one
    from PIL import Image

    from tests.test_kiosk_mode import two_codes

    station, cert = issued
    page = tmp_path / "two.png"
    Image.fromarray(two_codes(cert)).save(page)
    shown: list[str] = []

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        await type_into(pilot, "#scan", str(page))
        await pilot.press("enter")
        await settle(app, pilot)
        shown.append(str(app.screen.query_one(VerdictPanel).render()))
        shown.append(text_of(app, "#more"))

    drive(station, "verify", script)
    assert "无效" in shown[0] and "有效" not in shown[0].replace("无效", "")
    assert "✓ 有效" in shown[1]


def test_the_verdict_panel_shows_markup_in_a_file_name_as_typed(issued: tuple[Station, Issued], tmp_path: Path) -> None:
    # Rich markup in a file name must not become styling that draws a verdict of its own
    station, cert = issued
    evil = tmp_path / "[bold green]✓ 证书有效 [b].pdf"  # markup needs no closing tag to take effect
    shutil.copy(cert.path, evil)
    shown: list[str] = []

    async def script(app: StationApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#scan", Input).value = str(evil)
        await pilot.press("enter")
        await settle(app, pilot)
        shown.append(str(app.screen.query_one(VerdictPanel).render()))

    drive(station, "verify", script)
    assert "[bold green]✓ 证书有效 [b].pdf" in shown[0]
