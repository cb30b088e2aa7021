"""Issuing never makes a certificate it should not (issue 12): one per person and result, no live
PDF for a void number, revoked batches closed, register rows read as written.

The attacks are performed for real: two `python -m kiosk issue` processes at once, processes
SIGKILLed or SIGSTOPped at each step of issuing (through certgen.faults' test-only points), a
BOM'd / GB18030 / English-header copy of a roster, a batch revoked while a run is in flight.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from certgen.exceptions import BatchClosed, DuplicateResult, NameMismatch, RecordError, RegisterError
from certgen.issuing.recovery import recover
from certgen.record import TEXT_LIMITS, TextLimit, result_key
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.station.register import Register
from certgen.trust import PublicKeyInfo
from tests.conftest import FILING, INSTITUTION, PASSPHRASE, TEST_SIGNER, TEST_TRUSTED, make_record, resident_id
from tests.test_batch import roster_rows, write_csv
from verify.files import verify_bytes
from verify.reasons import Reason

ROOT = Path(__file__).resolve().parent.parent


# --- helpers ---------------------------------------------------------------------------------------
@pytest.fixture
def site(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path) -> Site:
    station, _ = keyed_station
    return Site(station, tmp_path)


class Site:
    """A keyed station home, a passphrase file, an output folder and a small roster (no photos)."""

    def __init__(self, station: Station, tmp: Path) -> None:
        self.station = station
        self.home: StationHome = station.home
        self.out = tmp / "out"
        self.passfile = tmp / "pass"
        self.passfile.write_text(PASSPHRASE, "utf-8")
        self.rows = roster_rows(4, photo="")
        self.roster = write_csv(tmp / "roster.csv", self.rows, "utf-8")

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "kiosk", "--home", str(self.home.root), *args]

    def issue_args(self, roster: Path | None = None) -> list[str]:
        return self.command(
            "issue", str(roster or self.roster), "--out", str(self.out), "--passphrase-file", str(self.passfile)
        )

    def start(self, args: list[str], **env: str) -> subprocess.Popen[str]:
        full = dict(os.environ, PYTHONPATH=str(ROOT), **env)
        for name in ("CERTKIOSK_TEST_CRASH_AT", "CERTKIOSK_TEST_STOP_AT"):
            if name not in env:
                full.pop(name, None)
        return subprocess.Popen(args, cwd=ROOT, env=full, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, args: list[str], **env: str) -> tuple[int, str, str]:
        child = self.start(args, **env)
        out, err = child.communicate(timeout=300)
        return child.returncode, out, err

    def rows_in_register(self) -> list[tuple[str, str, str]]:
        """(number, status, result key) of every certificate."""
        with Register(self.home.register_path) as reg:
            rows = reg._db.execute("SELECT number FROM certificates ORDER BY number").fetchall()
            certs = [reg.get(n) for (n,) in rows]
        return [(c.number, c.status, result_key(c.record)) for c in certs if c is not None]

    def pdfs(self) -> list[Path]:
        """Every file under the output folder (temporary names included)."""
        return sorted(p for p in self.out.rglob("*") if p.is_file() and (p.suffix == ".pdf" or ".pdf." in p.name))


def stopped(child: subprocess.Popen[str]) -> None:
    """Wait until the child has stopped itself (SIGSTOP at a fault point)."""
    _, status = os.waitpid(child.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), f"the child did not stop (status {status})"


def issued_once_per_result(site: Site, expected: int) -> dict[str, str]:
    """Assert each result has exactly one issued certificate; returns number → result key."""
    rows = site.rows_in_register()
    issued = {n: k for n, s, k in rows if s == "issued"}
    per_result = Counter(issued.values())
    assert len(per_result) == expected and set(per_result.values()) == {1}, per_result
    assert {s for _, s, _ in rows} <= {"issued", "void"}, "nothing left pending"
    return issued


def assert_disk_matches_register(site: Site) -> None:
    """Every PDF on disk has its final name, verifies valid and is issued; no file for a void number."""
    bundle = site.station.trust.load()
    status = {n: s for n, s, _ in site.rows_in_register()}
    for path in site.pdfs():
        assert not path.name.startswith("."), f"temporary file left behind: {path}"
        result = verify_bytes(path.read_bytes(), path.name, bundle)
        assert [r.valid for r in result] == [True], (path, [r.reasons for r in result])
        number = path.stem.removesuffix("-e")  # the electronic form is <number>-e.pdf
        assert status[number] == "issued", f"{path.name} is a PDF for a {status[number]} number"
    with Register(site.home.register_path) as reg:
        assert reg.check() == []
        for number, state in status.items():
            cert = reg.get(number)
            assert cert is not None
            if state == "issued":
                assert cert.output_path is not None and Path(cert.output_path).is_file()


# --- 1. one certificate per person and result --------------------------------------------------
def test_a_copy_of_the_roster_in_any_encoding_or_header_language_issues_nobody_again(site: Site) -> None:
    code, out, err = site.run(site.issue_args())
    assert code == 0, err
    assert "本次发证 4 张" in out
    rows = site.rows
    english = [["name", "id_type", "id_number", "employer", "occupation_code", "occupation", "job_type",
                "level", "number", "issue_date", "photo"], *rows[1:]]  # fmt: skip
    blanks = [rows[0], [""] * len(rows[0]), *rows[1:3], [" "] * len(rows[0]), *rows[3:]]
    copies = {
        "bom.csv": write_csv(site.out.parent / "bom.csv", rows, "utf-8-sig"),
        "gb.csv": write_csv(site.out.parent / "gb.csv", rows, "gb18030"),
        "english.csv": write_csv(site.out.parent / "english.csv", english, "utf-8"),
        "blank.csv": write_csv(site.out.parent / "blank.csv", blanks, "utf-8"),
        "reordered.csv": write_csv(site.out.parent / "reordered.csv", [rows[0], *reversed(rows[1:])], "utf-8"),
    }
    batch = out.split("批次 ")[1].split()[0]
    for name, path in copies.items():
        code, out, err = site.run(site.issue_args(path))
        assert code == 0, (name, err)
        assert "本次发证 0 张，跳过已发 4 张" in out, (name, out)
        assert f"批次 {batch}" in out, f"{name}: the same content is the same batch"
    issued_once_per_result(site, 4)
    assert len(site.pdfs()) == 4


def test_a_result_issued_in_another_batch_is_skipped_with_its_number(site: Site) -> None:
    first = write_csv(site.out.parent / "first.csv", site.rows[:3], "utf-8")  # rows 1-2
    assert site.run(site.issue_args(first))[0] == 0
    existing = {k: n for n, s, k in site.rows_in_register()}
    code, out, err = site.run(site.issue_args())  # all four rows: another batch
    assert code == 0, err
    assert "本次发证 2 张，跳过已发 2 张" in out
    for number in existing.values():
        assert number in out, "the skipped rows are reported with their existing numbers"
    issued_once_per_result(site, 4)


def test_two_real_issue_processes_at_once_issue_each_result_exactly_once(site: Site) -> None:
    site.rows = roster_rows(10, photo="")
    site.roster = write_csv(site.out.parent / "ten.csv", site.rows, "utf-8")
    children = [site.start(site.issue_args()) for _ in range(2)]
    outcomes = [(c.wait(timeout=300), *c.communicate()) for c in children]
    for code, out, err in outcomes:
        # whoever loses the race is refused by the lock, or finds everyone already issued
        assert (code == 0 and "跳过已发" in out) or (code == 2 and "另一个发证进程正在运行（pid" in err), (
            code,
            out,
            err,
        )
    assert sum("本次发证 10 张" in out for _, out, _ in outcomes) == 1
    issued_once_per_result(site, 10)
    assert len(site.pdfs()) == 10


def test_a_second_run_while_the_first_is_mid_certificate_is_refused_and_voids_nothing(site: Site) -> None:
    first = site.start(site.issue_args(), CERTKIOSK_TEST_STOP_AT="after_write:2")
    stopped(first)  # certificate 2 is signed and written under its temporary name, not yet committed
    try:
        in_flight = [n for n, s, _ in site.rows_in_register() if s == "pending"]
        assert len(in_flight) == 1
        code, out, err = site.run(site.issue_args())
        assert code == 2 and f"另一个发证进程正在运行（pid {first.pid}）" in err, (out, err)
        code, out, err = site.run(site.command("register", "recover", "--passphrase-file", str(site.passfile)))
        assert code == 2 and f"另一个发证进程正在运行（pid {first.pid}）" in err
        assert [n for n, s, _ in site.rows_in_register() if s == "pending"] == in_flight, "nothing voided"
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    issued = issued_once_per_result(site, 4)
    assert in_flight[0] in issued
    assert_disk_matches_register(site)


def test_the_register_itself_refuses_a_second_live_certificate_for_a_result(tmp_path: Path) -> None:
    path = tmp_path / "register.sqlite"
    with Register(path) as one, Register(path) as two:  # two connections, as two processes would have
        first = one.allocate(make_record(), FILING, batch_id="A").number
        # another batch, another issue date (another year's serial), the same person and result
        with pytest.raises(DuplicateResult, match=f"已有有效证书 {first}") as caught:
            two.allocate(make_record(issue_date=dt.date(2021, 3, 1)), FILING, batch_id="B")
        assert caught.value.existing == first
        two.allocate(make_record(level=4), FILING, batch_id="B")  # another level is another result
        assert one.void_pending(number=first) == [first]  # a void number frees its result
        again = two.allocate(make_record(), FILING, batch_id="B").number
        assert again is not None
        two.complete(again, payload_sha256="ab" * 32, output_path=None, kid="00" * 8)
        one.revoke("certificate", again, "信息有误")  # so does a revocation
        assert one.allocate(make_record(), FILING).number is not None
        db = sqlite3.connect(path)  # the guard is a unique index, not a check that can be raced
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            db.execute("INSERT INTO live_results VALUES (?, 'x', 'y', 'z')", (result_key(make_record()),))
        db.close()


def test_one_id_number_under_two_names_is_refused_with_both_names(site: Site, photo_dir: Path) -> None:
    rows = [list(r) for r in site.rows]
    rows[3][2] = rows[1][2]  # row 4: row 2's ID number ...
    rows[3][0] = "冒名顶替"  # ... under another name
    roster = write_csv(site.out.parent / "twonames.csv", rows, "utf-8")
    code, _, err = site.run(site.issue_args(roster))
    assert code == 1 and f"第4行：证件号码 {rows[1][2]} 在第2行的姓名为「{rows[1][0]}」，本行为「冒名顶替」" in err
    assert site.rows_in_register() == []
    assert site.run(site.issue_args())[0] == 0
    other = [list(r) for r in site.rows[:2]]
    other[1][0], other[1][7] = "冒名顶替", "5"  # the same ID, another level, another name
    code, _, err = site.run(site.issue_args(write_csv(site.out.parent / "later.csv", other, "utf-8")))
    assert code == 1 and f"在登记库中的姓名为「{site.rows[1][0]}」" in err and "名册中为「冒名顶替」" in err
    with Register(site.home.register_path) as reg, pytest.raises(NameMismatch, match="冒名顶替"):
        reg.allocate(make_record(name="冒名顶替", id_number=resident_id(0), level=1), FILING)


def test_reissue_lost_and_correction_are_explicit_and_linked(site: Site) -> None:
    assert site.run(site.issue_args())[0] == 0
    with Register(site.home.register_path) as reg:
        old = reg.find(site.rows[1][2])[0]
    lost = site.command("reissue", old.number, "--reason", "lost", "--issue-date", "2021-03-01",
                        "--out", str(site.out), "--passphrase-file", str(site.passfile))  # fmt: skip
    code, out, err = site.run(lost)
    assert code == 0, err
    new = out.split("新证书 ")[1].split("（")[0]
    code, out, _ = site.run(site.command("register", "find", old.number))
    assert f"已补发（遗失）：新证书 {new}" in out and "已吊销" not in out
    code, out, _ = site.run(site.command("register", "find", new))
    assert f"补发（遗失）：替代原证书 {old.number}" in out
    # the roster again: the result is live (under the new number), nobody is issued again
    code, out, _ = site.run(site.issue_args())
    assert "本次发证 0 张" in out and new in out
    # a correction of the name revokes the certificate it replaces, in the same transaction
    fix = site.command("reissue", new, "--reason", "correction", "--set", "name=王伟强", "--issue-date",
                       "2021-04-01", "--out", str(site.out), "--passphrase-file", str(site.passfile))  # fmt: skip
    code, out, err = site.run(fix)
    assert code == 0, err
    corrected = out.split("新证书 ")[1].split("（")[0]
    code, out, _ = site.run(site.command("register", "find", "--json", new))
    found = json.loads(out)
    assert found["revoked"] is True and found["reissues"][-1]["number"] == corrected
    bundle = site.station.trust.load()
    pdf = Path(found["output_path"])
    assert verify_bytes(pdf.read_bytes(), pdf.name, bundle)[0].reasons == (Reason.REVOKED,)
    with Register(site.home.register_path) as reg:
        cert = reg.get(corrected)
        assert cert is not None and cert.record.name == "王伟强"
        assert cert.output_path is not None
        assert verify_bytes(Path(cert.output_path).read_bytes(), "c.pdf", bundle)[0].valid
        assert reg.check() == []
    # a lost re-issue cannot change content; a correction must
    code, _, err = site.run(site.command("reissue", corrected, "--reason", "correction",
                                         "--passphrase-file", str(site.passfile)))  # fmt: skip
    assert code == 2 and "需要用 --set" in err


# --- 2. no live PDF for a void number: SIGKILL at every step ----------------------------------------
@pytest.mark.parametrize("point", ["after_allocate", "after_write", "after_commit", "before_rename", "after_rename"])
def test_sigkill_at_each_step_leaves_no_valid_pdf_for_a_number_that_is_not_issued(site: Site, point: str) -> None:
    code, _, _ = site.run(site.issue_args(), CERTKIOSK_TEST_CRASH_AT=f"{point}:2")
    assert code == -signal.SIGKILL
    rows = site.rows_in_register()
    crashed = rows[1][0]  # the second certificate's number
    # the commit that issues a certificate also allocates the next row's number: from there on the
    # third row's number is pending too, with no file, and the next run voids it
    assert len(rows) == (2 if point in ("after_allocate", "after_write") else 3)
    files = {p.name for p in site.pdfs()}
    copy = None
    if point == "after_write":
        assert f".{crashed}.pdf.partial" in files, "written under its temporary name only"
        copy = next(p for p in site.pdfs() if p.name == f".{crashed}.pdf.partial").read_bytes()
        assert verify_bytes(copy, "copy.pdf", site.station.trust.load())[0].valid  # the danger: a signed certificate
    if point in ("after_allocate", "after_write", "after_commit", "before_rename"):
        assert f"{crashed}.pdf" not in files, "nothing is published before the commit and rename"
    code, out, err = site.run(site.issue_args())  # the next run recovers first
    assert code == 0, err
    issued = issued_once_per_result(site, 4)
    status = {n: s for n, s, _ in site.rows_in_register()}
    if point in ("after_allocate", "after_write"):
        assert status[crashed] == "void" and f"作废了上次中断时未完成的编号：{crashed}" in out
    else:  # committed before the kill: issued, and its file published by recovery (or already)
        assert status[crashed] == "issued" and crashed in issued
        following = rows[2][0]
        assert status[following] == "void" and f"作废了上次中断时未完成的编号：{following}" in out
        assert not [p for p in site.pdfs() if following in p.name]
    if point in ("after_commit", "before_rename"):
        assert "补完发布" in out and crashed in out
    revoked = {r.target for r in site.station.trust.load().revocations}
    if copy is not None:  # a copy taken while it was on disk (a sync or backup tool) is revoked, not valid
        assert f"吊销作废编号 {crashed}：" in out and revoked == {crashed}
        assert verify_bytes(copy, "copy.pdf", site.station.trust.load())[0].reasons == (Reason.REVOKED,)
    else:  # no file of a void number was ever on disk: nothing to revoke
        assert "吊销" not in out and revoked == set()
    assert_disk_matches_register(site)
    assert len(site.pdfs()) == 4


@pytest.mark.parametrize("point", ["after_write", "before_rename"])
def test_a_crash_with_both_forms_leaves_both_or_neither(site: Site, point: str) -> None:
    # paper and electronic copies share one number: written under temporary names before the one
    # commit, and recovery publishes (or removes) every form of that number
    from certgen.pdf.fonts import bundled_font
    from certgen.pdf.seal import sample_seal

    seal = site.out.parent / "seal.png"
    seal.write_bytes(sample_seal(INSTITUTION, bundled_font().path).png)
    args = [*site.issue_args(), "--electronic", "--paper", "--seal", str(seal)]
    code, _, _ = site.run(args, CERTKIOSK_TEST_CRASH_AT=f"{point}:2")
    assert code == -signal.SIGKILL
    crashed = site.rows_in_register()[1][0]  # the second certificate's (the third's may be allocated with it)
    names = {p.name for p in site.pdfs()}
    assert {f".{crashed}.pdf.partial", f".{crashed}-e.pdf.partial"} <= names
    code, _, err = site.run(args)
    assert code == 0, err
    names = {p.name for p in site.pdfs()}
    status = {n: s for n, s, _ in site.rows_in_register()}
    if point == "after_write":
        assert status[crashed] == "void" and not {f"{crashed}.pdf", f"{crashed}-e.pdf"} & names
    else:
        assert status[crashed] == "issued" and {f"{crashed}.pdf", f"{crashed}-e.pdf"} <= names
    issued_once_per_result(site, 4)
    assert_disk_matches_register(site)
    assert len(names) == 8


def test_what_a_kill_inside_a_file_write_left_is_removed_by_recovery(site: Site) -> None:
    """Killed inside the atomic write of a form (found by a real SIGKILL of a batch worker): the
    bytes sit under the write's own temporary name, ``..<number>.pdf.partial.<random>.tmp``, a
    whole signed PDF perhaps, for a number the next run voids."""
    code, _, _ = site.run(site.issue_args(), CERTKIOSK_TEST_CRASH_AT="after_write:2")
    assert code == -signal.SIGKILL
    temp = next(p for p in site.pdfs() if p.name.startswith("."))
    leftover = temp.with_name(f".{temp.name}.k3x9q_1a.tmp")
    temp.rename(leftover)  # as if killed before the write's rename
    number = temp.name[1:].split(".pdf")[0]
    copy = leftover.read_bytes()
    report = temp.with_name(".证书数据表.xlsx.fha6uw8y.tmp")  # a report's, killed mid-write: names and IDs
    report.write_bytes(b"PK\x03\x04")
    code, out, err = site.run(site.issue_args())
    assert code == 0, err
    assert not leftover.exists() and not report.exists()
    # the leftover was a signed certificate of a number now void: revoked, so a copy of it is not valid
    assert f"吊销作废编号 {number}：" in out
    assert verify_bytes(copy, "copy.pdf", site.station.trust.load())[0].reasons == (Reason.REVOKED,)
    issued_once_per_result(site, 4)
    assert_disk_matches_register(site)


def test_a_kill_while_recovery_revokes_a_void_numbers_file_loses_no_revocation(site: Site) -> None:
    """Recovery revokes the void number of a signed form it finds under a temporary name before it
    deletes the file; killed after that revocation's commit, before the trust store learns it, the
    next run finishes the job: a copy of the file taken before is revoked for every verifier."""
    code, _, _ = site.run(site.issue_args(), CERTKIOSK_TEST_CRASH_AT="after_write:2")
    assert code == -signal.SIGKILL
    temp = next(p for p in site.pdfs() if p.name.endswith(".partial"))
    number, copy = temp.name[1:].split(".pdf")[0], temp.read_bytes()
    code, _, _ = site.run(site.issue_args(), CERTKIOSK_TEST_CRASH_AT="after_revoke:1")
    assert code == -signal.SIGKILL
    with Register(site.home.register_path) as reg:
        assert number in {r.target for r in reg.revocations()}, "the register's commit came first"
    assert number not in {r.target for r in site.station.trust.load().revocations}, "killed before the trust store"
    code, _, err = site.run(site.issue_args())
    assert code == 0, err
    assert verify_bytes(copy, "copy.pdf", site.station.trust.load())[0].reasons == (Reason.REVOKED,)
    issued_once_per_result(site, 4)
    assert_disk_matches_register(site)


def test_ctrl_c_in_the_issue_command_says_which_numbers_it_revoked(site: Site) -> None:
    """Ctrl-C with a certificate written: its number is revoked at once, and the command says so and
    asks for the trust bundle to be exported again (helper-31: a plain KeyboardInterrupt said only
    已取消。, and the next run's recovery found nothing left to report)."""
    child = site.start(site.issue_args(), CERTKIOSK_TEST_STOP_AT="after_write:2")
    pid = child.pid
    _, st = os.waitpid(pid, os.WUNTRACED)
    assert os.WIFSTOPPED(st)
    os.kill(pid, signal.SIGINT)  # the operator's Ctrl-C, with the second certificate written
    os.kill(pid, signal.SIGCONT)
    _, err = child.communicate(timeout=120)
    with Register(site.home.register_path) as reg:
        revoked = {r.target for r in reg.revocations()}
    assert len(revoked) == 1, (child.returncode, err)  # the written number, revoked as the run stopped
    assert child.returncode == 130 and f"编号 {revoked.pop()} 已作废并吊销" in err and "trust export" in err, err


def leaked_pdf_of_a_void_number(site: Site) -> tuple[str, Path]:
    """A run killed after writing its second PDF, that PDF then published by hand (as the old
    order left it, or a copy put back): its number (void at the next recovery) and its file."""
    code, _, _ = site.run(site.issue_args(), CERTKIOSK_TEST_CRASH_AT="after_write:2")
    assert code == -signal.SIGKILL
    temp = next(p for p in site.pdfs() if p.name.startswith("."))
    number = temp.name[1:].split(".pdf")[0]
    leaked = temp.with_name(f"{number}.pdf")
    temp.rename(leaked)  # as if published before its number was committed (or copied back)
    return number, leaked


def test_a_published_pdf_of_a_void_number_is_quarantined_and_revoked(site: Site) -> None:
    """What the old order left behind (PDF written, then killed before the commit): found and revoked."""
    number, leaked = leaked_pdf_of_a_void_number(site)
    bundle = site.station.trust.load()
    assert verify_bytes(leaked.read_bytes(), leaked.name, bundle)[0].valid  # the danger
    copy = leaked.read_bytes()
    code, out, err = site.run(site.issue_args())
    assert code == 0, err
    assert f"隔离作废编号 {number} 的证书文件并吊销该编号" in out
    assert not leaked.exists()
    quarantined = site.home.root / "quarantine" / f"{number}.pdf"
    assert quarantined.read_bytes() == copy
    result = verify_bytes(copy, "copy.pdf", site.station.trust.load())[0]
    assert result.reasons == (Reason.REVOKED,), "a copy that left the station is revoked, not silently void"
    issued_once_per_result(site, 4)
    assert_disk_matches_register(site)


def test_an_electronic_form_of_a_void_number_is_found_though_no_form_was_recorded(site: Site) -> None:
    """Forms are recorded in the commit that issues: killed before it, recovery still finds every
    form's file of the number by its name (the temporary ones deleted, a leaked one quarantined)."""
    from certgen.pdf.fonts import bundled_font
    from certgen.pdf.seal import sample_seal

    seal = site.out.parent / "seal.png"
    seal.write_bytes(sample_seal(INSTITUTION, bundled_font().path).png)
    args = [*site.issue_args(), "--electronic", "--paper", "--seal", str(seal)]
    code, _, _ = site.run(args, CERTKIOSK_TEST_CRASH_AT="after_write:2")
    assert code == -signal.SIGKILL
    number = site.rows_in_register()[-1][0]
    with Register(site.home.register_path) as reg:
        assert reg.form_files(number) == [], "nothing recorded before the commit"
    temp = next(p for p in site.pdfs() if p.name == f".{number}-e.pdf.partial")
    leaked = temp.with_name(f"{number}-e.pdf")
    temp.rename(leaked)  # the electronic form published (or copied back) without its number issued
    with Register(site.home.register_path) as reg:  # from the register alone: no folder scanned
        done = recover(reg, site.home.quarantine_dir)
    assert done.voided == (number,) and [n for n, _ in done.quarantined] == [number]
    assert [p.name for p in done.removed if not p.name.endswith(".tmp")] == [f".{number}.pdf.partial"]
    assert not leaked.exists()
    # the batch's streamed reports were open when it was killed: their atomic writes' temporary
    # files (names and ID numbers) go too
    assert [p for p in done.removed if p.name.endswith(".tmp")] and not list(temp.parent.glob(".*.tmp"))
    assert (site.home.quarantine_dir / f"{number}-e.pdf").is_file()
    assert {n: s for n, s, _ in site.rows_in_register()}[number] == "void"
    assert not [p for p in site.pdfs() if number in p.name]
    code, _, err = site.run(args)
    assert code == 0, err
    issued_once_per_result(site, 4)
    assert_disk_matches_register(site)


# --- 3. a revoked batch is closed ---------------------------------------------------------------
def test_a_batch_revoked_mid_run_is_closed(site: Site) -> None:
    run = site.start(site.issue_args(), CERTKIOSK_TEST_STOP_AT="after_write:3")
    stopped(run)  # two certificates issued, the third written under its temporary name
    try:
        with Register(site.home.register_path) as reg:
            (batch,) = {c.batch_id for c in reg.find(FILING)}
        assert batch is not None
        code, _, err = site.run(site.command("register", "revoke", "--batch", batch, "--reason", "考场违纪",
                                             "--passphrase-file", str(site.passfile)))  # fmt: skip
        assert code == 0, err
    finally:
        os.kill(run.pid, signal.SIGCONT)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 2 and f"批次 {batch} 已于" in err and "已关闭" in err
    # re-running the roster (the documented way to finish a batch) is refused
    code, _, err = site.run(site.issue_args())
    assert code == 2 and "已关闭" in err and batch in err
    bundle = site.station.trust.load()
    pdfs = site.pdfs()
    assert len(pdfs) == 2 and not any(p.name.startswith(".") for p in pdfs)
    for pdf in pdfs:
        assert verify_bytes(pdf.read_bytes(), pdf.name, bundle)[0].reasons == (Reason.REVOKED,)
    status = Counter(s for _, s, _ in site.rows_in_register())
    assert status == {"issued": 2, "void": 1}
    with Register(site.home.register_path) as reg:
        with pytest.raises(BatchClosed, match="已关闭"):
            reg.allocate(make_record(id_number=resident_id(99)), FILING, batch_id=batch)
        assert reg.check() == []


# --- 5. register rows are read as written ---------------------------------------------------------
def test_a_row_written_under_an_older_rule_is_still_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "register.sqlite"
    with Register(path) as reg:
        reg.signer = TEST_SIGNER  # type: ignore[assignment]  # issuing commits sign a checkpoint
        number = reg.allocate(make_record(name="欧阳娜娜"), FILING, batch_id="B1").number
        assert number is not None
        reg.complete(number, payload_sha256="ab" * 32, output_path=None, kid="00" * 8)
    # today's rule is stricter than the one the row was written under: names of at most 3 characters
    monkeypatch.setitem(TEXT_LIMITS, "name", TextLimit(3, 9))
    with pytest.raises(RecordError):
        make_record(name="欧阳娜娜")  # new records follow today's rule ...
    with Register(path) as reg:  # ... stored ones are read as they were written
        cert = reg.get(number)
        assert cert is not None and cert.record.name == "欧阳娜娜"
        assert [c.number for c in reg.find("欧阳")] == [number] and len(reg.batch("B1")) == 1
        assert reg.check(TEST_TRUSTED) == []
        assert reg._db.execute("SELECT record_format FROM certificates").fetchone() == (1,)
    db = sqlite3.connect(path)
    db.execute("UPDATE certificates SET record_format = 99")
    db.commit()
    db.close()
    with Register(path) as reg, pytest.raises(RegisterError, match="记录格式 99"):
        reg.get(number)


def test_register_recover_finds_a_file_an_older_version_left_for_a_void_number(site: Site) -> None:
    """Older versions wrote the PDF before committing and kept no publishing entry: the folder scan finds it."""
    code, _, _ = site.run(site.issue_args(), CERTKIOSK_TEST_CRASH_AT="after_write:2")
    assert code == -signal.SIGKILL
    temp = next(p for p in site.pdfs() if p.name.startswith("."))
    number = temp.name[1:].split(".pdf")[0]
    leaked = temp.with_name(f"{number}.pdf")
    temp.rename(leaked)
    db = sqlite3.connect(site.home.register_path)
    db.execute("DELETE FROM unpublished")  # what an older register holds: no publishing entries
    db.execute("UPDATE certificates SET status = 'void', void_reason = '进程中断' WHERE status = 'pending'")
    db.commit()
    db.close()
    code, out, err = site.run(site.command("register", "recover", "--passphrase-file", str(site.passfile)))
    assert code == 0, err
    assert f"隔离作废编号 {number} 的证书文件并吊销该编号" in out and not leaked.exists()
    bundle = site.station.trust.load()
    moved = site.home.root / "quarantine" / f"{number}.pdf"
    assert verify_bytes(moved.read_bytes(), moved.name, bundle)[0].reasons == (Reason.REVOKED,)
    code, out, _ = site.run(site.command("register", "recover", "--passphrase-file", str(site.passfile)))
    assert code == 0 and "没有需要恢复的内容" in out
