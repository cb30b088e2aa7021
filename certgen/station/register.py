"""The issuance register: SQLite in the station home (WAL, synchronous=FULL).

It holds the institutions, their keys' public parts, every allocated certificate number, the
revocations and an append-only, hash-chained audit log. Every change is one transaction that
also appends its audit entry, so the log and the tables cannot drift apart.

Numbers are allocated per institution, year and level, in order from 000001. Allocation commits
a ``pending`` row; issuing completes it. A process that dies in between leaves the row pending,
and :meth:`Register.void_pending` later marks it ``void``: a number is never handed out twice
and never silently reused.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import getpass
import hashlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from certgen.exceptions import (
    BatchClosed,
    CertkioskError,
    DiskFull,
    DuplicateNumber,
    DuplicateResult,
    NameMismatch,
    PrintSerialUsed,
    RegisterError,
)
from certgen.files import is_disk_full
from certgen.number import SERIAL_MAX, check_number, format_number
from certgen.printserial import blank_of
from certgen.record import RECORD_FORMAT, CertificateRecord, id_key, result_key, stored_record
from certgen.station.home import make_private, sqlite_companions
from certgen.station.register_proof import (
    PROOF_SCHEMA,
    SIGNED_ACTIONS,
    Checkpoint,
    CheckpointSigner,
    RowRef,
    all_row_digests,
    check_against,
    check_proof,
    latest_checkpoint,
    load_checkpoint,
    returned_digest,
    row_digests,
    write_checkpoint,
)  # fmt: skip
from certgen.trust import SCOPE_TEXT, PublicKeyInfo, Revocation, Scope, utc_now

SCHEMA_VERSION = "2"
"""2: every covered row's digest is in the audit chain and its head is signed (register_proof)."""
GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS institutions (
    filing_number TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    kid TEXT PRIMARY KEY,
    filing_number TEXT NOT NULL REFERENCES institutions(filing_number),
    public_key TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS serials (
    filing_number TEXT NOT NULL,
    year INTEGER NOT NULL,
    level INTEGER NOT NULL,
    last_serial INTEGER NOT NULL,
    PRIMARY KEY (filing_number, year, level)
);
CREATE TABLE IF NOT EXISTS certificates (
    number TEXT PRIMARY KEY,
    filing_number TEXT NOT NULL,
    year INTEGER NOT NULL,
    level INTEGER NOT NULL,
    serial INTEGER NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('allocated', 'supplied')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'issued', 'void')),
    name TEXT NOT NULL,
    id_number TEXT NOT NULL,
    record TEXT NOT NULL,
    batch_id TEXT,
    row_key TEXT,
    kid TEXT,
    payload_sha256 TEXT,
    output_path TEXT,
    allocated_at TEXT NOT NULL,
    issued_at TEXT,
    void_reason TEXT,
    UNIQUE (filing_number, year, level, serial)
);
CREATE INDEX IF NOT EXISTS certificates_batch ON certificates (batch_id, row_key);
CREATE INDEX IF NOT EXISTS certificates_name ON certificates (name);
CREATE INDEX IF NOT EXISTS certificates_id ON certificates (id_number);
CREATE TABLE IF NOT EXISTS revocations (
    scope TEXT NOT NULL CHECK (scope IN ('certificate', 'batch', 'key')),
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    revoked_at TEXT NOT NULL,
    PRIMARY KEY (scope, target)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_certificates (
    kid TEXT PRIMARY KEY REFERENCES keys(kid),
    der TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS certificate_forms (
    number TEXT NOT NULL REFERENCES certificates(number),
    form TEXT NOT NULL CHECK (form IN ('paper', 'electronic')),
    made_at TEXT NOT NULL,
    output_path TEXT,
    pdf_sha256 TEXT,
    PRIMARY KEY (number, form)
);
CREATE TABLE IF NOT EXISTS print_serials (
    serial TEXT PRIMARY KEY,
    number TEXT NOT NULL REFERENCES certificates(number),
    form TEXT NOT NULL CHECK (form = 'paper'),
    used_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS print_serials_number ON print_serials (number);
CREATE UNIQUE INDEX IF NOT EXISTS print_serials_blank ON print_serials (replace(serial, '-', ''));
CREATE TABLE IF NOT EXISTS blanks_used_elsewhere (
    blank TEXT PRIMARY KEY,
    serial TEXT NOT NULL,
    number TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""

Status = Literal["pending", "issued", "void"]


BUSY_TIMEOUT_S = 30.0
"""How long a change waits for another connection's write transaction before it fails."""
FIRST_PAUSE_S = 50e-6
"""The first pause between two tries to begin a write transaction; pauses double from there, to at
most :data:`SHORT_PAUSE_S` for the first :data:`SHORT_WAIT_S`, then to at most :data:`LONG_PAUSE_S`."""
SHORT_PAUSE_S, SHORT_WAIT_S, LONG_PAUSE_S = 1e-3, 0.1, 0.05
_pause = time.sleep
_clock = time.monotonic


def begin_immediate(db: sqlite3.Connection, timeout: float = BUSY_TIMEOUT_S) -> None:
    """BEGIN IMMEDIATE (the write lock), waiting for another connection's write transaction in short
    steps: SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between tries, while a commit of
    another issuing process holds the lock for ~0.3 ms, so two issuing processes spent ~11 % of their
    time asleep (strace: 233 sleeps, 0.34 s, in a 1.5 s batch of 200 rows). Here a try follows
    50 us later at first, at most 1 ms, and after 0.1 s of waiting (someone holds the lock long: a
    backup, a stopped process) at most 50 ms, so a long wait does not keep a core busy. After
    ``timeout`` seconds the ``database is locked`` error is raised, as SQLite's own timeout raised
    it. The connection's busy timeout is as it was afterwards."""
    (before,) = db.execute("PRAGMA busy_timeout").fetchone()
    db.execute("PRAGMA busy_timeout = 0")
    try:
        start = _clock()
        pause = FIRST_PAUSE_S
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                waited = _clock() - start
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or waited >= timeout:
                    raise
            _pause(pause)
            pause = min(pause * 2, SHORT_PAUSE_S if waited < SHORT_WAIT_S else LONG_PAUSE_S)
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(before)}")


def _create_private(path: Path) -> None:
    """Create the register file 0600 before SQLite does (SQLite gives its -wal, -shm and -journal
    files the database file's mode), and tighten an existing one and its companions."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return  # sqlite3.connect reports it
    for each in (path, *sqlite_companions(path)):
        make_private(each)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _canonical(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def entry_hash(prev_hash: str, seq: int, at: str, actor: str, action: str, detail: str) -> str:
    """The hash of one audit entry: SHA-256 over the previous hash and the entry's fields."""
    material = _canonical([prev_hash, seq, at, actor, action, detail]).encode("utf-8")
    return hashlib.sha256(material).hexdigest()


@dataclass(frozen=True)
class IssuedCertificate:
    """One row of the register's certificate table."""

    number: str
    """证书编号."""
    status: Status
    """``pending`` (allocated, not finished), ``issued`` or ``void``."""
    record: CertificateRecord
    """The record as signed (with its number)."""
    batch_id: str | None
    """The batch it was issued in, if any."""
    row_key: str | None
    """The roster row it came from (for resuming a batch)."""
    kid: str | None
    """The signing key's id (hex)."""
    payload_sha256: str | None
    """SHA-256 of the QR payload text."""
    output_path: str | None
    """Where the certificate PDF was written."""
    allocated_at: str
    """When the number was allocated (UTC)."""
    issued_at: str | None
    """When issuing completed (UTC)."""
    void_reason: str | None
    """Why the number was voided."""


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log."""

    seq: int
    """Position in the chain, from 1."""
    at: str
    """UTC timestamp."""
    actor: str
    """``user@host`` that made the change."""
    action: str
    """What happened, e.g. ``certificate.issue``."""
    detail: dict[str, Any]
    """The facts of the change."""


class Register:
    """An open issuance register. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path, *, actor: str | None = None) -> None:
        self.path = path
        self.actor = actor or _actor()
        self.signer: CheckpointSigner | None = None
        """The unlocked institution key that signs a checkpoint at each commit that needs one."""
        self._needs_checkpoint = False
        self._head: tuple[int, str] | None = None
        """The audit chain's last ``(seq, hash)`` as this connection's open write transaction left
        it; None outside a transaction (another process may append between two of them)."""
        self._depth = 0
        """How many :meth:`_transaction` blocks are open: inside one, another is a savepoint."""
        self._lost: CertkioskError | None = None
        """The error with which SQLite rolled back the open transaction from inside a savepoint."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _create_private(path)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._db.executescript(PROOF_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
            self._migrate_results()
            self._cover_legacy_rows()
        except sqlite3.DatabaseError as exc:
            if is_disk_full(exc, path):
                raise DiskFull(path) from None
            raise RegisterError(f"无法打开登记库 {path}：{exc}") from None

    def _cover_legacy_rows(self) -> None:
        """A schema-1 register's rows enter the chain once, as they are (trust on first upgrade)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None or row[0] != "1":
            return
        with self._transaction() as db:
            digests = all_row_digests(db)
            if digests:
                self._audit(db, "register.cover", {"schema": SCHEMA_VERSION, "rows": digests})
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA_VERSION,))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Register:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions and the audit chain -------------------------------------------------
    @contextmanager
    def group(self) -> Iterator[None]:
        """Several changes in one write transaction, committed (and fsync'd) once as the block ends.

        Each change in it is a savepoint: one that fails is undone alone, and when its error is
        caught inside the block the others still commit; an error leaving the block undoes all."""
        with self._transaction():
            yield

    @contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``durable=False`` only for a change whose loss at a power cut is
        harmless (it is made again): its commit is not fsync'd itself (SQLite's WAL keeps the
        register consistent, and the next durable commit makes it durable too). Inside another
        (:meth:`group`), a savepoint of it."""
        db = self._db
        if self._depth:
            with self._savepoint(db):
                yield db
            return
        if not durable:
            with self._relaxed(db), self._transaction() as inner:
                yield inner
            return
        try:
            begin_immediate(db)
        except sqlite3.Error as exc:
            raise self._db_error(exc) from None
        self._needs_checkpoint = False
        self._head = None  # read again by the first entry: the write lock is held from here on
        self._depth = 1
        self._lost = None
        try:
            yield db
            if not db.in_transaction:  # SQLite rolled it all back (a full disk, an I/O error): nothing of it holds
                raise self._rolled_back()
            if self._head is not None:  # the transaction appended entries: the head is recorded once
                self._record_head(db, *self._head)
            if self._needs_checkpoint and self.signer is not None:
                write_checkpoint(db, self.signer, utc_now(), self._head)
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # SQLite rolls back itself when the connection goes
                    db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._db_error(exc) from None
            raise
        finally:
            self._head = None
            self._depth = 0

    @contextmanager
    def _savepoint(self, db: sqlite3.Connection) -> Iterator[None]:
        """A change inside an open transaction, undone alone (its audit entries too) if it fails."""
        name = f"change{self._depth}"
        head, needs_checkpoint = self._head, self._needs_checkpoint
        if not db.in_transaction:  # the enclosing one was rolled back by SQLite: a savepoint would begin anew
            raise self._rolled_back()
        try:
            db.execute(f"SAVEPOINT {name}")
        except sqlite3.Error as exc:
            raise self._db_error(exc) from None
        self._depth += 1
        try:
            yield
            db.execute(f"RELEASE {name}")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):  # the enclosing transaction rolls back if this fails
                db.execute(f"ROLLBACK TO {name}")
                db.execute(f"RELEASE {name}")
            self._head, self._needs_checkpoint = head, needs_checkpoint
            error = self._db_error(exc) if isinstance(exc, sqlite3.Error) else exc
            if not db.in_transaction and isinstance(error, CertkioskError):
                self._lost = error  # the enclosing transaction fails with it, whatever its caller catches
            if error is exc:
                raise
            raise error from None
        finally:
            self._depth -= 1

    def _rolled_back(self) -> CertkioskError:
        """The error for a transaction SQLite rolled back whole from inside one of its savepoints."""
        return self._lost or RegisterError(f"登记库 {self.path} 的事务已被 SQLite 回滚，本次更改均未保存")

    def end_open_transaction(self) -> None:
        """Roll back a write transaction an interrupted call left open (a second signal during its
        own rollback), so that what this connection reads next is what is committed."""
        with contextlib.suppress(sqlite3.Error):  # a closed connection has nothing open either
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")

    @contextmanager
    def _relaxed(self, db: sqlite3.Connection) -> Iterator[None]:
        try:
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise self._db_error(exc) from None
        try:
            yield
        finally:
            db.execute("PRAGMA synchronous=FULL")

    def _db_error(self, exc: sqlite3.Error) -> CertkioskError:
        """A full disk as such, naming the register; any other SQLite failure as a RegisterError."""
        if is_disk_full(exc, self.path):
            return DiskFull(self.path)
        return RegisterError(f"登记库 {self.path} 操作失败：{exc}")

    def _audit(
        self,
        db: sqlite3.Connection,
        action: str,
        detail: dict[str, Any],
        rows: tuple[RowRef, ...] = (),
        returned: dict[str, str | None] | None = None,
    ) -> None:
        """Append an entry; ``rows`` are the covered rows this change made, recorded by digest
        (read here), ``returned`` more of them already digested from the change's ``RETURNING *``.

        The previous entry's hash is read once per transaction: the transaction holds the write
        lock (BEGIN IMMEDIATE), so only this connection appends until it ends."""
        row = self._head or db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
        at = utc_now()
        if rows or returned:
            detail = detail | {"rows": row_digests(db, rows) | (returned or {})}
        if action in SIGNED_ACTIONS:
            self._needs_checkpoint = True
        text = _canonical(detail)
        digest = entry_hash(prev, seq, at, self.actor, action, text)
        db.execute(
            "INSERT INTO audit (seq, at, actor, action, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?)",
            (seq, at, self.actor, action, text, prev, digest),
        )
        if db.in_transaction:  # recorded in meta as the transaction ends
            self._head = (seq, digest)
        else:
            self._record_head(db, seq, digest)

    @staticmethod
    def _record_head(db: sqlite3.Connection, seq: int, digest: str) -> None:
        """Note the chain's last entry in meta (a truncated chain no longer reaches it)."""
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('audit_head', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (f"{seq}:{digest}",),
        )

    def log(self, action: str, detail: dict[str, Any]) -> None:
        """Append an entry that changes no table (e.g. a print job) to the audit log."""
        with self._transaction() as db:
            self._audit(db, action, detail)

    def printed_before(self, file: str) -> bool:
        """Whether the audit log already records a print of ``file`` (a new one is a reprint)."""
        row = self._db.execute(
            "SELECT 1 FROM audit WHERE action = 'certificate.print' AND json_extract(detail, '$.file') = ? LIMIT 1",
            (file,),
        ).fetchone()
        return row is not None

    def audit_entries(self) -> list[AuditEntry]:
        rows = self._db.execute("SELECT seq, at, actor, action, detail FROM audit ORDER BY seq")
        return [AuditEntry(s, at, actor, action, json.loads(detail)) for s, at, actor, action, detail in rows]

    # --- institutions and keys ------------------------------------------------------------
    def add_key(self, info: PublicKeyInfo) -> PublicKeyInfo | None:
        """Record a new key; the institution's key open on its first day (if any) ends the day before.

        Returns the previous key as updated (its validity closed), or None.
        """
        with self._transaction() as db:
            known = db.execute(
                "SELECT name FROM institutions WHERE filing_number = ?", (info.filing_number,)
            ).fetchone()
            if known is None:
                db.execute(
                    "INSERT INTO institutions (filing_number, name, created_at) VALUES (?,?,?)",
                    (info.filing_number, info.institution, utc_now()),
                )
                self._audit(
                    db, "institution.add", {"filing_number": info.filing_number, "name": info.institution},
                    (("institutions", (info.filing_number,)),),
                )  # fmt: skip
            elif known[0] != info.institution:
                raise RegisterError(f"机构 {info.filing_number} 已登记为「{known[0]}」，与「{info.institution}」不符")
            previous = None
            for old in self._keys(db, info.filing_number):
                overlaps = old.valid_until is None or old.valid_until >= info.valid_from
                if old.valid_from <= info.valid_from and overlaps:
                    end = info.valid_from - _dt.timedelta(days=1)
                    end = max(end, old.valid_from)
                    db.execute("UPDATE keys SET valid_until = ? WHERE kid = ?", (end.isoformat(), old.kid.hex()))
                    self._audit(
                        db, "key.retire", {"kid": old.kid.hex(), "valid_until": end.isoformat()},
                        (("keys", (old.kid.hex(),)),),
                    )  # fmt: skip
                    previous = PublicKeyInfo(
                        old.kid, old.public_key, old.filing_number, old.institution, old.valid_from, end, old.x509
                    )
            db.execute(
                "INSERT INTO keys (kid, filing_number, public_key, valid_from, valid_until, created_at) "
                "VALUES (?,?,?,?,?,?)",
                (
                    info.kid.hex(), info.filing_number, info.public_key.hex(), info.valid_from.isoformat(),
                    info.valid_until.isoformat() if info.valid_until else None, utc_now(),
                ),
            )  # fmt: skip
            self._audit(db, "key.new", info.with_x509(None).to_json(), (("keys", (info.kid.hex(),)),))
            if info.x509 is not None:
                self._insert_key_certificate(db, info.kid, info.x509)
        return previous

    # --- document-signing certificates (electronic certificates) ---------------------------
    def _insert_key_certificate(self, db: sqlite3.Connection, kid: bytes, der: bytes) -> None:
        db.execute(
            "INSERT INTO key_certificates (kid, der, created_at) VALUES (?,?,?)", (kid.hex(), der.hex(), utc_now())
        )
        self._audit(
            db, "key.x509", {"kid": kid.hex(), "sha256": hashlib.sha256(der).hexdigest()},
            (("key_certificates", (kid.hex(),)),),
        )  # fmt: skip

    def add_key_certificate(self, kid: bytes, der: bytes) -> None:
        """Record the document-signing certificate of a key that has none (``keys x509``)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM keys WHERE kid = ?", (kid.hex(),)).fetchone() is None:
                raise RegisterError(f"密钥 {kid.hex()} 不在本站登记库中")
            if db.execute("SELECT 1 FROM key_certificates WHERE kid = ?", (kid.hex(),)).fetchone():
                raise RegisterError(f"密钥 {kid.hex()} 已有文档签名证书")
            self._insert_key_certificate(db, kid, der)

    def record_form(
        self,
        number: str,
        form: str,
        *,
        output_path: str | None,
        pdf_sha256: str | None,
        print_serial: str | None = None,
    ) -> None:
        """Record that the ``paper`` or ``electronic`` form of an issued certificate was made (again);
        ``print_serial``: the blank a paper form is printed on, recorded in the same transaction
        (PrintSerialUsed when another certificate already used that blank)."""
        with self._transaction() as db:
            self._record_form(db, number, form, output_path, pdf_sha256, print_serial)

    def _record_form(
        self,
        db: sqlite3.Connection,
        number: str,
        form: str,
        output_path: str | None,
        pdf_sha256: str | None,
        print_serial: str | None = None,
    ) -> None:
        if print_serial is not None:
            self._use_print_serial(db, number, form, print_serial)
        cur = db.execute(
            "INSERT INTO certificate_forms (number, form, made_at, output_path, pdf_sha256) VALUES (?,?,?,?,?) "
            "ON CONFLICT (number, form) DO UPDATE SET made_at = excluded.made_at, "
            "output_path = excluded.output_path, pdf_sha256 = excluded.pdf_sha256 RETURNING *",
            (number, form, utc_now(), output_path, pdf_sha256),
        )
        self._audit(
            db, "certificate.form", {"number": number, "form": form, "pdf_sha256": pdf_sha256},
            returned=returned_digest("certificate_forms", cur, cur.fetchone()),
        )  # fmt: skip

    def _use_print_serial(self, db: sqlite3.Connection, number: str, form: str, serial: str) -> None:
        if form != "paper":
            raise RegisterError(f"印制流水码 {serial} 只能用于纸质证书，不能用于{form}形式")
        owner = db.execute(_BLANK_OWNER, (serial,)).fetchone()
        if owner is not None and owner[0] != number:
            raise PrintSerialUsed(serial, owner[0])
        if owner is None:  # the primary key refuses a second use even if a check above were skipped
            db.execute(
                "INSERT INTO print_serials (serial, number, form, used_at) VALUES (?,?,?,?)",
                (serial, number, form, utc_now()),
            )
            self._audit(
                db, "certificate.print_serial", {"number": number, "serial": serial},
                (("print_serials", (serial,)),),
            )  # fmt: skip

    def print_serial_owner(self, serial: str) -> str | None:
        """The certificate whose paper form used the blank ``serial`` (None: unused)."""
        row = self._db.execute(_BLANK_OWNER, (serial,)).fetchone()
        return str(row[0]) if row else None

    def print_serials_used(self) -> list[tuple[str, str]]:
        """Every ``(serial, number)`` this register records a blank for."""
        rows = self._db.execute(
            "SELECT serial, number FROM print_serials UNION SELECT serial, number FROM blanks_used_elsewhere"
        )
        return [(str(s), str(n)) for s, n in rows]

    def note_blanks_used(self, used: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        """After a restore: blanks ``(serial, number, source)`` used after the backup (found by the
        restore in ``source``) are never used again, though the certificates that used them may be
        unknown here (one transaction; not audited: nothing is issued by this, it only refuses).
        Returns the ones that were new."""
        noted = []
        with self._transaction(durable=False) as db:
            for serial, number, source in used:
                if db.execute(_BLANK_OWNER, (serial,)).fetchone() is None:
                    db.execute(
                        "INSERT INTO blanks_used_elsewhere (blank, serial, number, source) VALUES (?,?,?,?)",
                        (blank_of(serial), serial, number, source),
                    )
                    noted.append((serial, number, source))
        return noted

    def last_print_serial(self, number: str) -> str | None:
        """The blank the certificate's paper form was last printed on (None: none recorded)."""
        return next(reversed(self.print_serials(number)), None)

    def print_serials(self, number: str) -> list[str]:
        """The blanks the certificate's paper form was printed on, oldest first."""
        rows = self._db.execute("SELECT serial FROM print_serials WHERE number = ? ORDER BY used_at, serial", (number,))
        return [s for (s,) in rows]

    def _release_print_serials(self, db: sqlite3.Connection, number: str) -> None:
        """A number voided before it was issued printed nothing: its blanks are free again."""
        for (serial,) in db.execute("SELECT serial FROM print_serials WHERE number = ?", (number,)).fetchall():
            db.execute("DELETE FROM print_serials WHERE serial = ?", (serial,))
            self._audit(
                db, "certificate.print_serial_release", {"number": number, "serial": serial},
                (("print_serials", (serial,)),),
            )  # fmt: skip

    def form_files(self, number: str) -> list[tuple[str, str | None, str | None]]:
        """Each form's file and the SHA-256 of its bytes: ``[(form, output_path, pdf_sha256)]``."""
        rows = self._db.execute(
            "SELECT form, output_path, pdf_sha256 FROM certificate_forms WHERE number = ? ORDER BY form", (number,)
        )
        return list(rows.fetchall())

    def forms(self, number: str) -> dict[str, str]:
        """The forms made of a certificate, with when each was (last) made: ``{"paper": "2024-..."}``."""
        rows = self._db.execute("SELECT form, made_at FROM certificate_forms WHERE number = ?", (number,))
        return dict(rows.fetchall())

    def _keys(self, db: sqlite3.Connection, filing_number: str | None = None) -> list[PublicKeyInfo]:
        return [key for key, _ in self._keys_revoked(db, filing_number)]

    def _keys_revoked(
        self, db: sqlite3.Connection, filing_number: str | None = None
    ) -> list[tuple[PublicKeyInfo, bool]]:
        """The recorded keys, oldest first, each with whether it is revoked (one read)."""
        sql = (
            "SELECT k.kid, k.public_key, k.filing_number, i.name, k.valid_from, k.valid_until, c.der, "
            "EXISTS (SELECT 1 FROM revocations r WHERE r.scope = 'key' AND r.target = k.kid) "
            "FROM keys k JOIN institutions i USING (filing_number) LEFT JOIN key_certificates c USING (kid)"
        )
        args: tuple[str, ...] = ()
        if filing_number is not None:
            sql += " WHERE k.filing_number = ?"
            args = (filing_number,)
        rows = db.execute(sql + " ORDER BY k.valid_from, k.created_at", args).fetchall()
        return [
            (
                PublicKeyInfo(
                    bytes.fromhex(kid), bytes.fromhex(pub), fn, name, _dt.date.fromisoformat(vf),
                    _dt.date.fromisoformat(vu) if vu else None, bytes.fromhex(der) if der else None,
                ),
                bool(revoked),
            )
            for kid, pub, fn, name, vf, vu, der, revoked in rows
        ]  # fmt: skip

    def institution_keys(self, filing_number: str | None = None) -> list[PublicKeyInfo]:
        """The recorded keys (of one institution, or all), oldest first."""
        return self._keys(self._db, filing_number)

    def signing_key(self, filing_number: str | None, on: _dt.date) -> PublicKeyInfo:
        """The key to sign with for an issue date ``on``; RegisterError naming what is missing."""
        keys = self._keys_revoked(self._db, filing_number)
        revoked = {k.kid.hex() for k, gone in keys if gone}  # of these keys: all the message needs
        candidates = [k for k, gone in keys if k.valid_on(on) and not gone]
        institutions = {k.filing_number for k in candidates}
        if not candidates:
            raise RegisterError(self._no_key_message(filing_number, on, revoked))
        if len(institutions) > 1:
            raise RegisterError("本站有多个机构的密钥：请用 --institution 指定机构备案号")
        return candidates[-1]

    def _no_key_message(self, filing_number: str | None, on: _dt.date, revoked: set[str]) -> str:
        who = f"机构 {filing_number} " if filing_number else "本站"
        day = on.isoformat()
        usable = [k for k in self.institution_keys(filing_number) if k.kid.hex() not in revoked]
        if not usable:
            return f"{who}没有在 {day} 有效的签名密钥：请先执行 certkiosk keys new"
        first = min(k.valid_from for k in usable)
        if on < first:
            return (
                f"{who}没有在 {day} 有效的签名密钥：现有密钥自 {first.isoformat()} 起才有效。"
                f"如需签发 {day} 的证书，请用 certkiosk keys new --valid-from {day} 创建自该日起有效的密钥"
                "（它在现有密钥生效前一天截止，现有密钥及其证书不受影响）"
            )
        spans = "、".join(
            f"{k.valid_from.isoformat()}~{k.valid_until.isoformat() if k.valid_until else '长期'}" for k in usable
        )
        return f"{who}没有在 {day} 有效的签名密钥（现有密钥的有效期：{spans}）：请执行 certkiosk keys new 创建新密钥"

    # --- numbers ---------------------------------------------------------------------------
    def allocate(
        self,
        record: CertificateRecord,
        filing_number: str,
        *,
        batch_id: str | None = None,
        row_key: str | None = None,
        kid: str | None = None,
        output_dir: Path | None = None,
        reissue: Reissue | None = None,
    ) -> CertificateRecord:
        """Allocate the next number for the record's year and level and record it as pending.

        Returns the record with its number. The allocation is committed before this returns.
        ``output_dir``: the folder its PDF will be published in as ``<number>.pdf`` (recorded so
        that recovery can finish or clean up after a crash); ``reissue``: a deliberate re-issue.
        """
        year, level = record.issue_date.year, record.level
        with self._transaction() as db:
            cur = db.execute(  # the counter moves on and says where it went (a refusal below rolls it back)
                "INSERT INTO serials (filing_number, year, level, last_serial) VALUES (?,?,?,1) "
                "ON CONFLICT (filing_number, year, level) DO UPDATE SET last_serial = last_serial + 1 RETURNING *",
                (filing_number, year, level),
            )
            counter = cur.fetchone()
            serial = counter[[d[0] for d in cur.description].index("last_serial")]
            self._check_counter(db, filing_number, year, level, serial)
            if serial > SERIAL_MAX:
                raise RegisterError(f"机构 {filing_number} {year}年{level}级证书序列码已用尽（上限{SERIAL_MAX}）")
            numbered = record.with_number(format_number(filing_number, year, level, serial))
            self._insert(
                db, numbered, "allocated", batch_id, row_key, kid, (filing_number, year, level), output_dir, reissue,
                serial_row=returned_digest("serials", cur, counter),
            )  # fmt: skip
        return numbered

    def _check_counter(self, db: sqlite3.Connection, filing_number: str, year: int, level: int, serial: int) -> None:
        """Refuse to allocate from a counter lowered below a serial already used (an edited register)."""
        used = db.execute(
            "SELECT max(serial) FROM certificates WHERE filing_number = ? AND year = ? AND level = ?",
            (filing_number, year, level),
        ).fetchone()[0]
        if serial < 1 or (used is not None and serial <= used):
            raise RegisterError(
                f"登记库的序列码计数器（机构 {filing_number} {year}年{level}级）为{serial - 1}，低于已用的最大序列码"
                f"{used or 0}：登记库被改动过，已停止分配编号。请执行 certkiosk register check 并从备份恢复"
            )

    def record_supplied(
        self,
        record: CertificateRecord,
        *,
        batch_id: str | None = None,
        row_key: str | None = None,
        kid: str | None = None,
        output_dir: Path | None = None,
    ) -> CertificateRecord:
        """Record a number given in a roster as pending; DuplicateNumber if it is known."""
        if record.number is None:
            raise RegisterError("记录没有证书编号")
        parsed = check_number(record.number).parsed()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO serials (filing_number, year, level, last_serial) VALUES (?,?,?,?) "
                "ON CONFLICT (filing_number, year, level) DO UPDATE "
                "SET last_serial = max(last_serial, excluded.last_serial)",
                (parsed.filing_number, parsed.year, parsed.level, parsed.serial),
            )
            serial_key = (parsed.filing_number, parsed.year, parsed.level)
            self._insert(db, record, "supplied", batch_id, row_key, kid, serial_key, output_dir)
        return record

    def _insert(
        self,
        db: sqlite3.Connection,
        record: CertificateRecord,
        origin: str,
        batch_id: str | None,
        row_key: str | None,
        kid: str | None,
        serial_key: tuple[str, int, int],
        output_dir: Path | None = None,
        reissue: Reissue | None = None,
        serial_row: dict[str, str | None] | None = None,
    ) -> None:
        """``serial_row``: the counter row's digest when the caller has it from its ``RETURNING *``."""
        assert record.number is not None
        unsettled, *existing = db.execute(  # one read: the restore guard and a number already known
            "SELECT (SELECT 1 FROM meta WHERE key = 'restore_unsettled'), status, batch_id "
            "FROM (SELECT 1) LEFT JOIN certificates ON number = ?",
            (record.number,),
        ).fetchone()
        if unsettled is not None:
            raise RegisterError(
                "本站从备份恢复后，尚未确认备份之后发出的证书编号，暂停发证以免编号重复："
                "请执行 certkiosk restore-settle --scan <证书输出目录或自动备份目录> "
                "或 --highest-serial 年份:等级:序号（确认备份后未发证则用 --nothing-later）"
            )
        output_path = str(output_dir / f"{record.number}.pdf") if output_dir is not None else None
        parsed = check_number(record.number).parsed()
        if existing[0] is not None:
            raise DuplicateNumber(
                f"证书编号 {record.number} 已在登记库中（状态：{STATUS_TEXT[existing[0]]}"
                + (f"，批次 {existing[1]}" if existing[1] else "")
                + "），不能重复使用"
            )
        now = utc_now()
        cur = db.execute(
            "INSERT INTO certificates (number, filing_number, year, level, serial, origin, status, name, "
            "id_number, record, batch_id, row_key, kid, allocated_at, output_path, record_format) "
            "VALUES (?,?,?,?,?,?,'pending',?,?,?,?,?,?,?,?,?) RETURNING *",
            (
                record.number, parsed.filing_number, parsed.year, parsed.level, parsed.serial, origin,
                record.name, record.id_number, _canonical(record.to_dict()), batch_id, row_key, kid, now,
                output_path, RECORD_FORMAT,
            ),
        )  # fmt: skip
        written = returned_digest("certificates", cur, cur.fetchone())  # the reservation changes other tables
        self._reserve_result(db, record, batch_id, reissue, output_path)
        self._audit(
            db, "certificate.allocate",
            {"number": record.number, "origin": origin, "batch_id": batch_id, "row_key": row_key},
            () if serial_row else (("serials", serial_key),), written | (serial_row or {}),
        )  # fmt: skip

    def complete(
        self,
        number: str,
        *,
        payload_sha256: str,
        output_path: str | None,
        kid: str,
        forms: Sequence[tuple[str, str, str]] = (),
        print_serial: str | None = None,
    ) -> None:
        """Mark a pending number issued, with the hash of its payload and where its PDF went.

        ``forms``: ``(form, output_path, pdf_sha256)`` of each form written for it, recorded (as by
        :meth:`record_form`) in the same transaction: one commit for the certificate, not one more per form;
        ``print_serial``: the blank its paper form is printed on (PrintSerialUsed when another
        certificate already used it: nothing is then committed).
        """
        with self._transaction() as db:
            for form, form_path, pdf_sha256 in forms:
                self._record_form(db, number, form, form_path, pdf_sha256, print_serial if form == "paper" else None)
            cur = db.execute(
                "UPDATE certificates SET status = 'issued', payload_sha256 = ?, output_path = ?, kid = ?, "
                "issued_at = ? WHERE number = ? AND status = 'pending' RETURNING *",
                (payload_sha256, output_path, kid, utc_now(), number),
            )
            issued = cur.fetchone()
            if issued is None:
                row = db.execute("SELECT status FROM certificates WHERE number = ?", (number,)).fetchone()
                state = STATUS_TEXT[row[0]] if row else "不存在"
                raise RegisterError(f"证书编号 {number} 无法完成发证：当前状态为{state}")
            columns = [d[0] for d in cur.description]
            reissued = self._complete_result(db, number, dict(zip(columns, issued, strict=True)))
            self._audit(
                db, "certificate.issue",
                {"number": number, "payload_sha256": payload_sha256, "output_path": output_path, "kid": kid},
                (("certificates", (number,)),) if reissued else (),
                None if reissued else returned_digest("certificates", cur, issued),
            )  # fmt: skip

    def void_pending(
        self, reason: str = "分配后未完成发证（进程中断）", *, batch_id: str | None = None, number: str | None = None
    ) -> list[str]:
        """Mark every pending number (of one batch, one number, or all) void in one transaction."""
        with self._transaction() as db:
            sql = "SELECT number FROM certificates WHERE status = 'pending'"
            args: tuple[str, ...] = ()
            if batch_id is not None:
                sql += " AND batch_id = ?"
                args = (batch_id,)
            if number is not None:
                sql += " AND number = ?"
                args = (*args, number)
            numbers = [n for (n,) in db.execute(sql + " ORDER BY number", args)]
            for number in numbers:
                db.execute(
                    "UPDATE certificates SET status = 'void', void_reason = ? WHERE number = ?", (reason, number)
                )
                self._release_result(db, number)
                self._release_print_serials(db, number)
                self._audit(
                    db, "certificate.void", {"number": number, "reason": reason}, (("certificates", (number,)),)
                )
        return numbers

    # --- after a restore ----------------------------------------------------------------------
    def serials(self) -> dict[tuple[str, int, int], int]:
        """The last serial allocated per (filing number, year, level)."""
        rows = self._db.execute("SELECT filing_number, year, level, last_serial FROM serials")
        return {(f, y, lv): last for f, y, lv, last in rows}

    def raise_serial(self, filing_number: str, year: int, level: int, serial: int, source: str) -> int | None:
        """Move a counter past ``serial`` (a number used elsewhere); returns the old value if moved."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT last_serial FROM serials WHERE filing_number = ? AND year = ? AND level = ?",
                (filing_number, year, level),
            ).fetchone()
            old = row[0] if row else 0
            if serial <= old:
                return None
            db.execute(
                "INSERT INTO serials (filing_number, year, level, last_serial) VALUES (?,?,?,?) "
                "ON CONFLICT (filing_number, year, level) DO UPDATE SET last_serial = excluded.last_serial",
                (filing_number, year, level, serial),
            )
            self._audit(
                db, "serial.raise",
                {"filing_number": filing_number, "year": year, "level": level, "from": old, "to": serial,
                 "source": source},
                (("serials", (filing_number, year, level)),),
            )  # fmt: skip
        return int(old)

    def mark_restored(self, detail: dict[str, Any], *, settled: bool) -> None:
        """Record a restore in the audit log; unless ``settled``, issuing stays refused until
        :meth:`settle` (numbers issued after the backup may not be known yet)."""
        with self._transaction() as db:
            self._audit(db, "station.restore", detail | {"settled": settled})
            if not settled:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('restore_unsettled', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (utc_now(),),
                )

    def settle(self, detail: dict[str, Any]) -> None:
        """Allow issuing again after a restore (the counters have been moved past every number found)."""
        with self._transaction() as db:
            db.execute("DELETE FROM meta WHERE key = 'restore_unsettled'")
            self._audit(db, "station.restore.settle", detail)

    def unsettled(self) -> bool:
        """Whether a restore still waits for the numbers issued after its backup."""
        return self._db.execute("SELECT 1 FROM meta WHERE key = 'restore_unsettled'").fetchone() is not None

    def audit_head(self) -> tuple[int, str]:
        """(sequence, hash) of the last audit entry; (0, GENESIS) when empty."""
        row = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    # --- queries ---------------------------------------------------------------------------
    def _row(self, row: tuple[Any, ...]) -> IssuedCertificate:
        number, status, record, batch, row_key, kid, payload, out, alloc, issued, void, fmt = row
        return IssuedCertificate(
            number, status, _read_record(number, record, fmt), batch, row_key, kid, payload, out, alloc, issued, void
        )  # fmt: skip

    _COLUMNS = (
        "number, status, record, batch_id, row_key, kid, payload_sha256, output_path, allocated_at, "
        "issued_at, void_reason, record_format"
    )

    def get(self, number: str) -> IssuedCertificate | None:
        row = self._db.execute(f"SELECT {self._COLUMNS} FROM certificates WHERE number = ?", (number,)).fetchone()
        return self._row(row) if row else None

    def find(self, text: str, limit: int = 200) -> list[IssuedCertificate]:
        """Certificates whose number, holder's name or ID number contains ``text``."""
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._db.execute(
            f"SELECT {self._COLUMNS} FROM certificates WHERE number LIKE ?1 ESCAPE '\\' "
            "OR name LIKE ?1 ESCAPE '\\' OR id_number LIKE ?1 ESCAPE '\\' ORDER BY number LIMIT ?2",
            (like, limit),
        )
        return [self._row(r) for r in rows]

    def batch(self, batch_id: str) -> list[IssuedCertificate]:
        return list(self.iter_batch(batch_id))

    def iter_batch(self, batch_id: str) -> Iterator[IssuedCertificate]:
        """A batch's certificates in number order, read as they are used (not all held at once)."""
        rows = self._db.execute(
            f"SELECT {self._COLUMNS} FROM certificates WHERE batch_id = ? ORDER BY number", (batch_id,)
        )
        for r in rows:
            yield self._row(r)

    _REPORTED = "batch_id = ? AND status = 'issued' AND output_path IS NOT NULL"
    """Which of a batch's certificates its reports list: issued, with a file. A revoked one too: its
    manifest entry is marked (and keeps its blank used after a restore), and the tables leave it out
    (see :func:`certgen.issuing.reports.BatchReports.add`)."""

    def reported(self, batch_id: str) -> Iterator[IssuedCertificate]:
        """The certificates a batch's reports list (:attr:`_REPORTED`), in number order, read as
        they are used."""
        rows = self._db.execute(
            f"SELECT {self._COLUMNS} FROM certificates WHERE {self._REPORTED} ORDER BY number", (batch_id,)
        )
        for r in rows:
            yield self._row(r)

    def reported_numbers(self, batch_id: str) -> Generator[str, None, None]:
        """The numbers of :meth:`reported`, read as they are used."""
        return (number for number, _ in self.reported_signers(batch_id))

    def reported_signers(self, batch_id: str) -> Generator[tuple[str, str | None], None, None]:
        """``(number, kid)`` of :meth:`reported`, read as they are used: what a revocation is looked
        up by, without parsing each record (~14 us a row)."""
        rows = self._db.execute(
            f"SELECT number, kid FROM certificates WHERE {self._REPORTED} ORDER BY number", (batch_id,)
        )
        return ((str(number), kid) for number, kid in rows)

    def for_row(self, batch_id: str, row_key: str) -> IssuedCertificate | None:
        """The issued certificate of one roster row in a batch, if there is one."""
        row = self._db.execute(
            f"SELECT {self._COLUMNS} FROM certificates WHERE batch_id = ? AND row_key = ? AND status = 'issued'",
            (batch_id, row_key),
        ).fetchone()
        return self._row(row) if row else None

    def counts(self) -> dict[str, int]:
        """How many numbers are in each status."""
        rows = self._db.execute("SELECT status, count(*) FROM certificates GROUP BY status")
        return {"pending": 0, "issued": 0, "void": 0} | dict(rows.fetchall())

    # --- revocations -----------------------------------------------------------------------
    def revoke(self, scope: Scope, target: str, reason: str) -> Revocation:
        """Revoke a certificate, a batch or a key; RegisterError if it does not exist or is revoked."""
        if not reason.strip():
            raise RegisterError("吊销必须填写原因")
        with self._transaction() as db:
            at = self._revoke_in(db, scope, target, reason)
        return self._revocation(scope, target, reason, at)

    def _revoke_in(self, db: sqlite3.Connection, scope: Scope, target: str, reason: str) -> str:
        """Revoke inside an open transaction; returns the revocation time."""
        if scope == "certificate":
            row = db.execute("SELECT status FROM certificates WHERE number = ?", (target,)).fetchone()
            if row is None or row[0] != "issued":
                raise RegisterError(f"证书 {target} 未在本站发证，无法吊销")
        elif scope == "batch":
            if (
                db.execute("SELECT 1 FROM certificates WHERE batch_id = ? AND status = 'issued'", (target,)).fetchone()
                is None
            ):
                raise RegisterError(f"批次 {target} 没有已发证书，无法吊销")
        elif db.execute("SELECT 1 FROM keys WHERE kid = ?", (target,)).fetchone() is None:
            raise RegisterError(f"密钥 {target} 不在本站登记库中")
        if db.execute("SELECT 1 FROM revocations WHERE scope = ? AND target = ?", (scope, target)).fetchone():
            raise RegisterError(f"{SCOPE_TEXT[scope]} {target} 已被吊销")
        at = utc_now()
        db.execute(
            "INSERT INTO revocations (scope, target, reason, revoked_at) VALUES (?,?,?,?)",
            (scope, target, reason, at),
        )
        self._audit(
            db, "revoke", {"scope": scope, "target": target, "reason": reason}, (("revocations", (scope, target)),)
        )
        self._release_revoked(db, scope, target)
        return at

    def _revocation(self, scope: Scope, target: str, reason: str, at: str) -> Revocation:
        numbers: tuple[str, ...] = ()
        if scope == "batch":
            numbers = tuple(
                n for (n,) in self._db.execute(
                    "SELECT number FROM certificates WHERE batch_id = ? AND status = 'issued' ORDER BY number",
                    (target,),
                )
            )  # fmt: skip
        return Revocation(scope, target, reason, at, numbers)

    def revocation_count(self) -> int:
        """How many revocations the register holds."""
        return int(self._db.execute("SELECT count(*) FROM revocations").fetchone()[0])

    def revocations(self) -> list[Revocation]:
        rows = self._db.execute("SELECT scope, target, reason, revoked_at FROM revocations ORDER BY revoked_at")
        return [self._revocation(s, t, r, a) for s, t, r, a in rows.fetchall()]

    # --- integrity -------------------------------------------------------------------------
    def check(self, trusted: dict[str, bytes] | None = None) -> list[str]:
        """Every integrity problem found, in Chinese; an empty list means the register is intact.

        Checks the audit chain (an edited, inserted or deleted entry breaks it), the chain's head,
        that every certificate row matches its audit entries, that allocated serials have no gaps,
        and (``register_proof.check_proof``) that every covered row is the one the chain recorded,
        the latest checkpoint's signature with a ``trusted`` key (kid hex -> raw public key; by
        default the register's own keys table) and its head, and the serial counters.
        """
        problems: list[str] = []
        prev, expected_seq = GENESIS, 1
        rows = self._db.execute("SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit ORDER BY seq")
        allocated: dict[str, dict[str, Any]] = {}
        issued: dict[str, dict[str, Any]] = {}
        voided: set[str] = set()
        raised: dict[tuple[str, int, int], int] = {}
        for seq, at, actor, action, detail, prev_hash, digest in rows:
            if seq != expected_seq:
                problems.append(f"审计日志第{expected_seq}条缺失（下一条为第{seq}条）：记录被删除")
            if prev_hash != prev:
                problems.append(f"审计日志第{seq}条的前序哈希不符：前一条被修改或删除")
            if entry_hash(prev_hash, seq, at, actor, action, detail) != digest:
                problems.append(f"审计日志第{seq}条内容与其哈希不符：记录被修改")
            prev, expected_seq = digest, seq + 1
            try:
                facts = json.loads(detail)
            except json.JSONDecodeError:
                continue
            if action == "certificate.allocate":
                allocated[facts.get("number", "")] = facts
            elif action == "certificate.issue":
                issued[facts.get("number", "")] = facts
            elif action == "certificate.void":
                voided.add(facts.get("number", ""))
            elif action == "serial.raise":
                where = (facts.get("filing_number"), facts.get("year"), facts.get("level"))
                raised[where] = raised.get(where, 0) + int(facts.get("to", 0)) - int(facts.get("from", 0))
        head = self._db.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
        last = f"{expected_seq - 1}:{prev}"
        if (head[0] if head else f"0:{GENESIS}") != last:
            problems.append("审计日志末尾与登记的链头不符：最后的记录被删除或替换")

        seen: set[str] = set()
        rows = self._db.execute("SELECT number, status, payload_sha256, origin FROM certificates ORDER BY number")
        for number, status, payload, _origin in rows:
            seen.add(number)
            if number not in allocated:
                problems.append(f"证书 {number} 没有对应的分配审计记录：可能被插入")
            if status == "issued":
                facts = issued.get(number)
                if facts is None:
                    problems.append(f"证书 {number} 标记为已发证，但审计日志中没有发证记录")
                elif facts.get("payload_sha256") != payload:
                    problems.append(f"证书 {number} 的二维码内容哈希与审计记录不符：记录被修改")
            elif status == "void" and number not in voided:
                problems.append(f"证书 {number} 标记为作废，但审计日志中没有作废记录")
            elif status == "pending" and (number in issued or number in voided):
                problems.append(f"证书 {number} 的状态被改回未完成")
        for number in sorted(set(allocated) - seen):
            problems.append(f"证书 {number} 在审计日志中已分配，但登记库中没有这条记录：记录被删除")

        gaps = self._db.execute(
            "SELECT s.filing_number, s.year, s.level, s.last_serial, count(c.number) FROM serials s "
            "LEFT JOIN certificates c ON c.filing_number = s.filing_number AND c.year = s.year "
            "AND c.level = s.level AND c.origin = 'allocated' "
            "GROUP BY s.filing_number, s.year, s.level"
        ).fetchall()
        for filing, year, level, last, count in gaps:
            supplied = self._db.execute(
                "SELECT count(*) FROM certificates WHERE filing_number = ? AND year = ? AND level = ? "
                "AND origin = 'supplied'",
                (filing, year, level),
            ).fetchone()[0]
            if count + raised.get((filing, year, level), 0) < last and not supplied:
                problems.append(f"机构 {filing} {year}年{level}级：已分配到第{last}号，但只有{count}条记录")
        problems += check_proof(self._db, self._trusted(trusted))
        problems += self._check_results()
        return problems

    # --- signed checkpoints (register_proof) ------------------------------------------------
    def _trusted(self, trusted: dict[str, bytes] | None) -> dict[str, bytes]:
        if trusted is not None:
            return trusted
        rows = self._db.execute("SELECT kid, public_key FROM keys").fetchall()
        return {kid: bytes.fromhex(pub) for kid, pub in rows}

    def latest_checkpoint(self) -> Checkpoint | None:
        """The most recent signed checkpoint, or None."""
        return latest_checkpoint(self._db)

    def sign_head(self, signer: CheckpointSigner) -> Checkpoint | None:
        """Sign the chain's current head now (e.g. after revocations made without the key)."""
        with self._transaction() as db:
            return write_checkpoint(db, signer, utc_now())

    def check_against(self, source: Path, trusted: dict[str, bytes] | None = None) -> list[str]:
        """Problems if this register no longer holds what the checkpoint in ``source`` (a batch
        manifest or a register backup) vouched for; RegisterError if ``source`` has none."""
        try:
            checkpoint = load_checkpoint(source)
        except ValueError as exc:
            raise RegisterError(str(exc)) from None
        return check_against(self._db, checkpoint, self._trusted(trusted))

    # --- results, re-issues, closed batches, publishing (one certificate per person and result) ---
    # A result is a person's identity document + occupation (code, job type) + level
    # (certgen.record.result_key). ``live_results`` maps each result to the one certificate that
    # currently stands for it (pending or issued, not void, not revoked); its primary key makes a
    # second certificate for the same result impossible inside the allocation transaction.
    def _migrate_results(self) -> None:
        """Create this section's tables; fill ``live_results`` once from an older register."""
        db = self._db
        db.executescript(_RESULTS_SCHEMA)
        columns = {r[1] for r in db.execute("PRAGMA table_info(certificates)")}
        if "record_format" not in columns:  # rows written before formats were recorded are format 1
            db.execute("ALTER TABLE certificates ADD COLUMN record_format INTEGER NOT NULL DEFAULT 1")
        if db.execute("SELECT 1 FROM meta WHERE key = 'live_results'").fetchone():
            return
        with self._transaction() as tx:
            if tx.execute("SELECT 1 FROM meta WHERE key = 'live_results'").fetchone():
                return  # another process filled it in meanwhile
            revoked = {
                n for r in self._revocations_in(tx) for n in ((r.target,) if r.scope == "certificate" else r.numbers)
            }
            revoked_kids = {r.target for r in self._revocations_in(tx) if r.scope == "key"}
            rows = tx.execute(
                "SELECT number, record, record_format, kid FROM certificates "
                "WHERE status IN ('pending', 'issued') ORDER BY allocated_at, number"
            ).fetchall()
            for number, text, fmt, kid in rows:
                if number in revoked or kid in revoked_kids:
                    continue
                record = _read_record(number, text, fmt)
                tx.execute(  # an older register may hold duplicates: the first keeps the result
                    "INSERT OR IGNORE INTO live_results (result_key, number, id_key, name) VALUES (?,?,?,?)",
                    (result_key(record), number, id_key(record), record.name),
                )
            tx.execute("INSERT INTO meta (key, value) VALUES ('live_results', '1')")

    def _revocations_in(self, db: sqlite3.Connection) -> list[Revocation]:
        rows = db.execute("SELECT scope, target, reason, revoked_at FROM revocations").fetchall()
        return [self._revocation(s, t, r, a) for s, t, r, a in rows]

    def _check_batch_open(self, db: sqlite3.Connection, batch_id: str | None) -> None:
        if batch_id is None:
            return
        row = db.execute(
            "SELECT reason, revoked_at FROM revocations WHERE scope = 'batch' AND target = ?", (batch_id,)
        ).fetchone()
        if row is not None:
            raise BatchClosed(
                f"批次 {batch_id} 已于 {row[1]} 吊销（{row[0]}），已关闭：不能再向其中发证 / "
                f"batch {batch_id} is revoked and closed"
            )

    def _reserve_result(
        self,
        db: sqlite3.Connection,
        record: CertificateRecord,
        batch_id: str | None,
        reissue: Reissue | None,
        output_path: str | None,
    ) -> None:
        """Inside the allocation transaction: refuse a closed batch, a second live certificate for
        the result and a second name for the document; reserve the result; note the file to publish."""
        assert record.number is not None
        self._check_batch_open(db, batch_id)
        key, person = result_key(record), id_key(record)
        replaced: str | None = None
        if reissue is not None:
            replaced = reissue.replaces
            old = db.execute("SELECT result_key FROM live_results WHERE number = ?", (reissue.replaces,)).fetchone()
            if old is None:
                raise RegisterError(
                    f"证书 {reissue.replaces} 不是本站在册的有效证书（未发证、已作废、已吊销或已被补发/换发），"
                    "不能补发或换发"
                )
            if reissue.reason == "lost" and old[0] != key:
                raise RegisterError("补发（遗失）只能按原证书内容重新发证；更正内容请用换发（--reason correction）")
            db.execute(
                "INSERT INTO reissues (number, replaces, reason, at) VALUES (?,?,?,?)",
                (record.number, reissue.replaces, reissue.reason, utc_now()),
            )
            self._audit(
                db, "certificate.reissue",
                {"number": record.number, "replaces": reissue.replaces, "reason": reissue.reason},
                (("reissues", (record.number,)),),
            )  # fmt: skip
        live = db.execute(  # one read: the person's live results (names) and this result's holder
            "SELECT name, number, id_key, result_key FROM live_results WHERE id_key = ? OR result_key = ?",
            (person, key),
        ).fetchall()
        for name, number, holder, _ in live:
            if holder == person and number is not None and number != replaced and name != record.name:
                raise NameMismatch(
                    f"证件号码 {record.id_number} 在登记库中的姓名为「{name}」（证书 {number}），"
                    f"与「{record.name}」不符：同一证件不能对应两个姓名"
                )
        existing = next(((number,) for _, number, _, held in live if held == key), None)
        if existing is not None and existing[0] != replaced:
            raise DuplicateResult(
                f"{record.name}（{record.id_number}）的{record.occupation}{record.level_text}已有有效证书 "
                f"{existing[0]}，不再重复发证（遗失补发、更正换发请用 certkiosk reissue）",
                existing[0],
            )
        if existing is None:
            db.execute(
                "INSERT INTO live_results (result_key, number, id_key, name) VALUES (?,?,?,?)",
                (key, record.number, person, record.name),
            )
        if output_path is not None:
            db.execute("INSERT INTO unpublished (number, path) VALUES (?,?)", (record.number, output_path))

    def _complete_result(self, db: sqlite3.Connection, number: str, issued: dict[str, Any]) -> bool:
        """Inside the transaction that marks ``number`` issued (``issued``: its row as the update
        returned it, by column): the batch must still be open; a re-issue takes over its result and,
        for a correction, revokes the certificate it replaces. True for a re-issue (it changes more
        rows: its own row's digest is then read again after them)."""
        self._check_batch_open(db, issued["batch_id"])
        link = db.execute("SELECT replaces, reason FROM reissues WHERE number = ?", (number,)).fetchone()
        if link is None:
            return False
        replaces, reason = link
        record = _read_record(number, issued["record"], issued["record_format"])
        key = result_key(record)
        old = db.execute("SELECT result_key FROM live_results WHERE number = ?", (replaces,)).fetchone()
        if old is None:
            raise RegisterError(f"证书 {replaces} 已不是有效证书（在此期间被吊销或已被补发/换发），补发/换发中止")
        if old[0] == key:
            db.execute("UPDATE live_results SET number = ?, name = ? WHERE result_key = ?", (number, record.name, key))
        else:
            db.execute("DELETE FROM live_results WHERE number = ?", (replaces,))
        if reason == "correction":
            self._revoke_in(db, "certificate", replaces, f"换发：已由证书 {number} 替代（更正内容）")
        return True

    def _release_result(self, db: sqlite3.Connection, number: str) -> None:
        """A voided number gives its result back (a re-issue's old certificate keeps its own)."""
        db.execute("DELETE FROM live_results WHERE number = ?", (number,))

    def _release_revoked(self, db: sqlite3.Connection, scope: Scope, target: str) -> None:
        """Revoked certificates no longer stand for their results (the person may be issued again)."""
        if scope == "certificate":
            db.execute("DELETE FROM live_results WHERE number = ?", (target,))
        else:
            column = "batch_id" if scope == "batch" else "kid"
            db.execute(
                f"DELETE FROM live_results WHERE number IN (SELECT number FROM certificates WHERE {column} = ?)",
                (target,),
            )

    def live_certificate(self, record: CertificateRecord) -> IssuedCertificate | None:
        """The live (pending or issued, not revoked) certificate for the record's result, if any."""
        row = self._db.execute("SELECT number FROM live_results WHERE result_key = ?", (result_key(record),)).fetchone()
        return self.get(row[0]) if row else None

    def live_names(self, record: CertificateRecord) -> list[tuple[str, str]]:
        """``(name, number)`` of the live certificates of the record's identity document under another name."""
        rows = self._db.execute(
            "SELECT name, number FROM live_results WHERE id_key = ? AND name != ? ORDER BY number",
            (id_key(record), record.name),
        )
        return [(name, number) for name, number in rows]

    def batch_revocation(self, batch_id: str) -> Revocation | None:
        """The revocation that closed the batch, or None while it is open."""
        row = self._db.execute(
            "SELECT reason, revoked_at FROM revocations WHERE scope = 'batch' AND target = ?", (batch_id,)
        ).fetchone()
        return self._revocation("batch", batch_id, row[0], row[1]) if row else None

    def reissue_links(self, number: str) -> list[ReissueLink]:
        """The re-issue links that involve ``number`` (it replaced, or was replaced by, another)."""
        rows = self._db.execute(
            "SELECT number, replaces, reason, at FROM reissues WHERE number = ?1 OR replaces = ?1 ORDER BY at",
            (number,),
        )
        return [ReissueLink(n, r, reason, at) for n, r, reason, at in rows]

    def output_folders(self) -> list[Path]:
        """Every folder the register has published (or meant to publish) a certificate PDF in."""
        rows = self._db.execute("SELECT DISTINCT output_path FROM certificates WHERE output_path IS NOT NULL")
        return sorted({Path(p).parent for (p,) in rows})

    def unpublished(self) -> list[tuple[str, str]]:
        """``(number, final path)`` of every PDF allocated for publishing and not yet confirmed."""
        return list(self._db.execute("SELECT number, path FROM unpublished ORDER BY number"))

    def unpublished_files(self, *, after: str = "", limit: int = -1) -> list[tuple[str, bool, list[str]]]:
        """A page of :meth:`unpublished` as the end of a run settles it, in one read: each entry's
        number, whether it is issued, and its files (each form's recorded path; the entry's own
        path for a number without recorded forms)."""
        query = (
            "SELECT u.number, u.path, c.status IS 'issued', (SELECT json_group_array(f.output_path) "
            "FROM certificate_forms f WHERE f.number = u.number AND f.output_path IS NOT NULL) "
            "FROM unpublished u LEFT JOIN certificates c USING (number) WHERE u.number > ? ORDER BY u.number LIMIT ?"
        )
        return [
            (number, bool(issued), json.loads(paths) or [path])
            for number, path, issued, paths in self._db.execute(query, (after, limit))
        ]

    def republishing(self, number: str, path: str) -> None:
        """Note that an issued number's form is being made again (a reprint) before its temporary
        file is written, so that recovery finishes or removes it after a crash (publish protocol)."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO unpublished (number, path) VALUES (?,?)", (number, path))

    def settle_published(self, numbers: list[str]) -> None:
        """Forget the publishing entries of these numbers (their files are settled).

        Not fsync'd itself: an entry a power cut brings back is settled again by recovery (its
        number issued, its file in place), so the end of every run saves one fsync."""
        with self._transaction(durable=False) as db:
            db.executemany("DELETE FROM unpublished WHERE number = ?", [(n,) for n in numbers])

    def revoke_unissued(self, number: str, reason: str) -> Revocation:
        """Revoke a number that is not issued but whose signed PDF was found published.

        Such a number was signed into a file that may have left the station: it must be
        revoked (so verifiers learn of it), never left silently void.
        """
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM revocations WHERE scope = 'certificate' AND target = ?", (number,)).fetchone():
                row = db.execute(
                    "SELECT reason, revoked_at FROM revocations WHERE scope = 'certificate' AND target = ?", (number,)
                ).fetchone()
                return Revocation("certificate", number, row[0], row[1])
            at = utc_now()
            db.execute(
                "INSERT INTO revocations (scope, target, reason, revoked_at) VALUES ('certificate',?,?,?)",
                (number, reason, at),
            )
            self._audit(
                db,
                "revoke",
                {"scope": "certificate", "target": number, "reason": reason},
                (("revocations", ("certificate", number)),),
            )
        return Revocation("certificate", number, reason, at)

    def _check_results(self) -> list[str]:
        """Every result with more than one live certificate (older registers, edits)."""
        revocations = self.revocations()
        revoked = {r.target for r in revocations if r.scope == "certificate"}
        revoked |= {n for r in revocations if r.scope == "batch" for n in r.numbers}
        revoked_kids = {r.target for r in revocations if r.scope == "key"}
        replaced = {r for (r,) in self._db.execute(
            "SELECT replaces FROM reissues r JOIN certificates c ON c.number = r.number WHERE c.status = 'issued'"
        )}  # fmt: skip
        by_result: dict[str, list[str]] = {}
        rows = self._db.execute(
            "SELECT number, record, record_format, kid FROM certificates WHERE status = 'issued' ORDER BY number"
        )
        for number, text, fmt, kid in rows:
            if number in revoked or number in replaced or kid in revoked_kids:
                continue
            by_result.setdefault(result_key(_read_record(number, text, fmt)), []).append(number)
        return [
            f"同一人同一职业等级有{len(numbers)}张有效证书：{'、'.join(numbers)}"
            for numbers in by_result.values()
            if len(numbers) > 1
        ]


_RESULTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS live_results (
    result_key TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE REFERENCES certificates(number),
    id_key TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS live_results_person ON live_results (id_key);
CREATE TABLE IF NOT EXISTS reissues (
    number TEXT PRIMARY KEY REFERENCES certificates(number),
    replaces TEXT NOT NULL REFERENCES certificates(number),
    reason TEXT NOT NULL CHECK (reason IN ('lost', 'correction')),
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reissues_replaces ON reissues (replaces);
CREATE TABLE IF NOT EXISTS unpublished (
    number TEXT PRIMARY KEY REFERENCES certificates(number),
    path TEXT NOT NULL
);
"""
"""Tables of the one-certificate-per-result rule, re-issue links and the publishing protocol."""

_BLANK_OWNER = (
    "SELECT number FROM print_serials WHERE replace(serial, '-', '') = replace(?1, '-', '') "
    "UNION ALL SELECT number FROM blanks_used_elsewhere WHERE blank = replace(?1, '-', '') LIMIT 1"
)
"""Who used a blank: hyphens only group a serial's characters (LN2021-0001 is LN20210001). A blank
used after the backup a register was restored from counts too (:meth:`Register.note_blanks_used`)."""

ReissueReason = Literal["lost", "correction"]
REISSUE_TEXT: dict[str, str] = {"lost": "补发（遗失）", "correction": "换发（更正）"}
"""Chinese names of the re-issue reasons."""


@dataclass(frozen=True)
class Reissue:
    """A deliberate re-issue of a live certificate (补发 / 换发)."""

    replaces: str
    """The number of the certificate re-issued."""
    reason: ReissueReason
    """``lost`` (补发: the old one stays valid) or ``correction`` (换发: the old one is revoked)."""


@dataclass(frozen=True)
class ReissueLink:
    """One re-issue as the register records it."""

    number: str
    """The new certificate's number."""
    replaces: str
    """The number it re-issued."""
    reason: ReissueReason
    """``lost`` or ``correction``."""
    at: str
    """When it was allocated (UTC)."""


def _read_record(number: str, text: str, record_format: int) -> CertificateRecord:
    """A stored record as written (not re-validated against today's rules)."""
    try:
        return stored_record(json.loads(text), record_format)
    except (ValueError, KeyError, TypeError) as exc:
        raise RegisterError(f"登记库中证书 {number} 的记录无法读取（记录格式 {record_format}）：{exc}") from None


STATUS_TEXT: dict[str, str] = {"pending": "已分配未完成", "issued": "已发证", "void": "已作废"}
"""Chinese names of a number's states in the register."""
