"""A shared output folder and backups against issuing runs (helper-33's review of d6b96d8).

Another user of a shared output folder may plant things at the names a run writes; a backup must
never hold a run's number in flight, must stay checkable whatever a run does meanwhile, and a
revocation's automatic backup that a run made wait is taken as that run ends."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import pytest

from certgen.issuing.issuer import Issued, Issuer
from certgen.number import check_number, format_number
from tests.conftest import PASSPHRASE, make_record, resident_id


def _next_number(issuer: Issuer) -> tuple[Issued, str]:
    with issuer.station.register() as reg:
        first = issuer.issue(reg, make_record(id_number=resident_id(1)))
    p = check_number(str(first.record.number)).parsed()
    return first, format_number(p.filing_number, p.year, p.level, p.serial + 1)


def test_a_planted_partial_symlink_is_not_written_through(issuer: Issuer) -> None:
    """Another local user who can write in the output folder (a shared folder, or ``--out /tmp/x``
    with ``/tmp/x/single`` made first) plants ``.<next number>.pdf.partial`` as a symlink to a file
    of the station's user: the form is written as a new file instead, the other file untouched
    (helper-32: written in place with O_TRUNC, it was overwritten with the certificate)."""
    from verify.files import verify_bytes

    _, following = _next_number(issuer)
    assert issuer.out_dir is not None
    victim = issuer.station.home.root / "victim.txt"  # any file of the station's user: trust.json, the register
    victim.write_bytes(b"precious\n")
    (issuer.out_dir / "single" / f".{following}.pdf.partial").symlink_to(victim)
    with issuer.station.register() as reg:
        second = issuer.issue(reg, make_record(id_number=resident_id(2)))
    assert victim.read_bytes() == b"precious\n"
    assert str(second.record.number) == following and not second.path.is_symlink()
    assert verify_bytes(second.path.read_bytes(), second.path.name, issuer.station.trust.load())[0].valid


def test_a_planted_directory_at_the_partial_name_does_not_block_the_station_for_good(issuer: Issuer) -> None:
    """Another user plants ``.<next>.pdf.partial/`` (a directory) in the shared output folder. The
    issue may fail once, with a message; the station must not be left unable to issue (every later
    run's recovery failing on the same directory)."""
    from certgen.station.station import describe_error

    _, following = _next_number(issuer)
    assert issuer.out_dir is not None
    (issuer.out_dir / "single" / f".{following}.pdf.partial").mkdir()
    errors = []
    for seed in (2, 3, 4):
        try:
            with issuer.station.register() as reg:
                issuer.issue(reg, make_record(id_number=resident_id(seed)))
            break
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {describe_error(exc)}")
    assert errors == [], f"station cannot issue: {errors}"  # the folder is set aside, the name free


def test_a_symlink_replanted_between_unlink_and_open_is_an_error_not_a_write_through(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certgen.files as files

    _, following = _next_number(issuer)
    victim = issuer.station.home.root / "victim.txt"
    victim.write_bytes(b"precious\n")
    real_unlink = Path.unlink

    planted: list[None] = []

    def unlink_then_replant(self: Path, missing_ok: bool = False) -> None:
        try:
            real_unlink(self, missing_ok=missing_ok)
        finally:
            if self.name == f".{following}.pdf.partial" and not planted:
                planted.append(None)
                self.symlink_to(victim)  # the other user wins the race, once

    monkeypatch.setattr(files.Path, "unlink", unlink_then_replant)
    with pytest.raises(OSError), issuer.station.register() as reg:
        issuer.issue(reg, make_record(id_number=resident_id(2)))
    monkeypatch.undo()
    assert victim.read_bytes() == b"precious\n"


def test_a_backup_stays_checkable_when_a_run_takes_the_lock_while_it_is_written(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """create_backup lists issue.lock (home/issue.lock) as a member, releases the issuing lock (its
    on_release truncates the file), then digests and zips the members: an issuing run that starts
    meanwhile (the next batch right after a batch's automatic backup, another terminal) writes its
    pid into issue.lock between the digest and the zip, and the backup, reported written, fails
    its own check: it cannot be restored."""
    import certgen.station.backup as backup
    from certgen.station.issuelock import issuing_lock

    _next_number(issuer)
    lock_path = issuer.station.home.issue_lock_path
    real_sha = backup._sha256
    started = threading.Event()
    stop = threading.Event()

    def run_in_another_thread() -> None:  # an issuing run starting while the zip is being written
        with issuing_lock(lock_path):
            started.set()
            stop.wait(10)

    def sha(path: Path) -> str:
        digest = real_sha(path)
        if path == lock_path and not started.is_set():
            threading.Thread(target=run_in_another_thread, daemon=True).start()
            started.wait(10)
        return digest

    monkeypatch.setattr(backup, "_sha256", sha)
    dest = tmp_path / "b.zip"
    try:
        backup.create_backup(issuer.station.home, dest, PASSPHRASE)
    finally:
        stop.set()
    monkeypatch.undo()
    with zipfile.ZipFile(dest) as zf:
        assert "home/issue.lock" not in zf.namelist()  # nothing worth restoring: made when first needed
    backup.check_backup(dest)  # was a BackupError: digest mismatch of home/issue.lock


def test_a_revocation_refused_its_backup_during_a_run_is_backed_up_later(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kiosk: a single issue runs in a worker thread while the operator revokes a certificate on
    the register screen. The revocation's automatic backup is now refused ("发证进行中"), and nothing
    takes it later (a single issue, reissue or an interrupted batch never calls after_change). The
    home is lost; restored from the newest automatic backup, the station verifies the revoked
    certificate VALID (at 286c8c7 the automatic backup held the revocation, and a run's number in
    flight with it). Now the backup is owed, and taken as the run ends."""
    import shutil

    from certgen.station.backup import restore_backup, set_auto_backup
    from certgen.station.home import StationHome
    from certgen.trust import TrustStore
    from verify.files import verify_bytes

    first, _ = _next_number(issuer)
    auto = tmp_path / "auto"
    set_auto_backup(issuer.station.home, auto)
    issuer.station.after_change(PASSPHRASE, "基线")  # a backup before: the first certificate is valid in it
    real_ready = Issuer._ready
    calls: list[None] = []

    def revoke_elsewhere() -> None:  # the UI thread
        issuer.station.revoke("certificate", str(first.record.number), "冒用", PASSPHRASE)

    def ready(self, reg, request):  # type: ignore[no-untyped-def]
        calls.append(None)
        if len(calls) == 1:
            t = threading.Thread(target=revoke_elsewhere)
            t.start()
            t.join(60)
        return real_ready(self, reg, request)

    monkeypatch.setattr(Issuer, "_ready", ready)
    with issuer.station.register() as reg:  # the single-issue screen's worker
        issuer.issue(reg, make_record(id_number=resident_id(7)))
    monkeypatch.undo()
    assert "已自动备份到" in str(issuer.station.last_backup_note), "taken as the run ended, under its lock"

    newest = sorted(auto.glob("*.zip"))[-1]
    shutil.rmtree(issuer.station.home.root)  # the disk is lost
    restored = restore_backup(newest, StationHome(tmp_path / "restored", "--to"), nothing_later=True)
    trust = TrustStore(restored.home / "trust.json").load()
    pdf = first.path.read_bytes()
    assert not verify_bytes(pdf, first.path.name, trust)[0].valid, "a revoked certificate verifies VALID"
