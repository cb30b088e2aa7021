"""An exception that arrives just as the commit that issues (or records a reprint) returns.

Python runs a signal handler between bytecodes: a SIGTERM (``Interrupted``) or Ctrl-C during
SQLite's COMMIT is raised right after the commit succeeded. The certificate is then issued, and
its files must stay for recovery to publish; deleting them as for a failed issue would leave an
issued number with no PDF anywhere (found by an adversarial review with real SIGTERMs)."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certgen.exceptions import Interrupted
from certgen.issuing.issuer import Issuer
from certgen.station.register import Register
from tests.conftest import FILING, make_record, resident_id
from tests.test_print_serial import _national
from verify.files import verify_bytes


def _then_interrupted(real: Any) -> Any:
    def call(self: Register, *args: Any, **kwargs: Any) -> Any:
        real(self, *args, **kwargs)
        raise Interrupted("收到信号 SIGTERM")  # what the SIGTERM handler raises once COMMIT has returned

    return call


def _issuing_commit_then_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The issuing commit is the transaction :meth:`Register.complete` runs in (a savepoint of the
    :meth:`Register.group` that also allocates the next number): interrupted once that returns."""
    real_group, real_complete = Register.group, Register.complete
    completed: list[bool] = []

    @contextlib.contextmanager
    def group(self: Register) -> Iterator[None]:
        with real_group(self):
            yield
        if completed:
            raise Interrupted("收到信号 SIGTERM")

    def complete(self: Register, *args: Any, **kwargs: Any) -> None:
        real_complete(self, *args, **kwargs)
        completed.append(True)

    monkeypatch.setattr(Register, "group", group)
    monkeypatch.setattr(Register, "complete", complete)


def _the_only_certificate(issuer: Issuer) -> tuple[str, str, str]:
    """``(number, status, output path)`` of the register's one certificate."""
    with sqlite3.connect(issuer.station.home.register_path) as db:
        ((number, status, output),) = db.execute("SELECT number, status, output_path FROM certificates").fetchall()
    return number, status, output


def test_an_interrupt_as_the_issuing_commit_returns_keeps_the_certificate_s_files(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with issuer.station.register() as reg:
        _issuing_commit_then_interrupted(monkeypatch)
        with pytest.raises(Interrupted):
            issuer.issue(reg, make_record())
        monkeypatch.undo()
    number, status, output = _the_only_certificate(issuer)
    assert status == "issued"
    final = Path(output)
    assert any(p.name.startswith(f".{number}.pdf") for p in final.parent.iterdir()), "kept under its temporary name"
    with issuer.station.register() as reg:  # the next run recovers first: the file is published
        issuer.issue(reg, make_record(id_number=resident_id(7)))
        assert reg.check() == []
    verdict = verify_bytes(final.read_bytes(), final.name, issuer.station.trust.load())[0]
    assert verdict.valid, verdict.reasons


def test_an_interrupt_as_the_reprint_commit_returns_keeps_the_new_paper(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = _national(issuer)  # a template that prints the blank's serial: the reprint's bytes differ
    with issuer.station.register() as reg:
        number = str(issuer.issue(reg, make_record(), print_serial="LN0040").record.number)
        monkeypatch.setattr(Register, "record_form", _then_interrupted(Register.record_form))
        with pytest.raises(Interrupted):
            issuer.reprint(reg, number, "LN0041")
        monkeypatch.undo()
    with issuer.station.register() as reg:  # the next run recovers first: the reprinted paper is published
        issuer.issue(reg, make_record(id_number=resident_id(7)), print_serial="LN0042")
        assert reg.print_serials(number) == ["LN0040", "LN0041"]
        ((_, path, sha),) = [f for f in reg.form_files(number) if f[0] == "paper"]
        assert path is not None and hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha, "the new paper"
        assert reg.check() == []


def test_a_commit_left_open_by_a_second_signal_is_rolled_back_and_its_number_voided(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second signal during the rollback leaves the transaction open: this connection would read
    its uncommitted "issued" and keep the files of a number that is pending (void once the
    connection closes) - a PDF that verifies, for a void number."""

    real_group = Register.group
    groups: list[None] = []

    @contextlib.contextmanager
    def left_open(self: Register) -> Iterator[None]:
        groups.append(None)
        if len(groups) == 1:  # the allocation's commit
            with real_group(self):
                yield
            return
        self._db.execute("BEGIN IMMEDIATE")  # the issuing commit: complete() runs as a savepoint in it
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
        raise Interrupted("收到信号 SIGTERM")  # before COMMIT, and a second signal stopped the rollback

    with issuer.station.register() as reg:
        monkeypatch.setattr(Register, "group", left_open)
        with pytest.raises(Interrupted):
            issuer.issue(reg, make_record())
        monkeypatch.undo()
    number, status, output = _the_only_certificate(issuer)
    assert status == "void"
    # its signed form was on disk: the number is revoked, and only the note that says so stays
    assert number in {r.target for r in issuer.station.trust.load().revocations}
    named = [p.name for p in Path(output).parent.iterdir() if number in p.name]
    assert named == [f".{number}.revoked"], "no file of a void number"


def test_recovery_sweeps_a_killed_write_s_leftovers_once_per_folder_and_only_its_own(issuer: Issuer) -> None:
    """A single issue killed inside its form's atomic write: recovery (with no output folder to
    scan) still finds the leftover beside the number's file; one for a number another station's
    register holds (a shared folder) is not its to delete."""
    from certgen.issuing.recovery import recover

    assert issuer.out_dir is not None
    folder = issuer.out_dir / "single"
    with issuer.station.register() as reg:
        number = str(reg.allocate(make_record(), FILING, output_dir=folder).number)
    folder.mkdir(parents=True)
    ours = folder / f"..{number}.pdf.partial.ab12cd_3.tmp"
    theirs = folder / "..Y000021099001203000001.pdf.partial.zz99yy_8.tmp"
    for leftover in (ours, theirs):
        leftover.write_bytes(b"%PDF-1.7 ...")
    with issuer.station.register() as reg:
        done = recover(reg, issuer.station.home.quarantine_dir)
        assert reg.get(number).status == "void"  # type: ignore[union-attr]
    assert ours in done.removed and not ours.exists()
    assert theirs.exists()


def test_recovery_knows_the_name_an_atomic_write_writes_under(tmp_path: Path) -> None:
    """The sweep finds a killed write's file by the name atomic_write really gives it."""
    from certgen.files import atomic_write, written_name

    target = tmp_path / ".Y000021012001203000001.pdf.partial"
    with atomic_write(target) as fh:
        fh.write(b"%PDF-1.7")
        (writing,) = [p for p in tmp_path.iterdir() if p != target]
        assert written_name(writing.name) == target.name
    assert written_name(target.name) is None
