"""Batch issuance from a roster: validate every row first, then issue, resumably.

Each row is a result (person + occupation + level, :func:`certgen.record.result_key`); a row whose
result already has a live certificate in the register, from any batch or file, is skipped and
reported with that certificate's number. The batch id derives from the roster's content (its
normalised rows, not the file's bytes), so re-running the same roster after a crash, or a copy of
it saved with a BOM, in GB18030, with English headers or blank rows, continues the same batch.
A revoked batch is closed: issuing into it is refused.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import heapq
import itertools
import json
import pickle
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from certgen.exceptions import (
    BatchClosed,
    BatchInvalid,
    CertkioskError,
    DuplicateResult,
    PrintSerialUsed,
    RecordError,
    ReportsDiscarded,
    RowProblem,
    WorkerDied,
)
from certgen.issuing.issuer import Issuer, IssueRequest, Printable
from certgen.issuing.recovery import recover_station
from certgen.issuing.reports import BatchEntry, BatchReports, check_public_columns, write_batch_reports
from certgen.issuing.roster import Roster, RosterRow
from certgen.number import SERIAL_MAX, format_number
from certgen.pool import worker_pool
from certgen.printserial import PRINT_SERIAL_HEADER, blank_of, normal_print_serial
from certgen.record import CertificateRecord, id_key, result_key
from certgen.secret import Secret
from certgen.station import Station
from certgen.station.register import IssuedCertificate, Register

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
    printable: Printable | None = None
    """What the plan's printability checks made (the lines laid out, the photo's check but not its
    bytes: :meth:`Printable.kept`), so that issuing the row does not run them again."""


class _Scratch:
    """A private temporary SQLite database (a file SQLite removes from the folder as it opens it,
    so no other process can reach it): what a plan keeps of every row, on disk with a bounded
    page cache instead of in memory. Only this process writes or reads it (it pickles its own
    :class:`PlannedRow` objects); used by one thread at a time (a UI plans in one worker thread
    and issues in another)."""

    def __init__(self) -> None:
        import sqlite3

        self.db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        self.db.executescript(
            """
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
            CREATE TABLE rows (row INTEGER PRIMARY KEY, key TEXT, done TEXT, planned BLOB, prefix TEXT);
            CREATE INDEX rows_by_key ON rows (key);
            CREATE TABLE seen (key TEXT PRIMARY KEY, row INTEGER);
            CREATE TABLE names (person TEXT PRIMARY KEY, name TEXT, row INTEGER);
            CREATE TABLE numbers (number TEXT PRIMARY KEY, row INTEGER);
            CREATE TABLE blanks (blank TEXT PRIMARY KEY, row INTEGER);
            CREATE TABLE identity (text TEXT);
            BEGIN;
            """
        )

    def first(self, sql: str, *args: Any) -> Any:
        """The first row of a query, or None."""
        return self.db.execute(sql, args).fetchone()

    def add(self, table: str, *values: Any) -> None:
        self.db.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(values))})", values)

    def rows(self, where: str = "", order: str = "row") -> Iterator[PlannedRow]:
        """The planned rows in roster order, or ``order`` (``where`` narrows them: SQL on ``rows``)."""
        for (blob,) in self.db.execute(f"SELECT planned FROM rows {where} ORDER BY {order}"):
            yield pickle.loads(blob)

    def count(self, where: str = "") -> int:
        return int(self.first(f"SELECT count(*) FROM rows {where}")[0])


class _PlannedRows:
    """A plan's rows (all valid ones, or those to issue): ``len`` and one pass at a time from disk."""

    def __init__(self, scratch: _Scratch, where: str = "", order: str = "row") -> None:
        self._scratch, self._where, self._order = scratch, where, order

    def __len__(self) -> int:
        return self._scratch.count(self._where)

    def __iter__(self) -> Iterator[PlannedRow]:
        return self._scratch.rows(self._where, self._order)


class _Done(Mapping[str, str]):
    """Result keys that already have a live certificate (in any batch): key → its number."""

    def __init__(self, scratch: _Scratch) -> None:
        self._scratch = scratch

    def __getitem__(self, key: str) -> str:
        found = self._scratch.first("SELECT done FROM rows WHERE key = ? AND done IS NOT NULL", key)
        if found is None:
            raise KeyError(key)
        return str(found[0])

    def __iter__(self) -> Iterator[str]:
        return (str(k) for (k,) in self._scratch.db.execute("SELECT key FROM rows WHERE done IS NOT NULL ORDER BY row"))

    def __len__(self) -> int:
        return self._scratch.count("WHERE done IS NOT NULL")


@dataclass
class BatchPlan:
    """The outcome of checking a roster. Its rows are kept on disk (see :class:`_Scratch`), so
    a 100,000-row plan costs no more memory than a 2,000-row one."""

    roster: Roster
    batch_id: str
    problems: list[RowProblem] = field(default_factory=list)
    scratch: _Scratch = field(default_factory=_Scratch, repr=False)

    @property
    def rows(self) -> _PlannedRows:
        """The valid rows, in roster order."""
        return _PlannedRows(self.scratch)

    @property
    def done(self) -> Mapping[str, str]:
        """Result keys that already have a live certificate (in any batch): key → its number."""
        return _Done(self.scratch)

    @property
    def to_issue(self) -> _PlannedRows:
        """The valid rows whose result has no live certificate yet, in the order they are issued:
        by the part of the number their institution, year and level fix, then in roster order,
        so the numbers come in order as the rows do (the reports are written as they pass)."""
        return _PlannedRows(self.scratch, "WHERE done IS NULL", "prefix, row")

    def extras(self, key: str) -> dict[str, str]:
        """The public-notice columns of the row of result ``key`` ({} if none)."""
        found = self.scratch.first("SELECT planned FROM rows WHERE key = ?", key)
        return dict(pickle.loads(found[0]).row.extras) if found else {}


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


def _identity_text(row: RosterRow) -> str:
    """The row as the batch identity reads it: its non-empty cells, normalised, as JSON with
    sorted keys and ASCII escapes (the sort key of the identity's rows)."""
    cells = {k: _normal(v) for k, v in row.fields.items()} | {
        "extra:" + k: _normal(v) for k, v in row.extras.items() if k != PRINT_SERIAL_HEADER
    }  # which blank a row is printed on is not who the batch is: correcting it continues the batch
    return json.dumps({k: v for k, v in cells.items() if v}, sort_keys=True)


def _identity(scratch: _Scratch) -> str:
    """The batch id of the rows in ``scratch``'s identity table: SHA-256 of the rows as a JSON list
    sorted by :func:`_identity_text`, written without ASCII escapes (SQLite sorts the ASCII texts
    as Python does: by code point)."""
    digest = hashlib.sha256(b"[")
    for i, (text,) in enumerate(scratch.db.execute("SELECT text FROM identity ORDER BY text")):
        item = json.dumps(json.loads(text), ensure_ascii=False, sort_keys=True)
        digest.update((", " if i else "").encode() + item.encode("utf-8"))
    digest.update(b"]")
    return "B" + digest.hexdigest()[:16]


def batch_id_of(roster: Roster) -> str:
    """The batch's identity: SHA-256 of the roster's rows as read (header language, encoding,
    BOM, blank rows, row order and cell types do not matter), so a copy is the same batch."""
    scratch = _Scratch()
    for row in roster.rows:
        scratch.add("identity", _identity_text(row))
    return _identity(scratch)


row_key = result_key
"""A row's identity: its result (kept under this name for callers of earlier versions)."""


def plan_batch(issuer: Issuer, reg: Register, roster: Roster, photos: Path | None) -> BatchPlan:
    """Check every row (fields, number, font, layout, photo, duplicates) without issuing anything.

    A relative path in the 照片 column is found in ``photos``, or else beside the roster file: the
    same rule for the command line and the terminal UI, whatever the current directory. The
    roster is read once more, a row at a time; what the checks keep of each row is on disk.
    """
    photos = photos if photos is not None else roster.source.parent
    plan = BatchPlan(roster, "")
    db = plan.scratch
    for row in roster.rows:
        db.add("identity", _identity_text(row))
        problem = _check_row(issuer, reg, plan, row, photos)
        if problem:
            plan.problems.extend(RowProblem(row.row, p) for p in problem)
    plan.batch_id = _identity(db)
    closed = reg.batch_revocation(plan.batch_id)
    if closed is not None:
        raise BatchClosed(
            f"名册 {roster.source} 对应的批次 {plan.batch_id} 已于 {closed.revoked_at} 吊销（{closed.reason}），"
            "已关闭：不能再向其中发证"
        )
    db.db.execute("COMMIT")
    return plan


def _check_row(issuer: Issuer, reg: Register, plan: BatchPlan, row: RosterRow, photos: Path) -> list[str]:
    """One row's problems; a valid row is added to the plan."""
    db = plan.scratch
    fields = dict(row.fields)
    photo = fields.get("photo")
    if isinstance(photo, str) and photo.strip() and not Path(photo).is_absolute():
        fields["photo"] = str(photos / photo.strip())
    try:
        record = CertificateRecord.from_fields(fields)
        signing_key = issuer.key_for(reg, record)
        record = issuer.complete_record(record, signing_key)
    except RecordError as exc:
        return [str(e) for e in exc.errors]
    except CertkioskError as exc:
        return [str(exc)]
    notice_problems = check_public_columns(row.extras, record)
    if notice_problems:
        return notice_problems
    ident = result_key(record)
    person = id_key(record)
    named = db.first("SELECT name, row FROM names WHERE person = ?", person)
    if named is not None and named[0] != record.name:
        return [f"证件号码 {record.id_number} 在第{named[1]}行的姓名为「{named[0]}」，本行为「{record.name}」"]
    if named is None:
        db.add("names", person, record.name, row.row)
    seen = db.first("SELECT row FROM seen WHERE key = ?", ident)
    if seen is not None:
        return [f"与第{seen[0]}行是同一人、同一职业和等级，重复"]
    db.add("seen", ident, row.row)
    blank, problem = _print_serial_of(issuer, reg, row, record, db)
    if problem is not None:
        return [problem]
    planned = PlannedRow(row, record, ident, blank)
    live = reg.live_certificate(record)
    if live is not None:
        db.add("rows", row.row, ident, live.number, pickle.dumps(planned), None)
        return []
    others = reg.live_names(record)
    if others:
        return [
            f"证件号码 {record.id_number} 在登记库中的姓名为「{others[0][0]}」（证书 {others[0][1]}），"
            f"名册中为「{record.name}」"
        ]
    if record.number is not None:
        numbered = db.first("SELECT row FROM numbers WHERE number = ?", record.number)
        if numbered is not None:
            return [f"证书编号 {record.number} 与第{numbered[0]}行重复"]
        db.add("numbers", record.number, row.row)
        if reg.get(record.number) is not None:
            return [f"证书编号 {record.number} 已在登记库中，不能重复使用"]
    try:
        printable = issuer.prepare(record, signing_key, blank).kept()  # the photo's bytes are not kept
    except CertkioskError as exc:
        return [str(exc)]
    prefix = format_number(signing_key.filing_number, record.issue_date.year, record.level, 1)[: -len(str(SERIAL_MAX))]
    db.add("rows", row.row, ident, None, pickle.dumps(replace(planned, printable=printable)), prefix)
    return []


def _print_serial_of(
    issuer: Issuer, reg: Register, row: RosterRow, record: CertificateRecord, db: _Scratch
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
    try:
        issuer.require_paper(serial)
    except CertkioskError as exc:
        return None, str(exc)
    blank = blank_of(serial)
    other = db.first("SELECT row FROM blanks WHERE blank = ?", blank)
    if other is not None:
        return None, f"印制流水码 {serial} 与第{other[0]}行重复：一张证书用纸只能使用一次"
    db.add("blanks", blank, row.row)
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
    blanks_not_used: tuple[tuple[int, str, str], ...] = ()
    """``(row, number, print serial)`` of each skipped row whose roster names a blank its certificate
    was not printed on: nothing is recorded for that blank (a reprint onto it is ``certkiosk reprint``)."""

    def blank_notes(self) -> list[str]:
        """What every front end says of :attr:`blanks_not_used`, in Chinese."""
        return [
            f"注意：第{row}行的印制流水码 {serial} 未使用：证书 {number} 已发，印在另一张用纸上（未记录这张用纸；"
            f"如需重印到这张用纸，请执行 certkiosk reprint {number} --print-serial {serial}）"
            for row, number, serial in self.blanks_not_used
        ]


# --- worker processes ---------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


_UNLOCKED: dict[bytes, Any] = {}
"""The parent's decrypted signing keys while it starts its workers: a forked worker finds them in
its copy of the parent's memory (they are never pickled or sent); a spawned one decrypts its own."""


def _init_worker(home: Any, passphrase: Secret, settings: dict[str, Any]) -> None:
    """Set up a worker process. What fails here is raised by its first chunk, so that the parent
    gets the error itself (the pool would only say that the process ended)."""
    try:
        issuer = Issuer(Station(home), passphrase, **settings, in_worker=True)
        issuer.unlocked(_UNLOCKED)  # no second key derivation (~0.3 s) in each worker
        _WORKER["issuer"] = issuer
        _WORKER["register"] = Register(home.register_path)
    except Exception as exc:
        _WORKER["failed"] = exc


Outcome = list[tuple[str, bool]]
"""What issuing a chunk gave, row by row: ``(number, new)`` (see :func:`_issue_rows`)."""


RowOutcome = tuple[PlannedRow, tuple[str, bool]]
"""A row and its ``(number, new)``."""


def _issue_rows(issuer: Issuer, reg: Register, rows: Iterable[PlannedRow], batch_id: str) -> Generator[RowOutcome]:
    """Issue the rows in turn (:meth:`Issuer.issue_series`: one commit per certificate): each row
    with ``(number, True)``, or ``(existing number, False)`` when the register already holds a live
    certificate for its result (issued since the plan was made). The series takes a row before the
    one ahead of it comes back (its number is allocated in that row's commit)."""
    taken: deque[PlannedRow] = deque()

    def requests() -> Iterator[IssueRequest]:
        for planned in rows:
            taken.append(planned)
            yield IssueRequest(
                planned.record, batch_id, planned.key, print_serial=planned.print_serial, printable=planned.printable
            )

    with contextlib.closing(issuer.issue_series(reg, requests())) as series:  # stopped early: it voids what it holds
        for outcome in series:
            planned = taken.popleft()
            if isinstance(outcome, DuplicateResult):
                yield planned, (outcome.existing, False)
            else:
                yield planned, (str(outcome.record.number), True)


def _one_process(issuer: Issuer, reg: Register, todo: Iterable[PlannedRow], batch_id: str) -> Generator[Result]:
    """Each row's result, issued in this process: in the order their numbers were allocated, so
    none still to come back can hold a smaller number."""
    with contextlib.closing(_issue_rows(issuer, reg, todo, batch_id)) as rows:
        for i, (planned, result) in enumerate(rows, 1):
            yield planned, result, i


def _issue_chunk(issuer: Issuer, reg: Register, chunk: list[PlannedRow], batch_id: str) -> Outcome:
    return [result for _, result in _issue_rows(issuer, reg, chunk, batch_id)]


def _issue_in_worker(chunk: list[PlannedRow], batch_id: str) -> Outcome:
    if "failed" in _WORKER:
        raise _WORKER["failed"]
    return _issue_chunk(_WORKER["issuer"], _WORKER["register"], chunk, batch_id)


def _entry(reg: Register, cert: IssuedCertificate, extras: dict[str, str], revoked: bool = False) -> BatchEntry:
    """What the reports list of one issued certificate: its record, its file as it is on disk
    (hashed), the row's public-notice columns, the blank its paper form was last printed on, and
    whether it is revoked."""
    assert cert.output_path is not None
    path = Path(cert.output_path)
    return BatchEntry(cert.record, path, _sha256_of(path), extras, reg.last_print_serial(cert.number), revoked)


def _sha256_of(path: Path) -> str:
    """The file's SHA-256, read in blocks ("" when it is missing)."""
    if not path.is_file():
        return ""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


_CHUNK_MAX = 8
"""The most rows handed out at once (one round trip for several certificates)."""


def _chunk_size(left: int, processes: int) -> int:
    """Up to :data:`_CHUNK_MAX` rows while many are left, fewer as the roster ends (a quarter of
    each process's share of what is left), so the processes finish together instead of one
    waiting while another works through a last long chunk."""
    return max(1, min(_CHUNK_MAX, left // (processes * 4)))


Result = tuple[PlannedRow, tuple[str, bool], int]
"""A row, its ``(number, new)``, and how many rows had been handed out when it came back (those
after it were in flight then: only they can hold a number allocated before its own)."""


def _in_order(
    pool: ProcessPoolExecutor,
    todo: Iterable[PlannedRow],
    total: int,
    batch_id: str,
    here: Callable[[Iterable[PlannedRow]], Generator[RowOutcome]],
    processes: int,
) -> Generator[Result]:
    """Each row's result, in the order the rows were handed out, as they come back.

    This process works too (``here`` issues the rows it is given, in turn): each time it takes a
    row, while fewer than :data:`_QUEUED_PER_WORKER` chunks a worker are waiting or running in the
    ``processes - 1`` worker processes, the next chunk goes to them first. So ``processes`` issue in
    all, not those plus one that mostly waits and takes CPU from them when it wakes (the results,
    the reports); no worker waits long for work; and the roster is never queued whole."""
    pending: deque[list[Any]] = deque()
    """``[rows, Future or outcome or None]`` in the order handed out (None: this process's row, not back yet)."""
    mine: deque[list[Any]] = deque()
    queued = _QUEUED_PER_WORKER * (processes - 1)
    rows = iter(todo)
    left = total
    handed = 0

    def ready() -> bool:
        outcome = pending[0][1]
        return outcome is not None and (not isinstance(outcome, Future) or outcome.done())

    def oldest() -> Iterator[Result]:
        part, outcome = pending.popleft()
        got = outcome.result() if isinstance(outcome, Future) else outcome
        return ((row, result, handed) for row, result in zip(part, got, strict=True))

    def feed() -> Iterator[PlannedRow]:
        nonlocal left, handed
        while True:
            while sum(isinstance(o, Future) and not o.done() for _, o in pending) < queued:
                part = list(itertools.islice(rows, _chunk_size(left, processes)))
                if not part:
                    break
                left -= len(part)
                handed += len(part)
                pending.append([part, pool.submit(_issue_in_worker, part, batch_id)])
            row = next(rows, None)
            if row is None:
                return
            left -= 1
            handed += 1
            entry = [[row], None]
            pending.append(entry)
            mine.append(entry)
            yield row

    with contextlib.closing(here(feed())) as series:  # stopped early: this process's series voids what it holds
        for _, result in series:
            mine.popleft()[1] = [result]
            while pending and (ready() or (len(pending) > _HELD_MAX and pending[0][1] is not None)):
                yield from oldest()
    while pending:
        yield from oldest()


_QUEUED_PER_WORKER = 2
"""Chunks kept waiting or running per worker process: one to work on, one to start on next."""

_HELD_MAX = 64
"""The most chunks and rows of this process held before the oldest chunk's result is waited for."""


class _StreamedReports:
    """The batch's reports written while its certificates are issued, in number order.

    Results come back in the order the rows were handed out (:meth:`BatchPlan.to_issue`: by
    number prefix, then roster order), and each number is allocated while its row is in flight.
    So a number smaller than one that came back can only belong to a row that was in flight at
    that moment: a result is written once every row in flight when it came back has come back
    too, and nothing smaller is still held. Anything that could break the order (a batch resumed
    with certificates from an earlier run, a result issued by another run meanwhile, a number
    supplied in the roster, a number out of order) makes :meth:`finish` say no; so does a
    register whose list of the batch is not exactly what was written. The caller then writes
    the reports from the register after the batch, as a resumed batch always is."""

    def __init__(self, stack: contextlib.ExitStack, reg: Register, folder: Path, batch_id: str) -> None:
        self._stack, self._reg, self._folder, self._batch_id = stack, reg, folder, batch_id
        self._held: list[tuple[str, int, str, dict[str, str]]] = []
        self._back = 0
        self._last = ""
        self._written = hashlib.sha256()
        self._count = 0
        self.reports: BatchReports | None = None
        earlier = reg.reported_numbers(batch_id)
        self.usable = next(earlier, None) is None
        earlier.close()  # its statement ends here: no read snapshot kept open while the workers write

    def add(self, planned: PlannedRow, number: str, new: bool, handed: int) -> None:
        """A row's result, as it comes back (``handed``: rows handed out by then)."""
        self._back += 1
        if not new or planned.record.number is not None:
            self.usable = False
        if not self.usable:
            return
        heapq.heappush(self._held, (number, handed, planned.key, dict(planned.row.extras)))
        while self._held and self._held[0][1] <= self._back and self.usable:
            number, _, key, extras = heapq.heappop(self._held)
            self._write(number, key, extras)

    def _write(self, number: str, key: str, extras: dict[str, str]) -> None:
        cert = self._reg.for_row(self._batch_id, key)
        if number <= self._last or cert is None or cert.number != number or cert.output_path is None:
            self.usable = False
            return
        self._last = number
        if self.reports is None:  # the first (smallest) number names the institution, as the register's list would
            self.reports = BatchReports(self._stack, self._folder, self._batch_id, cert.record.evaluator)
        self.reports.add(_entry(self._reg, cert, extras))
        self._written.update(number.encode() + b"\n")
        self._count += 1

    def finish(self, station: Station) -> bool:
        """Write what is held; True if the reports hold exactly the register's list of the batch,
        none of it revoked (one revoked meanwhile is marked by the register's list)."""
        while self._held and self.usable:
            number, _, key, extras = heapq.heappop(self._held)
            self._write(number, key, extras)
        if not self.usable or self.reports is None:
            return False
        listed = hashlib.sha256()
        count = 0
        known = station.revocations_known(self._reg)
        for number, kid in self._reg.reported_signers(self._batch_id):
            if known.revocation_of(number, kid) is not None:
                return False
            listed.update(number.encode() + b"\n")
            count += 1
        return count == self._count and listed.digest() == self._written.digest()


def _collect(
    results: Generator[Result], total: int, progress: Progress | None, reports: _StreamedReports
) -> dict[str, str]:
    """Report progress as rows finish and pass each to the reports; the rows whose result another
    run issued meanwhile. An error here (Cancel from the progress, a full disk under the reports)
    closes ``results`` at once: the issuing series void the numbers they hold while the register
    is open and the lock held."""
    late: dict[str, str] = {}
    with contextlib.closing(results):
        for i, (planned, (number, new), handed) in enumerate(results, 1):
            if not new:
                late[planned.key] = number
            reports.add(planned, number, new, handed)
            if progress:
                progress(i, total, number)
    return late


def _reports_from_register(
    station: Station, reg: Register, plan: BatchPlan, folder: Path, checkpoint: dict[str, Any] | None
) -> list[Path]:
    """The batch's reports written from the register's list of it (a resumed batch)."""
    first = next(reg.reported(plan.batch_id), None)
    if first is None:
        return []
    known = station.revocations_known(reg)
    entries = (
        _entry(reg, cert, plan.extras(cert.row_key or ""), known.revocation_of(cert.number, cert.kid) is not None)
        for cert in reg.reported(plan.batch_id)
    )
    return write_batch_reports(folder, plan.batch_id, first.record.evaluator, entries, checkpoint=checkpoint)


def _recover_stopped_workers(issuer: Issuer, reg: Register, folder: Path) -> None:
    """The worker processes were stopped mid-row (the batch failed, was cancelled or interrupted):
    the numbers they held are voided and their temporary files removed now, by the recovery the
    next run would make (this process holds the issuing lock, the workers are gone); what cannot
    be done now (a full disk) is left to that run."""
    with contextlib.suppress(Exception):
        reg.end_open_transaction()
        done = recover_station(reg, issuer.station.home, issuer.station.trust, (folder,))
        revoked = [r.target for r in done.revocations]
        issuer.revoked_as_stopped += [n for n in revoked if n not in issuer.revoked_as_stopped]


@contextlib.contextmanager
def _worker_died_as_error() -> Iterator[None]:
    """A worker process that died (BrokenProcessPool with no result it could not read back: the
    process ended) as a :class:`WorkerDied`, which says what to do."""
    try:
        yield
    except BrokenProcessPool as exc:
        if exc.__cause__ is not None:  # a result or error that could not be read back: a bug, shown as one
            raise
        raise WorkerDied(
            "一个发证子进程意外退出（可能被系统终止，例如内存不足）：批次已停止，已发的证书保留在登记库中；"
            "重新运行同一命令即可续发（中断的编号会被作废）"
        ) from exc


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
    plan.roster.check_unchanged()  # edited since it was checked: nothing of it is issued
    todo = plan.to_issue
    total = len(todo)
    assert issuer.out_dir is not None
    folder = issuer.out_dir / plan.batch_id
    with issuer.station.register() as reg, issuer.locked(reg, (folder,)) as recovery:
        voided = recovery.voided
        first_row = next(iter(todo), None)
        if first_row is not None:
            issuer.private_key(issuer.key_for(reg, first_row.record))  # a wrong passphrase fails before any work
        stack = contextlib.ExitStack()
        with stack:  # an error unwinds the streamed reports' files
            streamed = _StreamedReports(stack, reg, folder, plan.batch_id)
            if workers <= 1 or total < 2:
                late = _collect(_one_process(issuer, reg, todo, plan.batch_id), total, progress, streamed)
            else:
                settings = {
                    "filing_number": issuer.filing_number, "template_name": issuer.template_name,
                    "out_dir": issuer.out_dir, "seal": issuer.seal, "font_path": issuer.font_path,
                    "forms": issuer.forms, "tsa_url": issuer.tsa_url, "sample_seal": issuer.sample_seal,
                }  # fmt: skip
                _UNLOCKED.update(issuer.unlocked())
                try:
                    # SIGTERM or an error stops the workers: none keeps the register open
                    with (
                        _worker_died_as_error(),
                        worker_pool(workers - 1, _init_worker, (issuer.station.home, issuer.secret, settings)) as pool,
                    ):
                        here = functools.partial(_issue_rows, issuer, reg, batch_id=plan.batch_id)
                        results = _in_order(pool, todo, total, plan.batch_id, here, workers)
                        late = _collect(results, total, progress, streamed)
                except BaseException:
                    _recover_stopped_workers(issuer, reg, folder)
                    raise
                finally:
                    _UNLOCKED.clear()
            checkpoint = reg.latest_checkpoint()
            signed = checkpoint.to_json() if checkpoint is not None else None
            if streamed.finish(issuer.station) and streamed.reports is not None:
                reports = streamed.reports.close(signed)
            else:
                with contextlib.suppress(ReportsDiscarded), stack:  # the streamed files go
                    raise ReportsDiscarded
                # the register's list instead
                reports = _reports_from_register(issuer.station, reg, plan, folder, signed)
    done = {**plan.done, **late}
    rows = _PlannedRows(plan.scratch, "" if late else "WHERE done IS NOT NULL")  # not every row read again
    already: list[tuple[int, str, str]] = []
    blanks: list[tuple[int, str, str]] = []
    for p in rows:
        if p.key in done:
            already.append((p.row.row, p.record.name, done[p.key]))
            if p.print_serial is not None:
                blanks.append((p.row.row, done[p.key], p.print_serial))
    if blanks:  # a blank named for a certificate issued before, on another blank: nothing records it
        with issuer.station.register() as reg:
            blanks = [b for b in blanks if b[2] not in reg.print_serials(b[1])]
    issuer.station.after_change(issuer.secret, f"批次{plan.batch_id}")
    return BatchResult(
        plan.batch_id, total - len(late), len(done), tuple(voided), folder, tuple(reports), tuple(plan.problems),
        tuple(already), tuple(blanks),
    )  # fmt: skip
