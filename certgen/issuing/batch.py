"""Batch issuance from a roster: validate every row first, then issue, resumably.

Each row is a result (person + occupation + level, :func:`certgen.record.result_key`); a row whose
result already has a live certificate in the register, from any batch or file, is skipped and
reported with that certificate's number. The batch id derives from the roster's content (its
normalised rows, not the file's bytes), so re-running the same roster after a crash, or a copy of
it saved with a BOM, in GB18030, with English headers or blank rows, continues the same batch.
A revoked batch is closed: issuing into it is refused.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certgen.exceptions import (
    BatchClosed,
    BatchInvalid,
    CertkioskError,
    DuplicateResult,
    PrintSerialUsed,
    RecordError,
    RowProblem,
)
from certgen.issuing.issuer import Issuer
from certgen.issuing.reports import BatchEntry, check_public_columns, write_batch_reports
from certgen.issuing.roster import Roster, RosterRow
from certgen.pool import worker_pool
from certgen.printserial import PRINT_SERIAL_HEADER, normal_print_serial
from certgen.record import CertificateRecord, id_key, result_key
from certgen.secret import Secret
from certgen.station import Station
from certgen.station.register import Register

Progress = Callable[[int, int, str], None]
"""Called after each certificate with (done, total, number)."""


@dataclass(frozen=True)
class PlannedRow:
    """A valid row, ready to issue."""

    row: RosterRow
    """The roster row."""
    record: CertificateRecord
    """Its record (with institution filled in)."""
    key: str
    """Its result's identity (person, occupation, level)."""
    print_serial: str | None = None
    """The 印制流水码 of the blank its paper form is printed on (the roster's 印制流水码 column)."""


@dataclass
class BatchPlan:
    """The outcome of checking a roster."""

    roster: Roster
    batch_id: str
    rows: list[PlannedRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    done: dict[str, str] = field(default_factory=dict)
    """Result keys that already have a live certificate (in any batch): key → its number."""

    @property
    def to_issue(self) -> list[PlannedRow]:
        return [r for r in self.rows if r.key not in self.done]


def _normal(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def batch_id_of(roster: Roster) -> str:
    """The batch's identity: SHA-256 of the roster's rows as read (header language, encoding,
    BOM, blank rows, row order and cell types do not matter), so a copy is the same batch."""
    rows = []
    for row in roster.rows:
        cells = {k: _normal(v) for k, v in row.fields.items()} | {
            "extra:" + k: _normal(v) for k, v in row.extras.items() if k != PRINT_SERIAL_HEADER
        }  # which blank a row is printed on is not who the batch is: correcting it continues the batch
        rows.append({k: v for k, v in cells.items() if v})
    text = json.dumps(sorted(rows, key=lambda r: json.dumps(r, sort_keys=True)), ensure_ascii=False, sort_keys=True)
    return "B" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


row_key = result_key
"""A row's identity: its result (kept under this name for callers of earlier versions)."""


def plan_batch(issuer: Issuer, reg: Register, roster: Roster, photos: Path | None) -> BatchPlan:
    """Check every row (fields, number, font, layout, photo, duplicates) without issuing anything.

    A relative path in the 照片 column is found in ``photos``, or else beside the roster file: the
    same rule for the command line and the terminal UI, whatever the current directory.
    """
    photos = photos if photos is not None else roster.source.parent
    plan = BatchPlan(roster, batch_id_of(roster))
    closed = reg.batch_revocation(plan.batch_id)
    if closed is not None:
        raise BatchClosed(
            f"名册 {roster.source} 对应的批次 {plan.batch_id} 已于 {closed.revoked_at} 吊销（{closed.reason}），"
            "已关闭：不能再向其中发证"
        )
    seen: dict[str, int] = {}
    names: dict[str, tuple[str, int]] = {}
    numbers: dict[str, int] = {}
    blanks: dict[str, int] = {}
    for row in roster.rows:
        fields = dict(row.fields)
        photo = fields.get("photo")
        if isinstance(photo, str) and photo.strip() and not Path(photo).is_absolute():
            fields["photo"] = str(photos / photo.strip())
        try:
            record = CertificateRecord.from_fields(fields)
            signing_key = issuer.key_for(reg, record)
            record = issuer.complete_record(record, signing_key)
        except RecordError as exc:
            plan.problems.extend(RowProblem(row.row, str(e)) for e in exc.errors)
            continue
        except CertkioskError as exc:
            plan.problems.append(RowProblem(row.row, str(exc)))
            continue
        notice_problems = check_public_columns(row.extras, record)
        if notice_problems:
            plan.problems.extend(RowProblem(row.row, p) for p in notice_problems)
            continue
        ident = result_key(record)
        person = id_key(record)
        if person in names and names[person][0] != record.name:
            other, at = names[person]
            plan.problems.append(
                RowProblem(
                    row.row, f"证件号码 {record.id_number} 在第{at}行的姓名为「{other}」，本行为「{record.name}」"
                )
            )
            continue
        names.setdefault(person, (record.name, row.row))
        if ident in seen:
            plan.problems.append(RowProblem(row.row, f"与第{seen[ident]}行是同一人、同一职业和等级，重复"))
            continue
        seen[ident] = row.row
        blank, problem = _print_serial_of(issuer, reg, row, record, blanks)
        if problem is not None:
            plan.problems.append(RowProblem(row.row, problem))
            continue
        live = reg.live_certificate(record)
        if live is not None:
            plan.done[ident] = live.number
            plan.rows.append(PlannedRow(row, record, ident, blank))
            continue
        others = reg.live_names(record)
        if others:
            plan.problems.append(
                RowProblem(
                    row.row,
                    f"证件号码 {record.id_number} 在登记库中的姓名为「{others[0][0]}」（证书 {others[0][1]}），"
                    f"名册中为「{record.name}」",
                )
            )
            continue
        if record.number is not None:
            if record.number in numbers:
                plan.problems.append(
                    RowProblem(row.row, f"证书编号 {record.number} 与第{numbers[record.number]}行重复")
                )
                continue
            numbers[record.number] = row.row
            existing = reg.get(record.number)
            if existing is not None:
                plan.problems.append(RowProblem(row.row, f"证书编号 {record.number} 已在登记库中，不能重复使用"))
                continue
        try:  # the photo is prepared again when issued: not kept
            issuer.prepare(record, signing_key, blank)
        except CertkioskError as exc:
            plan.problems.append(RowProblem(row.row, str(exc)))
            continue
        plan.rows.append(PlannedRow(row, record, ident, blank))
    return plan


def _print_serial_of(
    issuer: Issuer, reg: Register, row: RosterRow, record: CertificateRecord, blanks: dict[str, int]
) -> tuple[str | None, str | None]:
    """The row's print serial (印制流水码) and the problem with it, if any: malformed, given for an
    electronic-only batch, on two rows, or a blank the register has already used for another
    certificate (a row issued before keeps the blank recorded for it)."""
    try:
        serial = normal_print_serial(row.extras.get(PRINT_SERIAL_HEADER))
    except ValueError as exc:
        return None, str(exc)
    if serial is None:
        return None, None
    if "paper" not in issuer.forms:
        return None, f"印制流水码 {serial} 只用于纸质证书：本次只签发电子证书"
    blank = serial.replace("-", "")  # hyphens only group the characters: LN-0001 is LN0001
    if blank in blanks:
        return None, f"印制流水码 {serial} 与第{blanks[blank]}行重复：一张证书用纸只能使用一次"
    blanks[blank] = row.row
    owner = reg.print_serial_owner(serial)
    if owner is not None:
        live = reg.live_certificate(record)
        if live is None or live.number != owner:
            return None, str(PrintSerialUsed(serial, owner))
    return serial, None


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did."""

    batch_id: str
    issued: int
    """Certificates issued in this run."""
    skipped: int
    """Rows whose result already had a live certificate."""
    voided: tuple[str, ...]
    """Numbers an interrupted earlier run left pending, now void."""
    folder: Path
    """Where the PDFs and reports are."""
    reports: tuple[Path, ...]
    """The report files written."""
    problems: tuple[RowProblem, ...]
    """Rows left out (with --skip-invalid)."""
    already: tuple[tuple[int, str, str], ...] = ()
    """``(row, name, number)`` of each row skipped because its result already had a live certificate."""


# --- worker processes ---------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


_UNLOCKED: dict[bytes, Any] = {}
"""The parent's decrypted signing keys while it starts its workers: a forked worker finds them in
its copy of the parent's memory (they are never pickled or sent); a spawned one decrypts its own."""


def _init_worker(home: Any, passphrase: Secret, settings: dict[str, Any]) -> None:
    issuer = Issuer(Station(home), passphrase, **settings, in_worker=True)
    issuer.unlocked(_UNLOCKED)  # no second key derivation (~0.3 s) in each worker
    _WORKER["issuer"] = issuer
    _WORKER["register"] = Register(home.register_path)


def _issue_one(
    issuer: Issuer, reg: Register, record: CertificateRecord, batch_id: str, key: str, print_serial: str | None = None
) -> tuple[str, bool]:
    """Issue one row: ``(number, True)``, or ``(existing number, False)`` when the register already
    holds a live certificate for the result (issued since the plan was made)."""
    try:
        issued = issuer.issue(reg, record, batch_id=batch_id, row_key=key, print_serial=print_serial)
    except DuplicateResult as exc:
        return exc.existing, False
    return str(issued.record.number), True


def _issue_in_worker(record: CertificateRecord, batch_id: str, key: str, print_serial: str | None) -> tuple[str, bool]:
    return _issue_one(_WORKER["issuer"], _WORKER["register"], record, batch_id, key, print_serial)


def _sha256_of(path: Path) -> str:
    """The file's SHA-256, read in blocks ("" when it is missing)."""
    if not path.is_file():
        return ""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _in_order(
    pool: ProcessPoolExecutor, todo: Iterable[PlannedRow], batch_id: str, window: int
) -> Iterator[tuple[PlannedRow, tuple[str, bool]]]:
    """Each row's result, in the rows' order, with at most ``window`` rows handed to the workers
    at a time (a large roster is not queued whole)."""
    pending: deque[tuple[PlannedRow, Future[tuple[str, bool]]]] = deque()
    for planned in todo:
        pending.append(
            (planned, pool.submit(_issue_in_worker, planned.record, batch_id, planned.key, planned.print_serial))
        )
        if len(pending) >= window:
            done, future = pending.popleft()
            yield done, future.result()
    while pending:
        done, future = pending.popleft()
        yield done, future.result()


def _collect(
    results: Iterator[tuple[PlannedRow, tuple[str, bool]]], total: int, progress: Progress | None
) -> dict[str, str]:
    """Report progress as rows finish; the rows whose result another run issued meanwhile."""
    late: dict[str, str] = {}
    for i, (planned, (number, new)) in enumerate(results, 1):
        if not new:
            late[planned.key] = number
        if progress:
            progress(i, total, number)
    return late


def run_batch(
    issuer: Issuer,
    plan: BatchPlan,
    *,
    skip_invalid: bool = False,
    workers: int = 1,
    progress: Progress | None = None,
) -> BatchResult:
    """Issue the plan's rows (all of them valid, or ``skip_invalid``) and write the reports."""
    if plan.problems and not skip_invalid:
        raise BatchInvalid(plan.problems)
    todo = plan.to_issue
    total = len(todo)
    assert issuer.out_dir is not None
    with issuer.station.register() as reg, issuer.locked(reg, (issuer.out_dir / plan.batch_id,)) as recovery:
        voided = recovery.voided
        if todo:
            issuer.private_key(issuer.key_for(reg, todo[0].record))  # a wrong passphrase fails before any work
        late: dict[str, str] = {}
        if workers <= 1 or total < 2:
            results: Iterator[tuple[PlannedRow, tuple[str, bool]]] = (
                (p, _issue_one(issuer, reg, p.record, plan.batch_id, p.key, p.print_serial)) for p in todo
            )
            late = _collect(results, total, progress)
        else:
            settings = {
                "filing_number": issuer.filing_number, "template_name": issuer.template_name,
                "out_dir": issuer.out_dir, "seal": issuer.seal, "font_path": issuer.font_path,
                "forms": issuer.forms, "tsa_url": issuer.tsa_url, "sample_seal": issuer.sample_seal,
            }  # fmt: skip
            _UNLOCKED.update(issuer.unlocked())
            try:
                with worker_pool(  # SIGTERM or an error stops the workers: none keeps the register open
                    workers, _init_worker, (issuer.station.home, issuer.secret, settings)
                ) as pool:
                    late = _collect(_in_order(pool, todo, plan.batch_id, workers * 4), total, progress)
            finally:
                _UNLOCKED.clear()
        extras = {p.key: p.row.extras for p in plan.rows if p.row.extras}
        first = next((c for c in reg.iter_batch(plan.batch_id) if c.status == "issued" and c.output_path), None)
        institution = first.record.evaluator if first else ""
        entries = (
            BatchEntry(
                cert.record,
                path,
                _sha256_of(path),
                extras.get(cert.row_key or "", {}),
                next(reversed(reg.print_serials(cert.number)), None),
            )
            for cert in reg.iter_batch(plan.batch_id)
            if cert.status == "issued" and cert.output_path is not None
            for path in (Path(cert.output_path),)
        )
        checkpoint = reg.latest_checkpoint()
        assert issuer.out_dir is not None
        folder = issuer.out_dir / plan.batch_id
        signed = checkpoint.to_json() if checkpoint is not None else None
        reports = write_batch_reports(folder, plan.batch_id, institution, entries, checkpoint=signed) if first else []
    done = plan.done | late
    already = tuple((p.row.row, p.record.name, done[p.key]) for p in plan.rows if p.key in done)
    issuer.station.after_change(issuer.secret, f"批次{plan.batch_id}")
    return BatchResult(
        plan.batch_id, total - len(late), len(done), tuple(voided), folder, tuple(reports), tuple(plan.problems),
        already,
    )  # fmt: skip
