"""证书印制流水码 (print serial) and the provincial query URL: the optional items of 人社鉴发〔2021〕1号.

The print serial comes from the roster's 印制流水码 column (or the issue screen, or ``reissue
--print-serial``), is validated, recorded with the paper form in the register (one blank is used
once, guarded by the register itself), printed only on the paper form of a template that places
it, and listed in the batch manifest and ``register find``. The provincial query URL comes from the
province profile (a station's own profile wins) and is drawn only when there is one.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pdfplumber
import pytest
from click.testing import CliRunner

from certgen.exceptions import PrintSerialUsed
from certgen.issuing.batch import batch_id_of, plan_batch, run_batch
from certgen.issuing.issuer import Issuer
from certgen.issuing.reports import manifest_text
from certgen.issuing.roster import read_roster
from certgen.pdf.measure import measure
from certgen.printserial import normal_print_serial
from certgen.station import Station
from tests.conftest import PASSPHRASE, make_record, resident_id
from tests.test_batch import roster_rows, write_csv
from tests.test_electronic import pyhanko_says_valid
from verify.files import verify_bytes

LIAONING_PROFILE = Path(__file__).parents[1] / "certgen" / "profiles" / "liaoning.toml"


def _text(path: Path) -> str:
    with pdfplumber.open(path) as pdf:
        return "".join(pdf.pages[0].extract_text().split())


def _national(issuer: Issuer, forms: tuple[str, ...] = ("paper",)) -> Issuer:
    return Issuer(
        issuer.station, PASSPHRASE, template_name="national-2021", out_dir=issuer.out_dir, forms=forms,
        sample_seal="electronic" in forms,
    )  # fmt: skip


def _roster(tmp_path: Path, serials: list[str], name: str = "roster.csv") -> Path:
    rows = roster_rows(len(serials))
    rows[0] = [*rows[0], "印制流水码"]
    for row, serial in zip(rows[1:], serials, strict=True):
        row.append(serial)
    return write_csv(tmp_path / name, rows, "utf-8")


@pytest.mark.parametrize(
    ("value", "stored"),
    [("LN2021-000101", "LN2021-000101"), (" ln0001 ", "LN0001"), ("ＬＮ０００１", "LN0001"), ("", None), (None, None)],
)
def test_a_print_serial_is_normalised(value: str | None, stored: str | None) -> None:
    assert normal_print_serial(value) == stored


@pytest.mark.parametrize("value", ["12", "LN 0001", "LN0001；", "ABCDEF", "1" * 25, "=1+1"])
def test_a_malformed_print_serial_is_refused_naming_the_value(value: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"印制流水码「{value}」无效：应为4-24位")):
        normal_print_serial(value)


def test_a_batch_prints_each_blank_serial_on_the_paper_form_and_records_it(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    issuer = _national(issuer, ("paper", "electronic"))
    roster = read_roster(_roster(tmp_path, ["LN2021-000101", "LN2021-000102"]))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    assert plan.problems == []
    result = run_batch(issuer, plan, workers=2)  # the serials reach the worker processes
    with issuer.station.register() as reg:
        issued = [c for c in reg.batch(plan.batch_id) if c.status == "issued"]
        serials = {c.record.name: reg.print_serials(c.number) for c in issued}
        assert reg.check() == []  # the new table is covered by the audit chain
    by_name = {row.fields["name"]: row.extras["印制流水码"] for row in roster.rows}
    assert serials == {name: [serial] for name, serial in by_name.items()}
    for cert in issued:
        paper = _text(Path(str(cert.output_path)))
        serial = by_name[cert.record.name]
        assert paper.endswith(f"证书印制流水码：{serial}") or f"证书印制流水码：{serial}" in paper
        # after the two national URLs, in the notice's order
        assert paper.index("评价机构查询网址：http://pjjg.osta.org.cn") < paper.index("证书印制流水码")
        electronic = Path(str(cert.output_path)).with_name(f"{cert.number}-e.pdf")
        assert "流水码" not in _text(electronic)  # never on the electronic form
        signed = electronic.read_bytes()  # and it is still a valid signed certificate, for both
        verdict = verify_bytes(signed, electronic.name, issuer.station.trust.load())[0]
        key = issuer.station.trust.load().key(bytes.fromhex(str(cert.kid)))
        assert (verdict.status, verdict.reasons) == ("valid", ()) and key is not None and key.x509 is not None
        assert pyhanko_says_valid(signed, key.x509)
        rows, problems = measure(Path(str(cert.output_path)), issuer.template)
        assert problems == [] and [m.item for m in rows if not m.ok] == []
        assert {m.item: m.actual for m in rows}["证书印制流水码字号"] == 12.0
    manifest = json.loads((result.folder / "manifest.json").read_text("utf-8"))
    assert {c["name"]: c["print_serial"] for c in manifest["certificates"]} == by_name


def test_a_reprint_updates_the_batch_manifest_auditors_check_the_files_against(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    issuer = _national(issuer)
    roster = read_roster(_roster(tmp_path, ["LN3001", "LN3002"]))
    with issuer.station.register() as reg:
        result = run_batch(issuer, plan_batch(issuer, reg, roster, photo_dir))
    path = result.folder / "manifest.json"
    written = path.read_text("utf-8")
    assert manifest_text(json.loads(written)) == written  # the rewrite keeps the layout, byte for byte
    before = json.loads(written)["certificates"]
    number = before[0]["number"]
    with issuer.station.register() as reg:
        issuer.reprint(reg, number, "LN3009")
    after = json.loads(path.read_text("utf-8"))
    paper = result.folder / before[0]["file"]
    assert after["certificates"][0] == before[0] | {
        "sha256": hashlib.sha256(paper.read_bytes()).hexdigest(), "print_serial": "LN3009"
    }  # fmt: skip
    assert after["certificates"][1:] == before[1:] and after["checkpoint"] == json.loads(written)["checkpoint"]
    assert all(
        c["sha256"] == hashlib.sha256((result.folder / c["file"]).read_bytes()).hexdigest()
        for c in after["certificates"]
    )


def test_a_new_blank_named_for_a_certificate_issued_before_is_said_to_be_unused(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    # the roster run again with another blank on a row already issued: the row is skipped, and the
    # operator is told that this blank was not used (before, it was ignored without a word)
    issuer = _national(issuer)
    with issuer.station.register() as reg:
        first = run_batch(
            issuer, plan_batch(issuer, reg, read_roster(_roster(tmp_path, ["LN4001", "LN4002"])), photo_dir)
        )
    assert first.blanks_not_used == ()
    again = read_roster(_roster(tmp_path, ["LN4009", "LN4002"], "again.csv"))
    with issuer.station.register() as reg:
        result = run_batch(issuer, plan_batch(issuer, reg, again, photo_dir))
    assert result.issued == 0 and len(result.blanks_not_used) == 1
    row, number, serial = result.blanks_not_used[0]
    assert (row, serial) == (next(iter(again.rows)).row, "LN4009")
    with issuer.station.register() as reg:
        assert reg.print_serials(number) == ["LN4001"] and reg.print_serial_owner("LN4009") is None
    assert f"certkiosk reprint {number} --print-serial LN4009" in result.blank_notes()[0]


def test_the_print_serial_column_is_not_part_of_the_batch_identity(tmp_path: Path) -> None:
    first = read_roster(_roster(tmp_path, ["LN0001"], "a.csv"))
    corrected = read_roster(_roster(tmp_path, ["LN0009"], "b.csv"))
    assert batch_id_of(first) == batch_id_of(corrected)


def test_bad_duplicate_and_used_serials_are_row_problems_naming_row_and_value(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    issuer = _national(issuer)
    with issuer.station.register() as reg:
        used = issuer.issue(reg, make_record(id_number=resident_id(90), photo=None), print_serial="LN0500")
        plan = plan_batch(
            issuer, reg, read_roster(_roster(tmp_path, ["LN 01", "LN0600", "LN0600", "LN0500"])), photo_dir
        )
    assert [str(p) for p in plan.problems] == [
        "第2行：印制流水码「LN 01」无效：应为4-24位字母、数字或连字符（至少含一位数字），含有不允许的字符： ",
        "第4行：印制流水码 LN0600 与第3行重复：一张证书用纸只能使用一次",
        f"第5行：印制流水码 LN0500 已用于证书 {used.record.number}：一张证书用纸只能使用一次",
    ]


def test_an_electronic_only_batch_refuses_a_print_serial(issuer: Issuer, tmp_path: Path, photo_dir: Path) -> None:
    issuer = _national(issuer, ("electronic",))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, read_roster(_roster(tmp_path, ["LN0001"])), photo_dir)
    assert [str(p) for p in plan.problems] == ["第2行：印制流水码 LN0001 只用于纸质证书：本次只签发电子证书"]


def test_a_used_blank_is_refused_before_a_number_is_allocated(issuer: Issuer) -> None:
    issuer = _national(issuer)
    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(), print_serial="ln0001")
        assert reg.print_serials(str(first.record.number)) == ["LN0001"]
        before = reg.counts()
        with pytest.raises(PrintSerialUsed, match=f"印制流水码 LN0001 已用于证书 {first.record.number}"):
            issuer.issue(reg, make_record(id_number=resident_id(1)), print_serial="LN0001")
        assert reg.counts() == before  # nothing allocated, nothing voided


def test_the_register_itself_refuses_a_second_use_of_a_blank(issuer: Issuer) -> None:
    """The guard is the register's: even a caller that skipped the check cannot record a blank twice."""
    with issuer.station.register() as reg:
        one = issuer.issue(reg, make_record())
        two = issuer.issue(reg, make_record(id_number=resident_id(2)))
        reg.record_form(str(one.record.number), "paper", output_path=None, pdf_sha256=None, print_serial="LN0007")
        with pytest.raises(PrintSerialUsed, match=f"LN0007 已用于证书 {one.record.number}"):
            reg.record_form(
                str(two.record.number), "paper", output_path="x", pdf_sha256="0" * 64, print_serial="LN0007"
            )
        assert reg.form_files(str(two.record.number))[0][1] != "x"  # the form's row rolled back with it
        assert reg.print_serial_owner("LN0007") == one.record.number
    with sqlite3.connect(issuer.station.home.register_path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO print_serials VALUES ('LN0007', ?, 'paper', 'now')", (two.record.number,))


def test_editing_a_recorded_print_serial_is_found_by_register_check(issuer: Issuer) -> None:
    with issuer.station.register() as reg:
        issuer.issue(reg, make_record(), print_serial="LN0003")
    with sqlite3.connect(issuer.station.home.register_path) as db:
        db.execute("UPDATE print_serials SET serial = 'LN0004'")
    with issuer.station.register() as reg:
        problems = reg.check()
    assert any("print_serials" in p for p in problems), problems


def test_a_number_voided_before_issue_frees_its_blank(issuer: Issuer) -> None:
    with issuer.station.register() as reg:
        record = make_record()
        numbered = reg.allocate(record, "Y000021012001", kid=None)
        reg.record_form(str(numbered.number), "paper", output_path=None, pdf_sha256=None, print_serial="LN0042")
        assert reg.void_pending("测试", number=str(numbered.number)) == [numbered.number]
        assert reg.print_serial_owner("LN0042") is None
        assert reg.check() == []


def test_the_liaoning_template_records_but_does_not_print_the_serial(issuer: Issuer) -> None:
    assert issuer.template.optional_block("print_serial") is None  # its seed (附件6) has no such item
    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record(), print_serial="LN0101")
        assert reg.print_serials(str(issued.record.number)) == ["LN0101"]
    assert "LN0101" not in _text(issued.path)


def test_a_reissue_onto_a_new_blank_records_the_new_serial(issuer: Issuer) -> None:
    from kiosk.cli import cli

    issuer = _national(issuer)
    with issuer.station.register() as reg:
        old = issuer.issue(reg, make_record(), print_serial="LN0001")
    pw = issuer.station.home.root / "pw"
    pw.write_text(PASSPHRASE)
    args = ["--home", str(issuer.station.home.root), "reissue", str(old.record.number), "--reason", "lost",
            "--template", "national-2021", "--passphrase-file", str(pw), "--issue-date", "2024-05-20"]  # fmt: skip
    used = CliRunner().invoke(cli, [*args, "--print-serial", "LN0001"])
    assert used.exit_code != 0 and f"印制流水码 LN0001 已用于证书 {old.record.number}" in used.output
    done = CliRunner().invoke(cli, [*args, "--print-serial", "LN0002"])
    assert done.exit_code == 0, done.output
    with issuer.station.register() as reg:
        new = next(c for c in reg.find("张三") if c.number != old.record.number and c.status == "issued")
        assert reg.print_serials(new.number) == ["LN0002"]
    assert "证书印制流水码：LN0002" in _text(Path(str(new.output_path)))
    found = CliRunner().invoke(cli, ["--home", str(issuer.station.home.root), "register", "find", "张三", "--json"])
    serials = {json.loads(line)["number"]: json.loads(line)["print_serials"] for line in found.output.splitlines()}
    assert serials == {old.record.number: ["LN0001"], new.number: ["LN0002"]}
    text = CliRunner().invoke(cli, ["--home", str(issuer.station.home.root), "register", "find", "张三"])
    assert "印制流水码 LN0002" in text.output


# --- the provincial query URL ---------------------------------------------------------------------
def _with_province_url(station: Station, url: str) -> None:
    """A station's own Liaoning profile with a query URL (how a station sets it: docs/layout.md)."""
    station.home.profiles_dir.mkdir(parents=True, exist_ok=True)
    text = LIAONING_PROFILE.read_text("utf-8")
    (station.home.profiles_dir / "liaoning.toml").write_text(f'query_url = "{url}"\n' + text, "utf-8")


def test_no_provincial_url_is_shipped_and_none_is_drawn(issuer: Issuer) -> None:
    from certgen.number import bundled_profiles

    assert all(p.query_url is None for p in bundled_profiles().values())  # no seed states one
    issuer = _national(issuer)
    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record())
    text = _text(issued.path)
    assert "省级" not in text and "流水码" not in text  # no empty label


def test_the_optional_items_follow_the_required_ones_in_the_notices_order(issuer: Issuer, photo_dir: Path) -> None:
    _with_province_url(issuer.station, "http://zscx.ln12333.example/query")
    issuer = _national(issuer)
    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record(photo=photo_dir / "small0.jpg"), print_serial="LN2021-000001")
    text = _text(issued.path)
    order = ["证书查询网址：http://jndj.osta.org.cn", "评价机构查询网址：http://pjjg.osta.org.cn",
             "省级查询网址：http://zscx.ln12333.example/query", "证书印制流水码：LN2021-000001"]  # fmt: skip
    positions = [text.find(item) for item in order]
    assert -1 not in positions and positions == sorted(positions), positions
    rows, problems = measure(issued.path, issuer.template)
    assert problems == [] and [m.item for m in rows if not m.ok] == []
    assert {m.item for m in rows} >= {"省级查询网址字号", "证书印制流水码字号"}


def test_a_bad_provincial_url_in_a_profile_is_refused(station: Station) -> None:
    from certgen.number import load_profiles

    _with_province_url(station, "javascript:alert(1)")
    with pytest.raises(ValueError, match="query_url 应为 http:// 或 https:// 开头的网址"):
        load_profiles(station.home.profiles_dir)


def test_the_issue_screen_takes_the_print_serial_and_names_a_used_blank(keyed_station: tuple[Station, object]) -> None:
    from textual.pilot import Pilot
    from textual.widgets import Select

    from kiosk.app import StationApp
    from kiosk.widgets.field import Field
    from tests.test_kiosk import drive, notes, press, settle, text_of

    station, _ = keyed_station
    results: list[str] = []

    async def issue(app: StationApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        screen.query_one("#template", Select).value = "national-2021"
        for id_number in ("11010519491231002X", resident_id(3)):
            for name, value in (
                ("name", "李四"), ("id_number", id_number), ("occupation_code", "6-18-01-01"), ("occupation", "车工"),
                ("issue_date", "2020-11-15"), ("passphrase", PASSPHRASE), ("print_serial", "ln2021-0007"),
            ):  # fmt: skip
                screen.query_one(f"#field-{name}", Field).value = value
            await press(app, pilot, "#check")
            results.append(text_of(app, "#summary"))
            await press(app, pilot, "#sign")
            await settle(app, pilot)
        screen.query_one("#field-print_serial", Field).value = "7"
        await press(app, pilot, "#check")
        results.append(str(screen.query_one("#error-print_serial").render()))

    app = drive(station, "issue", issue)
    assert "印制流水码：LN2021-0007（记入登记库，只印在纸质证书上）" in results[0]
    errors = notes(app, "error")
    assert len(errors) == 1 and "印制流水码 LN2021-0007 已用于证书 Y000021012001203000001" in errors[0]
    assert results[2].startswith("印制流水码「7」无效")
    paper = station.home.output_dir / "single" / "Y000021012001203000001.pdf"
    assert "证书印制流水码：LN2021-0007" in _text(paper)


def test_the_issue_command_names_the_row_and_value_of_a_bad_serial(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    from kiosk.cli import cli

    roster = _roster(tmp_path, ["LN0001", "LN-0001；"])
    pw = tmp_path / "pw"
    pw.write_text(PASSPHRASE)
    home = str(issuer.station.home.root)
    args = ["--home", home, "issue", str(roster), "--passphrase-file", str(pw), "--photos", str(photo_dir)]
    bad = CliRunner().invoke(cli, args)
    assert (
        bad.exit_code == 1
        and "✗ 第3行：印制流水码「LN-0001；」无效" in bad.output
        and "含有不允许的字符：；" in bad.output
    )
    with issuer.station.register() as reg:
        assert reg.counts()["issued"] == 0 and reg.print_serial_owner("LN0001") is None
    roster.write_text(roster.read_text("utf-8").replace("LN-0001；", "LN0002"), "utf-8")
    good = CliRunner().invoke(cli, args)
    assert good.exit_code == 0, good.output
    with issuer.station.register() as reg:
        assert {reg.print_serial_owner(s) is not None for s in ("LN0001", "LN0002")} == {True}


def test_a_reprint_onto_a_new_blank_keeps_the_number_and_qr_and_records_the_serial(
    issuer: Issuer, photo_dir: Path
) -> None:
    from kiosk.cli import cli
    from verify.files import verify_bytes as check

    issuer = _national(issuer)
    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(photo=photo_dir / "small1.jpg"), print_serial="LN0010")
        other = issuer.issue(reg, make_record(id_number=resident_id(4)), print_serial="LN0020")
    number = str(first.record.number)
    pw = issuer.station.home.root / "pw"
    pw.write_text(PASSPHRASE)
    base = ["--home", str(issuer.station.home.root), "reprint", number, "--passphrase-file", str(pw)]
    used = CliRunner().invoke(cli, [*base, "--template", "national-2021", "--print-serial", "LN0020"])
    assert used.exit_code != 0 and f"印制流水码 LN0020 已用于证书 {other.record.number}" in used.output
    wrong = CliRunner().invoke(cli, [*base, "--print-serial", "LN0011"])  # the default template, not the one used
    assert wrong.exit_code != 0 and "请用 --template 指定签发时的模板" in wrong.output
    done = CliRunner().invoke(cli, [*base, "--template", "national-2021", "--print-serial", "LN0011"])
    assert done.exit_code == 0, done.output
    assert "LN0010、LN0011" in done.output
    text = _text(first.path)
    assert "证书印制流水码：LN0011" in text and "LN0010" not in text
    verdict = check(first.path.read_bytes(), first.path.name, issuer.station.trust.load())[0]
    assert (verdict.status, verdict.reasons) == ("valid", ())
    with issuer.station.register() as reg:
        assert reg.print_serials(number) == ["LN0010", "LN0011"]  # the spoiled blank stays used
        assert reg.form_files(number)[0][2] == hashlib.sha256(first.path.read_bytes()).hexdigest()
        assert reg.check() == []
        with pytest.raises(PrintSerialUsed, match=f"LN0010 已用于证书 {number}"):
            issuer.issue(reg, make_record(id_number=resident_id(5)), print_serial="LN0010")


def test_a_revoked_or_unknown_certificate_is_not_reprinted(issuer: Issuer) -> None:
    from certgen.exceptions import RegisterError

    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record(), print_serial="LN0030")
        number = str(issued.record.number)
        reg.revoke("certificate", number, "测试吊销")
        with pytest.raises(RegisterError, match=f"证书 {number} 已吊销（测试吊销），不能重印"):
            issuer.reprint(reg, number, "LN0031")
        with pytest.raises(RegisterError, match="未在本站发证"):
            issuer.reprint(reg, "Y000021012001203999999", "LN0031")
        assert reg.print_serial_owner("LN0031") is None


def test_the_manifest_update_changes_every_entry_of_the_number_and_only_when_needed(tmp_path: Path) -> None:
    from certgen.issuing.reports import update_manifest

    doc = {"batch_id": "b", "institution": "x", "certificates": [
        {"number": "N1", "name": "a", "file": "N1.pdf", "sha256": "old"},
        {"number": "N2", "name": "b", "file": "N2.pdf", "sha256": "two"},
        {"number": "N1", "name": "a", "file": "N1.pdf", "sha256": "old"},
    ], "count": 3, "checkpoint": None}  # fmt: skip
    path = tmp_path / "manifest.json"
    path.write_text(manifest_text(doc), "utf-8")
    assert update_manifest(tmp_path, {"N1": ("new", "LN1")})
    after = json.loads(path.read_text("utf-8"))["certificates"]
    assert [c["sha256"] for c in after] == ["new", "two", "new"] and after[0]["print_serial"] == "LN1"
    written = path.stat().st_mtime_ns, path.stat().st_ino
    assert update_manifest(tmp_path, {"N1": ("new", "LN1")})  # already so: not written again
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == written
    assert not update_manifest(tmp_path, {"N9": ("new", None)})  # not listed
    path.write_bytes(b"\xff not json")
    assert not update_manifest(tmp_path, {"N1": ("new", None)}) and path.read_bytes() == b"\xff not json"
