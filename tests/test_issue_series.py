"""Issuing one certificate after another with one register commit each.

The commit that issues a certificate also allocates the next one's number (a savepoint in the same
transaction). What a user relies on stays as it was with two commits: each certificate is issued
and published before the next one's outcome, a refusal of the next one never undoes the one
before, an error stops the series after every certificate before it, and a series stopped halfway
leaves no pending number and no file of a number that is not issued."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from certgen.exceptions import DuplicateResult, RegisterError
from certgen.issuing.issuer import Issued, Issuer, IssueRequest
from certgen.number import check_number
from certgen.station.backup import find_issued_numbers
from certgen.station.register import Register
from tests.conftest import make_record, resident_id
from verify.files import verify_bytes
from verify.reasons import Reason


def _requests(*seeds: int) -> list[IssueRequest]:
    return [IssueRequest(make_record(id_number=resident_id(seed)), batch_id="b1", row_key=str(seed)) for seed in seeds]


def _states(reg: Register) -> dict[str, str]:
    return dict(reg._db.execute("SELECT number, status FROM certificates"))


def _files(issuer: Issuer) -> list[str]:
    assert issuer.out_dir is not None
    return sorted(p.name for p in (issuer.out_dir / "b1").iterdir())


def _valid(issuer: Issuer, path: Path) -> bool:
    return verify_bytes(path.read_bytes(), path.name, issuer.station.trust.load())[0].valid


def test_a_series_commits_once_per_certificate_each_with_the_next_number(issuer: Issuer) -> None:
    with issuer.station.register() as reg:
        statements: list[str] = []
        reg._db.set_trace_callback(statements.append)
        outcomes = list(issuer.issue_series(reg, _requests(1, 2, 3, 4, 5)))
        reg._db.set_trace_callback(None)
        assert all(isinstance(o, Issued) for o in outcomes)
        numbers = [str(o.record.number) for o in outcomes if isinstance(o, Issued)]
        commits, changed = [], []
        for sql in statements:
            if sql.startswith(("UPDATE certificates SET status = 'issued'", "INSERT INTO certificates")):
                changed.append("issue" if sql.startswith("UPDATE") else "allocate")
            elif sql == "COMMIT":
                commits.append(changed)
                changed = []
        # the first number alone, then each certificate issued with the next number allocated, the last alone
        issuing = [c for c in commits if c]
        assert issuing == [["allocate"]] + [["issue", "allocate"]] * 4 + [["issue"]]
        assert set(_states(reg).values()) == {"issued"} and reg.check() == []
    assert _files(issuer) == [f"{n}.pdf" for n in sorted(numbers)]
    assert all(_valid(issuer, o.path) for o in outcomes if isinstance(o, Issued))


def test_a_refused_next_number_leaves_the_certificate_before_it_issued(issuer: Issuer) -> None:
    # the third row is the first row's result again (issued meanwhile): its allocation is refused
    # inside the commit that issues the second, which still commits; the series goes on after it
    requests = _requests(1, 2, 1, 3)
    with issuer.station.register() as reg:
        outcomes = list(issuer.issue_series(reg, requests))
        first, second, again, fourth = outcomes
        assert isinstance(first, Issued) and isinstance(second, Issued) and isinstance(fourth, Issued)
        assert isinstance(again, DuplicateResult) and again.existing == str(first.record.number)
        assert _states(reg) == {str(o.record.number): "issued" for o in (first, second, fourth)}
        assert reg.check() == [], "the refused allocation's audit entries are undone with it"
    assert all(_valid(issuer, o.path) for o in (first, second, fourth))


def test_an_error_in_the_next_request_comes_after_the_certificate_before_it(issuer: Issuer) -> None:
    wrong = IssueRequest(make_record(id_number=resident_id(2), number="Y001121011001203000001"), batch_id="b1")
    with issuer.station.register() as reg:
        series = issuer.issue_series(reg, [*_requests(1), wrong, *_requests(3)])
        first = next(series)
        assert isinstance(first, Issued) and _valid(issuer, first.path)
        with pytest.raises(RegisterError, match="前13位不是本机构备案号"):
            next(series)
        assert _states(reg) == {str(first.record.number): "issued"}, "nothing after the error"
    assert _files(issuer) == [first.path.name]


def test_a_series_stopped_halfway_voids_the_number_allocated_with_the_last_commit(issuer: Issuer) -> None:
    with issuer.station.register() as reg:
        series = issuer.issue_series(reg, _requests(1, 2, 3))
        first = next(series)
        assert isinstance(first, Issued)
        series.close()  # the caller stops (an error of its own, Ctrl-C): the second number has no file yet
        states = _states(reg)
        assert states.pop(str(first.record.number)) == "issued"
        assert list(states.values()) == ["void"]
        assert reg.check() == []
    assert _files(issuer) == [first.path.name]


def test_a_series_stopped_with_a_certificate_written_voids_it_and_removes_its_file(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C while the next request is checked: the certificate before it is written, not issued
    real = Issuer._ready
    calls: list[None] = []
    copies: list[bytes] = []

    def ready(self: Issuer, reg: Register, request: IssueRequest):  # type: ignore[no-untyped-def]
        calls.append(None)
        if len(calls) == 2:
            assert self.out_dir is not None
            # what a sync or backup tool may copy while it is on disk: a whole signed certificate
            copies.extend(p.read_bytes() for p in (self.out_dir / "b1").glob(".*.pdf.partial"))
            raise KeyboardInterrupt
        return real(self, reg, request)

    monkeypatch.setattr(Issuer, "_ready", ready)
    with issuer.station.register() as reg:
        with pytest.raises(KeyboardInterrupt):
            list(issuer.issue_series(reg, _requests(1, 2)))
        ((number, status),) = _states(reg).items()
        assert status == "void"
        assert [(r.scope, r.target) for r in reg.revocations()] == [("certificate", number)]
        assert reg.check() == []
    # the signed file is gone; a note that its number is revoked stays, for a restore to find
    assert _files(issuer) == [f".{number}.revoked"]
    assert issuer.stop_notes() and number in issuer.stop_notes()[0]
    # the copy names a void number: revoked (in the trust store every verifier gets), not valid
    (copy,) = copies
    trust = issuer.station.trust.load()
    assert [(r.scope, r.target) for r in trust.revocations] == [("certificate", number)]
    (result,) = verify_bytes(copy, "copy.pdf", trust)
    assert result.reasons == (Reason.REVOKED,), result.reasons


def _ctrl_c_at_fsync(monkeypatch: pytest.MonkeyPatch, copies: list[bytes], second_at: str | None = None) -> None:
    """Ctrl-C as the form's write fsyncs (the whole signed file is on disk, and a sync or backup tool
    copies it meanwhile), and with ``second_at`` a second Ctrl-C (an operator pressing it twice) as
    the clean-up's next fsync of a file so named returns: the trust-behind marker's write inside
    ``revoking`` or the note's (helper-31: when the form's atomic write deleted its file on the
    first, nothing on disk was left to tell the next recovery)."""
    real_fsync = os.fsync
    fired: list[str] = []

    def fsync(fd: int) -> None:
        real_fsync(fd)
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return
        if not fired and name.endswith(".pdf.partial"):
            copies.append(Path(name).read_bytes())
            fired.append("form")
            raise KeyboardInterrupt
        if len(fired) == 1 and second_at is not None and second_at in name:
            fired.append("second")
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_void_numbers_revocation_hits_the_genuine_certificate_that_reuses_it_after_a_restore(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs' procedure when the home's disk is lost: restore the last backup, settle the counters from
    the output folder (tests/test_backup.py::test_lose_the_home_restore_an_older_backup_and_never_reuse_a_number).
    A number Ctrl-C'd after its write is now revoked, its file deleted: nothing in the output folder
    names it, the counter is not moved past it, and the number is allocated again to someone else.
    Verifiers that imported a bundle with the revocation (they merge revocations) reject the new,
    genuine certificate as REVOKED. (Before the change a void number was harmless to reallocate.)"""
    import shutil

    from certgen.station import Station
    from certgen.station.backup import create_backup, restore_backup, settle_numbers
    from certgen.station.home import StationHome
    from tests.conftest import PASSPHRASE

    station = issuer.station
    with station.register() as reg:
        list(issuer.issue_series(reg, _requests(1)))
    create_backup(station.home, tmp_path / "older.zip", PASSPHRASE)

    real_ready = Issuer._ready
    calls: list[None] = []

    def ready(self: Issuer, reg: Register, request: IssueRequest):  # type: ignore[no-untyped-def]
        calls.append(None)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the operator stops the run with the certificate written
        return real_ready(self, reg, request)

    monkeypatch.setattr(Issuer, "_ready", ready)
    with station.register() as reg:
        with pytest.raises(KeyboardInterrupt):
            list(issuer.issue_series(reg, _requests(2, 3)))
        monkeypatch.undo()
        voided = [n for n, s in _states(reg).items() if s == "void"]
    (void,) = voided
    verifiers_bundle = station.trust.load()  # exported (trust export) and imported by other verifiers
    assert void in {r.target for r in verifiers_bundle.revocations}

    shutil.rmtree(station.home.root)  # the disk is lost; the PDFs were written elsewhere (tmp/out)
    restore_backup(tmp_path / "older.zip", StationHome(station.home.root, "restore"))
    restored = Station(station.home)
    again = Issuer(restored, PASSPHRASE, out_dir=issuer.out_dir)
    with restored.register() as reg:
        assert issuer.out_dir is not None
        settle_numbers(reg, [issuer.out_dir], settle=True)
        new = again.issue(reg, make_record(id_number=resident_id(7)))
    (result,) = verify_bytes(new.path.read_bytes(), new.path.name, verifiers_bundle)
    assert result.valid, f"genuine certificate {new.record.number} (the void {void} again): {result.reasons}"


@pytest.mark.parametrize("second_at", [None, "trust-behind", ".revoked"], ids=["once", "twice-marker", "twice-note"])
def test_ctrl_c_as_a_form_is_written_revokes_its_number_and_leaves_the_note(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch, second_at: str | None
) -> None:
    """Ctrl-C (or SIGTERM) as the form's fsync returns (the slowest step of the write: seconds on a
    USB stick), the whole signed PDF on disk meanwhile: the number is revoked, and a note of it
    stays (helper-30: the form's atomic write deleted it on the error, and nothing revoked it).
    Stopped again inside that (Ctrl-C twice, a SIGKILL, a full disk for the note), the signed file
    is still there, and the next recovery does it: else its copy would verify valid everywhere, or
    the number be given out again after a restore (helper-31)."""
    copies: list[bytes] = []
    _ctrl_c_at_fsync(monkeypatch, copies, second_at)
    with issuer.station.register() as reg:
        with pytest.raises(KeyboardInterrupt):
            list(issuer.issue_series(reg, _requests(1)))
        monkeypatch.undo()
        ((number, status),) = _states(reg).items()
        assert status == "void"
        with issuer.locked(reg):  # the next run's recovery
            pass
    assert issuer.out_dir is not None
    (copy,) = copies
    (result,) = verify_bytes(copy, "copy.pdf", issuer.station.trust.load())
    assert result.reasons == (Reason.REVOKED,), f"copy of void {number}: valid={result.valid} {result.reasons}"
    parsed = check_number(number).parsed()
    found = find_issued_numbers([issuer.out_dir])  # what restore-settle --scan <out> learns
    got = found.get((parsed.filing_number, parsed.year, parsed.level), (0, ""))[0]
    assert got >= parsed.serial, f"no .{number}.revoked note: a restore would allocate {number} again"


def test_stop_notes_are_of_the_last_run_only_also_one_that_never_started(
    issuer: Issuer,
) -> None:
    """The kiosk's batch screen keeps one Issuer across runs and shows stop_notes() under any error:
    a later run that fails before it holds the issuing lock (IssueBusy) says nothing of the earlier
    run's revoked numbers (helper-31)."""
    real = Issuer._ready
    calls: list[None] = []

    def ready(self: Issuer, reg: Register, request: IssueRequest):  # type: ignore[no-untyped-def]
        calls.append(None)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, reg, request)

    with issuer.station.register() as reg:
        Issuer._ready = ready  # type: ignore[method-assign]
        try:
            with pytest.raises(KeyboardInterrupt):
                list(issuer.issue_series(reg, _requests(1, 2)))
        finally:
            Issuer._ready = real  # type: ignore[method-assign]
        assert issuer.stop_notes()  # run 1: right
        import threading

        from certgen.exceptions import IssueBusy
        from certgen.station.issuelock import issuing_lock

        held, done = threading.Event(), threading.Event()

        def another_run() -> None:  # e.g. the kiosk's single-issue screen, or a CLI run
            with issuing_lock(issuer.station.home.issue_lock_path):
                held.set()
                done.wait(30)

        thread = threading.Thread(target=another_run)
        thread.start()
        held.wait(30)
        try:
            with pytest.raises(IssueBusy):  # run 2 cannot start: another run issues
                list(issuer.issue_series(reg, _requests(3)))
        finally:
            done.set()
            thread.join()
    assert issuer.stop_notes() == [], f"run 2 revoked nothing, yet: {issuer.stop_notes()}"


def test_a_backup_is_refused_while_another_run_issues(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup taken in the middle of a run (``certkiosk backup`` in another terminal, the automatic
    one after a revocation) would hold the run's number in flight: restored after a lost home, its
    recovery would void that number and revoke the certificate issued under it after the copy, a
    genuine one (helper-32). So a backup waits for no run: it is refused while one issues."""
    import threading

    from certgen.exceptions import BackupError
    from certgen.station.backup import create_backup
    from tests.conftest import PASSPHRASE

    real_ready = Issuer._ready
    calls: list[None] = []
    refused: list[BaseException] = []

    def backup_elsewhere() -> None:  # another thread of this process is refused as another process is
        try:
            create_backup(issuer.station.home, tmp_path / "during.zip", PASSPHRASE)
        except BackupError as exc:
            refused.append(exc)

    def ready(self: Issuer, reg: Register, request: IssueRequest):  # type: ignore[no-untyped-def]
        calls.append(None)
        if len(calls) == 2:  # the first certificate written, its number not yet issued
            thread = threading.Thread(target=backup_elsewhere)
            thread.start()
            thread.join()
        return real_ready(self, reg, request)

    monkeypatch.setattr(Issuer, "_ready", ready)
    with issuer.station.register() as reg:
        assert all(isinstance(o, Issued) for o in issuer.issue_series(reg, _requests(1, 2)))
    monkeypatch.undo()
    assert len(refused) == 1 and "发证进行中" in str(refused[0]) and not (tmp_path / "during.zip").exists()
    create_backup(issuer.station.home, tmp_path / "after.zip", PASSPHRASE)  # once the run is over
    assert (tmp_path / "after.zip").is_file()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_cancelled_from_its_progress_leaves_no_number_pending(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, workers: int
) -> None:
    # the UI's Cancel raises from the progress callback while the series holds the next number
    from certgen.exceptions import BatchCancelled
    from certgen.issuing.batch import run_batch
    from tests.test_batch_workers import _plan

    plan = _plan(issuer, tmp_path, photo_dir)

    def progress(done: int, total: int, number: str) -> None:
        if done == 3:
            raise BatchCancelled("已取消")

    with pytest.raises(BatchCancelled):
        run_batch(issuer, plan, workers=workers, progress=progress)
    with issuer.station.register() as reg:
        states = _states(reg)
        # this process's series voids what it holds; a worker process stopped mid-row: its row is
        # recovered at once
        assert "pending" not in states.values(), states
        assert list(states.values()).count("issued") >= 3 and reg.check() == []
        issued = {n for n, s in states.items() if s == "issued"}
        kept = issued | {n for n, s in states.items() if s == "pending"}  # a stopped worker's, for recovery
        # a number whose signed form was on disk when the run stopped is revoked, never one issued
        revoked = {r.target for r in reg.revocations()}
        assert {states[n] for n in revoked} <= {"void"}
    assert issuer.out_dir is not None
    published = {p.name.removesuffix(".pdf") for p in (issuer.out_dir / plan.batch_id).glob("*.pdf")}
    notes = {f".{n}.revoked" for n in revoked}
    temporary = [p.name for p in (issuer.out_dir / plan.batch_id).glob(".*") if p.name not in notes]
    assert published <= issued and not [t for t in temporary if not any(n in t for n in kept)]


def test_an_interrupt_as_an_issuing_commit_returns_voids_the_number_allocated_with_it(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from certgen.exceptions import Interrupted
    from tests.test_interrupted_commit import _issuing_commit_then_interrupted

    with issuer.station.register() as reg:
        _issuing_commit_then_interrupted(monkeypatch)
        with pytest.raises(Interrupted):
            list(issuer.issue_series(reg, _requests(1, 2, 3)))
        monkeypatch.undo()
        first, second = sorted(_states(reg).items())
        assert first[1] == "issued", "committed before the interrupt: recovery publishes its file"
        assert second[1] == "void", "allocated in that commit, and never written"
        assert reg.check() == []


def test_a_full_disk_that_undoes_the_whole_transaction_inside_an_allocation_signs_nothing(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLITE_FULL in a savepoint can make SQLite roll back the whole transaction: the certificate
    # being issued with it is not issued, and no checkpoint is signed over entries that were undone
    from certgen.exceptions import CertkioskError
    from certgen.station.register import Register

    real = Register._insert
    calls: list[None] = []

    def insert(self: Register, db: sqlite3.Connection, *args: object, **kwargs: object) -> None:
        calls.append(None)
        if len(calls) == 2:  # the second allocation: inside the commit that issues the first certificate
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages}")
            try:  # a row that needs pages more: SQLITE_FULL, and SQLite rolls back the whole transaction
                db.execute("INSERT INTO meta (key, value) VALUES ('filler', zeroblob(100000))")
            finally:
                assert not db.in_transaction, "the case under test: the whole transaction undone"
        real(self, db, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Register, "_insert", insert)
    with issuer.station.register() as reg:
        with pytest.raises(CertkioskError):
            list(issuer.issue_series(reg, _requests(1, 2)))
        monkeypatch.undo()
        reg._db.execute("PRAGMA max_page_count = 1073741823")
        assert "issued" not in _states(reg).values()
        assert reg.check() == []
        issuer.issue(reg, make_record(id_number=resident_id(9)))
        assert reg.check() == []
        # the first certificate was written: its void number is revoked, and a note of it stays
        revoked = sorted(r.target for r in reg.revocations())
        assert {_states(reg)[n] for n in revoked} == {"void"}
    assert issuer.out_dir is not None
    assert [p.name for p in (issuer.out_dir / "b1").iterdir()] == [f".{n}.revoked" for n in revoked]


def test_a_rolled_back_allocation_is_not_voided_under_another_process(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C while the group that issues #1 and allocates #2 is still open (the checkpoint being
    # signed): SQLite rolls it back, so #2's serial is free again, and a batch worker (which ignores
    # SIGINT) waiting for the write lock allocates that same number next: it is not this series' to void
    # (found by a second review, helper-27)
    from certgen.station.register import Register

    real_group, real_abandon = Register.group, Issuer._abandon
    groups: list[None] = []
    other: list[str] = []

    @contextlib.contextmanager
    def group(self: Register) -> Iterator[None]:
        groups.append(None)
        with real_group(self):
            yield
            if len(groups) == 2:  # the group that issues #1 and allocates #2, before its COMMIT
                raise KeyboardInterrupt

    def abandon(self: Issuer, reg: Register, folder: Path, number: str, why: BaseException | str) -> None:
        if not other:  # the worker takes the write lock as this transaction rolls back
            with Register(reg.path) as worker_reg:
                ready = self._ready(worker_reg, _requests(7)[0])
                other.append(str(self._allocate(worker_reg, ready).number))
        real_abandon(self, reg, folder, number, why)

    monkeypatch.setattr(Register, "group", group)
    monkeypatch.setattr(Issuer, "_abandon", abandon)
    with issuer.station.register() as reg:
        with pytest.raises(KeyboardInterrupt):
            list(issuer.issue_series(reg, _requests(1, 2)))
        monkeypatch.undo()
        states = _states(reg)
        assert states[other[0]] == "pending", "the other process's number, voided by this one"
        assert list(states.values()).count("void") == 1, "#1, written and never issued"
