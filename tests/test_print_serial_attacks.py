"""Attacks on the print serial (印制流水码) and ``certkiosk reprint``, made for real: a reprint
process SIGKILLed at each step, a second process with the same blank, a clumsy operator's retyped
serial, hostile roster cells, an old register, a backup round trip.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pdfplumber
import pytest

from certgen.exceptions import PrintSerialUsed
from certgen.issuing.batch import plan_batch, run_batch
from certgen.issuing.issuer import Issuer
from certgen.issuing.roster import read_roster
from certgen.printserial import normal_print_serial
from certgen.station.register import Register
from tests.conftest import PASSPHRASE, make_record
from tests.test_full_disk import small_fs  # noqa: F401  (the fixture)
from tests.test_print_serial import _roster
from verify.files import verify_bytes

ROOT = Path(__file__).resolve().parent.parent


def _text(path: Path) -> str:
    with pdfplumber.open(path) as pdf:
        return "".join(pdf.pages[0].extract_text().split())


def _national(issuer: Issuer) -> Issuer:
    return Issuer(issuer.station, PASSPHRASE, template_name="national-2021", out_dir=issuer.out_dir)


def _run(issuer: Issuer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m kiosk --home HOME ARGS`` as a real process (fault points from ``env`` only)."""
    pw = issuer.station.home.root / "pw"
    pw.write_text(PASSPHRASE, "utf-8")
    full = {k: v for k, v in os.environ.items() if not k.startswith("CERTKIOSK_TEST_")}
    full |= {"PYTHONPATH": str(ROOT), **env}
    command = [sys.executable, "-m", "kiosk", "--home", str(issuer.station.home.root), *args]
    if args[0] == "reprint":
        command += ["--template", "national-2021"]
    command += ["--passphrase-file", str(pw)]
    return subprocess.run(command, cwd=ROOT, env=full, text=True, capture_output=True, timeout=300, check=False)


def _disk_agrees_with_register(issuer: Issuer, number: str, path: Path) -> None:
    """No temporary file left; the paper PDF is the one the register records; it verifies."""
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
    with Register(issuer.station.home.register_path) as reg:
        assert reg.check() == []
        ((form, where, sha),) = reg.form_files(number)
        assert (form, where) == ("paper", str(path))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, (
            "the register names another file than the one on disk"
        )
    verdict = verify_bytes(path.read_bytes(), path.name, issuer.station.trust.load())[0]
    assert (verdict.status, verdict.reasons) == ("valid", ())


@pytest.mark.parametrize("point", ["after_write", "after_commit", "before_rename"])
def test_a_reprint_killed_at_each_step_leaves_the_register_and_the_disk_agreeing(issuer: Issuer, point: str) -> None:
    issuer = _national(issuer)
    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(photo=None), print_serial="LN0010")
    number = str(first.record.number)
    killed = _run(issuer, "reprint", number, "--print-serial", "LN0011", CERTKIOSK_TEST_CRASH_AT=point)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stdout, killed.stderr)
    recovered = _run(issuer, "register", "recover")
    assert recovered.returncode == 0, recovered.stderr
    _disk_agrees_with_register(issuer, number, first.path)
    with Register(issuer.station.home.register_path) as reg:
        committed = reg.print_serials(number) == ["LN0010", "LN0011"]
    assert ("LN0011" in _text(first.path)) == committed  # the file on disk is the one the register holds
    assert committed == (point != "after_write")


def test_a_reprint_onto_a_blank_already_recorded_for_the_same_certificate_is_refused(issuer: Issuer) -> None:
    """The spoiled blank (or the one just printed) is used: printing its serial again on a new blank
    would leave the new blank unrecorded and two papers carrying one serial."""
    issuer = _national(issuer)
    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(photo=None), print_serial="LN0010")
        number = str(first.record.number)
        before = first.path.read_bytes()
        with pytest.raises(PrintSerialUsed, match=f"印制流水码 LN0010 已用于证书 {number}"):
            issuer.reprint(reg, number, "ln0010")
        assert first.path.read_bytes() == before
        issuer.reprint(reg, number, "LN0011")
        with pytest.raises(PrintSerialUsed, match=f"印制流水码 LN0011 已用于证书 {number}"):
            issuer.reprint(reg, number, "LN0011")
        assert reg.print_serials(number) == ["LN0010", "LN0011"]


def _jpegs(pdf: bytes) -> list[bytes]:
    """The raw bytes of every JPEG image in the PDF (the holder's photo is embedded as JPEG)."""
    import io

    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return [
            obj.read_raw_bytes()
            for obj in doc.objects
            if isinstance(obj, pikepdf.Stream)
            and obj.get("/Subtype") == "/Image"
            and "DCTDecode" in repr(obj.get("/Filter"))
        ]


def test_a_reprint_keeps_the_registered_photo_even_if_the_photo_file_was_swapped(
    issuer: Issuer, photo_dir: Path, tmp_path: Path
) -> None:
    """The photo is not in the signed QR: a reprint that read the photo file again would print
    another face under the same signed code. It takes the photo from the registered paper PDF."""
    import shutil

    issuer = _national(issuer)
    photo = tmp_path / "holder.jpg"
    shutil.copy(photo_dir / "small1.jpg", photo)
    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(photo=photo), print_serial="LN0010")
        number = str(first.record.number)
        original = _jpegs(first.path.read_bytes())
        assert len(original) == 1
        shutil.copy(photo_dir / "small3.jpg", photo)  # someone else's face under the holder's file name
        issuer.reprint(reg, number, "LN0011")
        assert _jpegs(first.path.read_bytes()) == original
        photo.unlink()  # the photo folder is gone: the registered paper still has it
        issuer.reprint(reg, number, "LN0012")
        assert _jpegs(first.path.read_bytes()) == original
        assert reg.check() == []


def test_a_reprint_refuses_when_the_registered_paper_pdf_was_altered(issuer: Issuer) -> None:
    """The reprint's content comes from the registered paper PDF: one that is not the file the
    register recorded is not trusted to make a new certificate from."""
    from certgen.exceptions import CertkioskError

    issuer = _national(issuer)
    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(photo=None), print_serial="LN0010")
        number = str(first.record.number)
        first.path.write_bytes(first.path.read_bytes() + b"\n% edited\n")
        with pytest.raises(CertkioskError, match=f"证书 {number} 的纸质PDF .* 与登记库记录的不符"):
            issuer.reprint(reg, number, "LN0011")
        assert reg.print_serial_owner("LN0011") is None


@pytest.mark.parametrize("retyped", ["ln2021000101", "ＬＮ２０２１－０００１０１", "LN-2021-000101", "LN2021000101-"])
def test_a_blank_retyped_with_other_case_width_or_hyphens_is_the_same_blank(issuer: Issuer, retyped: str) -> None:
    """Hyphens are how a person groups the digits, not part of which blank it is."""
    from tests.conftest import resident_id

    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(photo=None), print_serial="LN2021-000101")
        with pytest.raises(PrintSerialUsed, match=f"已用于证书 {first.record.number}"):
            issuer.issue(reg, make_record(id_number=resident_id(3), photo=None), print_serial=retyped)
        assert reg.counts()["issued"] == 1
        other = issuer.issue(reg, make_record(id_number=resident_id(4), photo=None))
        with pytest.raises(PrintSerialUsed, match=f"已用于证书 {first.record.number}"):  # the register's own guard
            reg.record_form(
                str(other.record.number), "paper", output_path=None, pdf_sha256=None,
                print_serial=normal_print_serial(retyped),
            )  # fmt: skip


def test_one_blank_on_two_roster_rows_typed_differently_is_a_row_problem(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    from certgen.issuing.batch import plan_batch
    from certgen.issuing.roster import read_roster
    from tests.test_print_serial import _roster

    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, read_roster(_roster(tmp_path, ["LN-0600", "ln0600"])), photo_dir)
    assert [str(p) for p in plan.problems] == ["第3行：印制流水码 LN0600 与第2行重复：一张证书用纸只能使用一次"]


HOSTILE = {
    "formula": "=cmd|' /C calc'!A0",
    "escape": "LN\x1b[2J\x1b[31m0001",
    "long": "7" * 10_000,
    "rtl": "LN\u202e1000",
    "zero-width": "LN0001\u200b",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_serial_cell_is_refused_naming_row_and_value_safely(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, name: str
) -> None:
    """Refused with the row and the value, the value shown so that it cannot drive the terminal
    (escapes, bidi overrides, invisible characters written visibly) and cut to a readable length."""
    from click.testing import CliRunner

    from kiosk.cli import cli
    from tests.test_print_serial import _roster

    roster = _roster(tmp_path, ["LN0001", HOSTILE[name]])
    pw = tmp_path / "pw"
    pw.write_text(PASSPHRASE)
    args = ["--home", str(issuer.station.home.root), "issue", str(roster), "--passphrase-file", str(pw)]
    result = CliRunner().invoke(cli, [*args, "--photos", str(photo_dir)])
    assert result.exit_code == 1
    (line,) = [x for x in result.output.splitlines() if "第3行" in x]
    assert "印制流水码「" in line and "无效" in line
    assert line.isprintable() and "\u202e" not in line and "\u200b" not in line, repr(line)
    assert len(line) < 200, len(line)
    shown = {"formula": "=cmd|' /C calc'!A0", "escape": "\\x1b[2J", "rtl": "\\u202e", "zero-width": "\\u200b"}
    assert shown.get(name, "7777") in line and ("共10000个字符" in line) == (name == "long")
    with issuer.station.register() as reg:
        assert reg.counts()["issued"] == 0


def test_the_issue_screen_shows_a_serial_with_markup_characters_as_typed(keyed_station: tuple[object, object]) -> None:
    """A bracket typed in the field is text, not Textual markup: ``[/]`` must not crash the screen
    and ``[@click=...]`` must not become a link in the error line."""
    from textual.pilot import Pilot

    from kiosk.app import StationApp
    from kiosk.widgets.field import Field
    from tests.test_kiosk import drive, press

    station, _ = keyed_station
    shown: list[str] = []

    async def type_serial(app: StationApp, pilot: Pilot[None]) -> None:
        for value in ("LN[/]01", "LN[@click=app.quit]1[/]"):
            app.screen.query_one("#field-print_serial", Field).value = value
            await press(app, pilot, "#check")
            await pilot.pause()
            shown.append(str(app.screen.query_one("#error-print_serial").render()))

    drive(station, "issue", type_serial)  # type: ignore[arg-type]
    assert shown[0].startswith("印制流水码「LN[/]01」无效"), shown
    assert shown[1].startswith("印制流水码「LN[@click=app.quit]1[/]」无效"), shown


def test_two_processes_issuing_one_blank_at_once_record_it_once(issuer: Issuer, tmp_path: Path) -> None:
    """Two real ``issue`` processes, started together, each with a roster naming blank LN0900 for a
    different person: one certificate gets the blank; the other run is refused by the issuing lock
    (then, run again, by the blank) or, planning after the first, by the blank naming it."""
    from tests.test_batch import roster_rows, write_csv

    home = str(issuer.station.home.root)
    pw = tmp_path / "pw"
    pw.write_text(PASSPHRASE)
    children = []
    for i in range(2):
        rows = roster_rows(2, photo="")
        rows = [[*rows[0], "印制流水码"], [*rows[1 + i], "LN0900"]]
        roster = write_csv(tmp_path / f"r{i}.csv", rows, "utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERTKIOSK_TEST_")} | {"PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "kiosk", "--home", home, "issue", str(roster), "--passphrase-file", str(pw)]
        command += ["--out", str(tmp_path / "out")]
        children.append(
            subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
    outcomes = [(c.wait(timeout=300), *c.communicate()) for c in children]
    codes = [code for code, _, _ in outcomes]
    assert sorted(codes) in ([0, 1], [0, 2]), outcomes  # 2: refused by the issuing lock while the other ran
    if 2 in codes:
        loser = children[codes.index(2)]
        assert "另一个发证进程正在运行" in outcomes[codes.index(2)][2]
        again = subprocess.run(loser.args, cwd=ROOT, env=env, text=True, capture_output=True, timeout=300, check=False)
        outcomes.append((again.returncode, again.stdout, again.stderr))
    refused = next(err for code, _, err in outcomes if code == 1)
    with issuer.station.register() as reg:
        owner = reg.print_serial_owner("LN0900")
        assert owner is not None and f"印制流水码 LN0900 已用于证书 {owner}" in refused
        assert reg.counts()["issued"] == 1 and reg.check() == []


@pytest.mark.parametrize("edit", ["delete", "insert", "move"])
def test_a_deleted_inserted_or_moved_print_serial_row_is_found_by_register_check(issuer: Issuer, edit: str) -> None:
    import sqlite3

    from tests.conftest import resident_id

    with issuer.station.register() as reg:
        one = issuer.issue(reg, make_record(photo=None), print_serial="LN0003")
        two = issuer.issue(reg, make_record(id_number=resident_id(7), photo=None))
    sql = {
        "delete": ("DELETE FROM print_serials", ()),  # the blank would be free again
        "insert": (
            "INSERT INTO print_serials VALUES ('LN0004', ?, 'paper', '2024-01-01T00:00:00Z')",
            (two.record.number,),
        ),
        "move": ("UPDATE print_serials SET number = ?", (two.record.number,)),
    }[edit]
    with sqlite3.connect(issuer.station.home.register_path) as db:
        db.execute(*sql)
    with issuer.station.register() as reg:
        problems = reg.check()
    assert any("print_serials" in p for p in problems), (one.record.number, problems)


def test_a_backup_round_trip_keeps_the_used_blanks(issuer: Issuer, tmp_path: Path) -> None:
    import shutil

    from certgen.station import Station
    from certgen.station.backup import create_backup, restore_backup

    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(photo=None), print_serial="LN0070")
    create_backup(issuer.station.home, tmp_path / "b.zip", PASSPHRASE)
    shutil.rmtree(issuer.station.home.root)
    restore_backup(tmp_path / "b.zip", issuer.station.home, nothing_later=True)
    with Station(issuer.station.home).register() as reg:
        assert reg.print_serial_owner("ln-0070".upper()) == first.record.number
        assert reg.check() == []


def test_a_register_made_before_print_serials_opens_checks_and_records_them(issuer: Issuer) -> None:
    """The previous version's register had no print_serials table: opening it creates the table,
    its old rows still check, and a reprint of an old certificate records a blank."""
    import sqlite3

    issuer = _national(issuer)
    with issuer.station.register() as reg:
        old = issuer.issue(reg, make_record(photo=None))
    with sqlite3.connect(issuer.station.home.register_path) as db:  # as the previous version left it
        db.execute("DROP TABLE print_serials")
        assert db.execute("SELECT count(*) FROM audit WHERE detail LIKE '%print_serial%'").fetchone() == (0,)
    with issuer.station.register() as reg:
        assert reg.check() == []
        issuer.reprint(reg, str(old.record.number), "LN0080")
        assert reg.print_serials(str(old.record.number)) == ["LN0080"] and reg.check() == []


@pytest.mark.parametrize("what", ["key", "batch", "corrected", "void"])
def test_no_live_paper_is_reprinted_for_a_revoked_key_batch_corrected_or_void_number(issuer: Issuer, what: str) -> None:
    import datetime as dt

    from certgen.exceptions import RegisterError
    from tests.conftest import FILING, resident_id

    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record(photo=None), batch_id="B1", print_serial="LN0040")
        number = str(issued.record.number)
        before = issued.path.read_bytes()
        if what == "key":
            reg.revoke("key", str(reg.get(number).kid), "密钥泄露")  # type: ignore[union-attr]
        elif what == "batch":
            reg.revoke("batch", "B1", "批次作废")
        elif what == "corrected":
            issuer.reissue(reg, number, "correction", changes={"name": "张叁"}, issue_date=dt.date(2024, 5, 20))
        else:
            number = str(reg.allocate(make_record(id_number=resident_id(9)), FILING).number)
            reg.void_pending("测试", number=number)
        with pytest.raises(RegisterError, match=f"证书 {number} "):
            issuer.reprint(reg, number, "LN0041")
        assert reg.print_serial_owner("LN0041") is None
    assert issued.path.read_bytes() == before


def test_a_signer_that_time_stamps_its_own_signature_gets_no_time_stamp_credit() -> None:
    """The verifier lists the signing certificate as a root only so that path building is quiet;
    a signer whose own certificate may time-stamp (EKU timeStamping) must not turn that into a
    "trusted" time-stamp with the time it chose (the report would say 时间戳 for a forged time)."""
    import datetime as dt
    import io

    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore
    from reportlab.pdfgen import canvas

    from tests.test_electronic import time_stamping_identity
    from verify.pdfsig import signature_facts

    der, pkcs8 = time_stamping_identity("self-stamping signer")  # signs the PDF and stamps it
    c, pk = asn1_x509.Certificate.load(der), asn1_keys.PrivateKeyInfo.load(pkcs8)
    page = io.BytesIO()
    drawn = canvas.Canvas(page)
    drawn.drawString(100, 100, "certificate")
    drawn.save()
    forged = dt.datetime(2019, 6, 1, tzinfo=dt.UTC)
    signed = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(page.getvalue())),
        signers.PdfSignatureMetadata(field_name="Sig"),
        signer=signers.SimpleSigner(c, pk, SimpleCertificateStore.from_certs([c])),
        timestamper=DummyTimeStamper(c, pk, fixed_dt=forged),
    ).getvalue()
    facts = signature_facts(signed)
    assert facts["intact"] and not facts["timestamped"], facts
    assert facts["signing_time"] != forged.isoformat()


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "http://" + "a" * 200, "http://查询.example.cn", "http://a b", "data:text/html,x"]
)
def test_a_hostile_provincial_url_in_a_stations_profile_is_refused_by_the_command_clearly(
    issuer: Issuer, url: str
) -> None:
    """A clear message naming the profile file and the value, no traceback, nothing issued."""
    from click.testing import CliRunner

    from kiosk.cli import cli
    from tests.test_print_serial import _with_province_url

    _with_province_url(issuer.station, url.replace('"', ""))
    pw = issuer.station.home.root / "pw"
    pw.write_text(PASSPHRASE)
    roster = issuer.station.home.root / "r.csv"
    from tests.test_batch import roster_rows, write_csv

    write_csv(roster, roster_rows(1, photo=""), "utf-8")
    args = ["--home", str(issuer.station.home.root), "issue", str(roster), "--passphrase-file", str(pw)]
    result = CliRunner().invoke(cli, [*args, "--template", "national-2021"])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "liaoning.toml" in result.output and "query_url" in result.output, result.output
    with issuer.station.register() as reg:
        assert reg.counts()["issued"] == 0


@pytest.mark.parametrize("cell", [12345, 2021000123456789, 1.2345e20])
def test_a_serial_that_excel_stored_as_a_number_is_refused_not_shortened(tmp_path: Path, cell: float) -> None:
    """Excel drops a serial's leading zeros (000012345 -> 12345) and digits past the 15th: the blank
    recorded and printed would not be the one in the printer. Refused like a numeric ID number."""
    from certgen.exceptions import RosterError
    from certgen.issuing.roster import read_roster
    from tests.test_batch import roster_rows, write_xlsx

    rows = roster_rows(2, photo="")
    rows = [[*rows[0], "印制流水码"], [*rows[1], "LN0001"], [*rows[2], cell]]  # type: ignore[list-item]
    with pytest.raises(RosterError, match=r"第3行：印制流水码被存成了数字.*请把该列设为文本"):
        read_roster(write_xlsx(tmp_path / "r.xlsx", rows))


@pytest.mark.parametrize(("point", "kept"), [("after_write", False), ("after_commit", True)])
def test_an_issue_killed_after_recording_its_blank_frees_it_only_if_the_number_is_void(
    issuer: Issuer, tmp_path: Path, point: str, kept: bool
) -> None:
    """The blank's row is written with the paper form in the commit that issues the number: a
    process killed before it leaves a pending number and no blank recorded, and recovery voids the
    number with the blank still free (nothing was printed); killed after the commit, the
    certificate is issued and keeps its blank."""
    from tests.test_batch import roster_rows, write_csv

    rows = roster_rows(1, photo="")
    roster = write_csv(tmp_path / "r.csv", [[*rows[0], "印制流水码"], [*rows[1], "LN0950"]], "utf-8")
    killed = _run(issuer, "issue", str(roster), "--out", str(tmp_path / "out"), CERTKIOSK_TEST_CRASH_AT=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with Register(issuer.station.home.register_path) as reg:
        assert (reg.print_serial_owner("LN0950") is not None) == kept  # recorded by the issuing commit
    recovered = _run(issuer, "register", "recover")
    assert recovered.returncode == 0, recovered.stderr
    with Register(issuer.station.home.register_path) as reg:
        owner = reg.print_serial_owner("LN0950")
        assert (owner is not None) == kept and reg.check() == []
        assert reg.counts()["issued"] == int(kept)


def test_a_reprint_on_a_full_disk_says_so_and_leaves_the_old_paper_and_the_register(
    issuer: Issuer,
    small_fs: Path,  # noqa: F811  (the fixture of tests.test_full_disk)
) -> None:
    """The paper PDFs' folder is a real 4 MiB tmpfs, filled: the reprint names the file, no
    traceback, the old paper stays as registered, the new blank is not recorded, no half-file."""
    from tests.test_full_disk import _fill

    issuer = Issuer(issuer.station, PASSPHRASE, template_name="national-2021", out_dir=small_fs / "out")
    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(photo=None), print_serial="LN0010")
    number, before = str(first.record.number), first.path.read_bytes()
    filler = _fill(small_fs)
    done = _run(issuer, "reprint", number, "--print-serial", "LN0011")
    assert done.returncode == 2 and "磁盘已满" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert first.path.read_bytes() == before
    filler.unlink()
    _disk_agrees_with_register(issuer, number, first.path)
    with Register(issuer.station.home.register_path) as reg:
        assert reg.print_serials(number) == ["LN0010"]


def test_a_paper_form_recorded_without_its_files_hash_is_not_reprinted(issuer: Issuer, photo_dir: Path) -> None:
    """A form row of an older version has no file hash: its PDF cannot be told from one whose photo
    was swapped (the QR code still matches), so it is no source for a new certificate."""
    from certgen.exceptions import CertkioskError

    issuer = _national(issuer)
    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(photo=photo_dir / "small1.jpg"), print_serial="LN0010")
        number = str(first.record.number)
        reg.record_form(number, "paper", output_path=str(first.path), pdf_sha256=None)  # as an older version did
        with pytest.raises(CertkioskError, match=f"证书 {number} 的纸质PDF在登记库中没有文件哈希"):
            issuer.reprint(reg, number, "LN0011")
        assert reg.print_serial_owner("LN0011") is None


@pytest.mark.parametrize("point", ["after_commit", "before_rename", "after_rename"])
def test_a_reprint_killed_after_its_commit_still_updates_the_batch_manifest(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, point: str
) -> None:
    # recovery publishes the new paper (or finds it published) and brings the manifest auditors
    # check the folder against up to date, as the reprint itself would have
    issuer = _national(issuer)
    with issuer.station.register() as reg:
        result = run_batch(
            issuer, plan_batch(issuer, reg, read_roster(_roster(tmp_path, ["LN3001", "LN3002"])), photo_dir)
        )
    manifest = result.folder / "manifest.json"
    number = json.loads(manifest.read_text("utf-8"))["certificates"][0]["number"]
    killed = _run(issuer, "reprint", number, "--print-serial", "LN3009", CERTKIOSK_TEST_CRASH_AT=point)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stdout, killed.stderr)
    assert _run(issuer, "register", "recover").returncode == 0
    listed = json.loads(manifest.read_text("utf-8"))["certificates"]
    for item in listed:
        assert item["sha256"] == hashlib.sha256((result.folder / item["file"]).read_bytes()).hexdigest()
    assert listed[0]["print_serial"] == "LN3009"
