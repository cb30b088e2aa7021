"""A batch's reports are written while its certificates are issued (issue 18: the workers do not
wait for the parent to write them at the end). What a user relies on: the files are exactly those
written from the register's list of the batch, in number order, whatever the order the workers
finish in; anything that could break the order falls back to that list; an error leaves none."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from certgen.exceptions import PhotoError
from certgen.issuing import batch
from certgen.issuing.batch import plan_batch, run_batch
from certgen.issuing.issuer import Issuer
from certgen.issuing.roster import read_roster
from certgen.number import format_number
from certgen.station import Station
from certgen.station.backup import create_backup, restore_backup
from certgen.station.register import Register
from tests.conftest import PASSPHRASE
from tests.test_batch import roster_rows, write_csv
from tests.test_print_serial import _roster
from tests.test_print_serial_attacks import _national

REPORT_NAMES = ("证书数据表", "公示名册", "结果汇总表", "数据合规审核表", "manifest")


def _photos(folder: Path, photo_dir: Path) -> Path:
    folder.mkdir()
    shutil.copy(photo_dir / "p0.jpg", folder / "p0.jpg")
    return folder


def _same_as_the_register_list(issuer: Issuer, plan: batch.BatchPlan, folder: Path, written: list[Path]) -> None:
    """Every report file equals the one written from the register's list of the batch."""
    again = folder.parent / "from-register"
    with issuer.station.register() as reg:
        checkpoint = reg.latest_checkpoint()
        listed = batch._reports_from_register(
            issuer.station, reg, plan, again, checkpoint.to_json() if checkpoint else None
        )
        numbers = list(reg.reported_numbers(plan.batch_id))
    assert [p.name for p in written] == [p.name for p in listed]
    for path in written:
        if path.suffix == ".csv":
            assert path.read_bytes() == (again / path.name).read_bytes(), path.name
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert manifest == json.loads((again / "manifest.json").read_text("utf-8"))
    assert [c["number"] for c in manifest["certificates"]] == numbers == sorted(numbers)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_fresh_batch_s_reports_are_written_as_it_runs_and_are_the_register_s_list(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three levels interleaved in the roster, two workers racing for numbers: the reports
    written as results come back are the register's list, in number order, and the register's
    list is not written a second time."""
    photos = _photos(tmp_path / "photos", photo_dir)
    roster = read_roster(write_csv(tmp_path / "r.csv", roster_rows(40), "utf-8"))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
    real = batch._reports_from_register

    def refused(*args: object) -> list[Path]:
        raise AssertionError("a fresh batch's reports were written again from the register")

    monkeypatch.setattr(batch, "_reports_from_register", refused)
    result = run_batch(issuer, plan, workers=workers)
    monkeypatch.setattr(batch, "_reports_from_register", real)
    assert result.issued == 40 and len(result.reports) == 9
    _same_as_the_register_list(issuer, plan, result.folder, list(result.reports))


def test_a_number_supplied_in_the_roster_falls_back_to_the_register_s_list(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    """A supplied number is not allocated in row order (here: serial 50 of its level, before
    serials 2, 3 ...): the reports are still the register's list, in number order."""
    photos = _photos(tmp_path / "photos", photo_dir)
    rows = roster_rows(12)
    with issuer.station.register() as reg:
        filing = reg.institution_keys()[0].filing_number
    rows[2][8] = format_number(filing, 2020, int(rows[2][7]), 50)
    roster = read_roster(write_csv(tmp_path / "r.csv", rows, "utf-8"))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
    assert not plan.problems
    result = run_batch(issuer, plan, workers=2)
    assert result.issued == 12
    _same_as_the_register_list(issuer, plan, result.folder, list(result.reports))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_that_fails_midway_leaves_no_report_and_no_temporary_file(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows already written to the reports, then a row fails (its photo swapped for one the checks
    refuse): no report file, whole or half, is left for the certificates issued so far, nor the
    spreadsheet writer's temporary row files; the run that finishes the batch writes them all."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    photos = tmp_path / "photos"
    photos.mkdir()
    rows = roster_rows(12)
    for i, row in enumerate(rows[1:]):
        shutil.copy(photo_dir / "p0.jpg", photos / f"p{i}.jpg")
        row[10] = f"p{i}.jpg"
    roster = read_roster(write_csv(tmp_path / "r.csv", rows, "utf-8"))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
    assert not plan.problems
    Image.new("RGB", (413, 579), (60, 120, 220)).save(photos / "p8.jpg", "JPEG")  # blue background
    with pytest.raises(PhotoError):
        run_batch(issuer, plan, workers=workers)
    assert issuer.out_dir is not None
    folder = issuer.out_dir / plan.batch_id
    assert any(folder.glob("*.pdf"))  # certificates were issued before the failure
    left = [p.name for p in folder.iterdir() if any(name in p.name for name in REPORT_NAMES)]
    assert left == []
    assert list(scratch.iterdir()) == []

    shutil.copy(photo_dir / "p0.jpg", photos / "p8.jpg")
    result = run_batch(issuer, plan, workers=workers)
    assert result.skipped + result.issued == 12
    _same_as_the_register_list(issuer, plan, result.folder, list(result.reports))


def test_with_two_workers_this_process_issues_rows_too(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``workers=2`` is two processes issuing (this one and one worker), not two workers and a
    third process that waits for them and takes their CPU when it wakes."""
    photos = _photos(tmp_path / "photos", photo_dir)
    roster = read_roster(write_csv(tmp_path / "r.csv", roster_rows(40), "utf-8"))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
    here: list[str] = []  # filled in this process only (a forked worker fills its own copy)
    real = batch._issue_rows

    def counted(
        issuer: Issuer, reg: Register, rows: Iterable[batch.PlannedRow], batch_id: str
    ) -> Iterator[tuple[batch.PlannedRow, tuple[str, bool]]]:
        for planned, result in real(issuer, reg, rows, batch_id):
            here.append(planned.key)
            yield planned, result

    monkeypatch.setattr(batch, "_issue_rows", counted)
    result = run_batch(issuer, plan, workers=2)
    assert result.issued == 40
    assert 0 < len(here) < 40, len(here)
    with issuer.station.register() as reg:
        assert sorted(c.row_key for c in reg.iter_batch(plan.batch_id) if c.status == "issued") == sorted(
            p.key for p in plan.rows
        )


@pytest.mark.parametrize("workers", [1, 2])
def test_a_revoked_certificate_leaves_the_tables_when_its_row_is_issued_again(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, workers: int
) -> None:
    """Revoking a certificate frees its row, and running the roster again issues it anew: the
    tables written then list the new certificate in its place, not the revoked one beside it (the
    upload table and the public list would present a revoked number as a qualified person's, and
    count the person twice). The manifest still lists the revoked one's file, marked (a restore
    learns the blanks used from it)."""
    photos = _photos(tmp_path / "photos", photo_dir)
    roster = read_roster(write_csv(tmp_path / "r.csv", roster_rows(6), "utf-8"))
    with issuer.station.register() as reg:
        first = run_batch(issuer, plan_batch(issuer, reg, roster, photos), workers=workers)
        numbers = list(reg.reported_numbers(first.batch_id))
        revoked = numbers[2]
        person = reg.get(revoked)
        assert person is not None
    issuer.station.revoke("certificate", revoked, "测试吊销")
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
    again = run_batch(issuer, plan, workers=workers)
    assert again.issued == 1 and again.batch_id == first.batch_id
    with issuer.station.register() as reg:
        listed = list(reg.reported_numbers(first.batch_id))
    (new,) = set(listed) - set(numbers)
    table = (again.folder / "证书数据表.csv").read_text("utf-8-sig")
    assert revoked not in table and new in table and table.count(person.record.id_number) == 1
    public = (again.folder / "公示名册.csv").read_text("utf-8-sig").splitlines()
    masked = person.record.id_number[:6] + "*" * 8 + person.record.id_number[-4:]
    assert len(public) == 2 + 6 and sum(masked in line for line in public) == 1
    manifest = json.loads((again.folder / "manifest.json").read_text("utf-8"))
    assert [c["number"] for c in manifest["certificates"]] == listed == sorted([*numbers, new])
    assert [c["number"] for c in manifest["certificates"] if c.get("revoked")] == [revoked]
    _same_as_the_register_list(issuer, plan, again.folder, list(again.reports))


@pytest.mark.parametrize("scope", ["batch", "key"])
def test_certificates_revoked_with_their_batch_or_key_are_marked_and_not_in_the_tables(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, scope: str
) -> None:
    photos = _photos(tmp_path / "photos", photo_dir)
    roster = read_roster(write_csv(tmp_path / "r.csv", roster_rows(3), "utf-8"))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
        result = run_batch(issuer, plan, workers=1)
        cert = reg.get(next(reg.reported_numbers(result.batch_id)))
        assert cert is not None and cert.kid is not None
    issuer.station.revoke(scope, result.batch_id if scope == "batch" else cert.kid, "测试吊销")  # type: ignore[arg-type]
    folder = tmp_path / "again"
    with issuer.station.register() as reg:
        batch._reports_from_register(issuer.station, reg, plan, folder, None)
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert len(manifest["certificates"]) == 3 and all(c.get("revoked") for c in manifest["certificates"])
    assert len((folder / "证书数据表.csv").read_text("utf-8-sig").splitlines()) == 1  # the header alone


def test_reports_after_a_restore_leave_out_a_certificate_the_station_calls_revoked(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    """A restore keeps a revocation made after its backup in the trust store only (the register is
    not written): the reports go by what the station knows, as verify and the register screen do
    (helper-29)."""
    photos = _photos(tmp_path / "photos", photo_dir)
    roster = read_roster(write_csv(tmp_path / "r.csv", roster_rows(3), "utf-8"))
    station = issuer.station
    with station.register() as reg:
        first = run_batch(issuer, plan_batch(issuer, reg, roster, photos), workers=1)
        revoked = list(reg.reported_numbers(first.batch_id))[1]
    create_backup(station.home, tmp_path / "backup.zip", PASSPHRASE)
    station.revoke("certificate", revoked, "证书信息有误", PASSPHRASE)
    restore_backup(tmp_path / "backup.zip", station.home, force=True, nothing_later=True)
    # the station (and every verifier it exports to) calls it revoked ...
    assert [s.revoked for s in station.find_certificates(revoked)] == [True]
    assert station.trust_for_verifying().certificate_revocation(revoked) is not None
    # ... but the roster run again writes reports that list it as a qualified person's
    with station.register() as reg:
        listed = list(reg.reported_numbers(first.batch_id))
        again = run_batch(issuer, plan_batch(issuer, reg, roster, photos), workers=1)
    table = (again.folder / "证书数据表.csv").read_text("utf-8-sig")
    assert revoked in listed and revoked not in table  # listed in the manifest, marked; not in the tables
    manifest = json.loads((again.folder / "manifest.json").read_text("utf-8"))
    assert [c["number"] for c in manifest["certificates"] if c.get("revoked")] == [revoked]


def test_a_blank_of_a_revoked_certificate_survives_a_restore_from_the_output_folder(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    """docs/backup.md step 8: blanks used after the backup are found in the batch manifests of the
    places scanned. The manifest written when the roster runs again still lists the revoked
    certificate (marked) with its blank, so a restore keeps the blank used (helper-29: it was
    forgotten, and could be printed on again, when the manifest left revoked certificates out)."""

    issuer = _national(issuer)
    create_backup(issuer.station.home, tmp_path / "b.zip", PASSPHRASE)  # before the batch
    with issuer.station.register() as reg:
        first = run_batch(
            issuer, plan_batch(issuer, reg, read_roster(_roster(tmp_path, ["LN3001", "LN3002"])), photo_dir)
        )
        (second,) = [c.number for c in reg.iter_batch(first.batch_id) if reg.last_print_serial(c.number) == "LN3002"]
    issuer.station.revoke("certificate", second, "信息有误", PASSPHRASE)
    with issuer.station.register() as reg:  # the operator puts the person on a new blank and runs the roster again
        again = run_batch(
            issuer, plan_batch(issuer, reg, read_roster(_roster(tmp_path, ["LN3001", "LN3009"], "r2.csv")), photo_dir)
        )
    assert again.batch_id == first.batch_id and again.issued == 1
    shutil.rmtree(issuer.station.home.root)  # the disk is lost; the output folder survives
    restore_backup(tmp_path / "b.zip", issuer.station.home, scan=[again.folder])
    with Station(issuer.station.home).register() as reg:
        used = reg.print_serials_used()
        owner = reg.print_serial_owner("LN3002")
    assert owner is not None, f"blank LN3002 (revoked {second}) is free again after the restore; noted: {used}"


def test_a_certificate_revoked_while_its_batch_runs_is_marked_in_the_reports(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    """The reports written as the batch runs listed the certificate before it was revoked: at the
    end they give way to the register's list, with it marked and out of the tables."""
    photos = _photos(tmp_path / "photos", photo_dir)
    roster = read_roster(write_csv(tmp_path / "r.csv", roster_rows(4), "utf-8"))
    revoked: list[str] = []

    def progress(done: int, total: int, number: str) -> None:
        if done == 1:
            issuer.station.revoke("certificate", number, "测试吊销")
            revoked.append(number)

    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
    result = run_batch(issuer, plan, workers=1, progress=progress)
    assert result.issued == 4 and len(revoked) == 1
    table = (result.folder / "证书数据表.csv").read_text("utf-8-sig")
    assert revoked[0] not in table and len(table.splitlines()) == 1 + 3
    manifest = json.loads((result.folder / "manifest.json").read_text("utf-8"))
    assert [c["number"] for c in manifest["certificates"] if c.get("revoked")] == revoked
