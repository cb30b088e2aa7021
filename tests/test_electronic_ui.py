"""The station UI: choosing the electronic form when issuing, and the verify screen's signature line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Select

from certgen.pdf.fonts import bundled_font
from certgen.pdf.seal import sample_seal
from certgen.station import Station
from certgen.station.home import StationHome
from kiosk.app import StationApp
from kiosk.widgets.field import Field
from kiosk.widgets.verdict import VerdictPanel
from tests.conftest import FILING, INSTITUTION, PASSPHRASE
from tests.test_kiosk import drive, notes, press, settle, text_of


def test_issue_an_electronic_certificate_from_the_form_and_verify_its_signature(station: Station) -> None:
    station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1), years=30)
    station.home.seal_path.write_bytes(sample_seal(INSTITUTION, bundled_font().path).png)  # the station's own seal

    async def issue(app: StationApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        for name, value in (
            ("name", "李四"), ("id_number", "11010519491231002X"), ("occupation_code", "6-18-01-01"),
            ("occupation", "车工"), ("issue_date", "2020-11-15"), ("passphrase", PASSPHRASE),
        ):  # fmt: skip
            screen.query_one(f"#field-{name}", Field).value = value
        screen.query_one("#form", Select).value = "both"
        await press(app, pilot, "#check")
        await press(app, pilot, "#sign")
        await settle(app, pilot)
        assert "电子证书PDF" in text_of(app, "#result") and "纸质证书PDF" in text_of(app, "#result")

    app = drive(station, "issue", issue)
    assert notes(app, "error") == []
    electronic = station.home.output_dir / "single" / "Y000021012001203000001-e.pdf"
    assert electronic.exists() and (station.home.output_dir / "single" / "Y000021012001203000001.pdf").exists()
    seen: list[str] = []

    async def verify(app: StationApp, pilot: Pilot[None]) -> None:
        panel = app.screen.query_one(VerdictPanel)
        app.screen.query_one("#scan", Input).value = str(electronic)
        await pilot.press("enter")
        await settle(app, pilot)
        seen.append(str(panel.render()))
        tampered = Path(str(electronic) + ".cut.pdf")
        data = electronic.read_bytes()
        tampered.write_bytes(data[: data.index(b"%%EOF") + 6])  # the signature's revision cut off
        app.screen.query_one("#scan", Input).value = str(tampered)
        await pilot.press("enter")
        await settle(app, pilot)
        seen.append(str(panel.render()))

    drive(station, "verify", verify)
    assert "证书有效" in seen[0] and "PDF签名：PDF签名完好，覆盖全文，签名者：" + INSTITUTION in seen[0]
    assert "证书无效" in seen[1] and "PDF_SIGNATURE_MISSING" in seen[1] and "PDF签名：无PDF签名" in seen[1]


def test_the_command_line_issues_electronic_certificates_and_verify_reports_the_signature(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from kiosk.cli import cli
    from tests.conftest import resident_id

    home = tmp_path / "home"
    station = Station(StationHome(home, "--home").ensure())
    station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1), years=30)
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "姓名,证件类型,证件号码,职业编码,职业名称,职业技能等级,发证日期\n"
        f"王五,201,{resident_id(1)},6-18-01-01,车工,3,2020-11-15\n",
        "utf-8",
    )
    seal = tmp_path / "seal.png"
    seal.write_bytes(sample_seal(INSTITUTION, bundled_font().path).png)
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE, "utf-8")
    runner = CliRunner()
    base = ["--home", str(home)]
    result = runner.invoke(
        cli, [*base, "issue", str(roster), "--electronic", "--paper", "--seal", str(seal), "--passphrase-file",
              str(secret)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (home / "issued").rglob("*.pdf"))
    assert files == ["Y000021012001203000001-e.pdf", "Y000021012001203000001.pdf"]
    electronic = next((home / "issued").rglob("*-e.pdf"))
    out = runner.invoke(cli, [*base, "verify", str(electronic), "--json"])
    assert out.exit_code == 0, out.output
    line = json.loads(out.stdout.splitlines()[0])
    assert line["status"] == "valid" and line["claims"]["form"] == "electronic"
    assert line["pdf_signature"]["intact"] and line["pdf_signature"]["whole_file"]
    assert line["pdf_signature"]["timestamped"] is False  # offline: the signing time is the signer's claim
    assert runner.invoke(cli, [*base, "keys", "x509", "--passphrase-file", str(secret)]).stdout.startswith(
        "所有本站密钥均已有文档签名证书"
    )
