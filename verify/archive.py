"""Re-verify whole archives: folders and ZIP files, in parallel, resumably, with a report.

Every input the user names, and every file inside it, ends as a result (verified, or unreadable
with the reason) or as a skipped entry with the reason: nothing is left out without a word.

Resuming keeps *facts about bytes*, never verdicts: each file or ZIP member is read (within the
limits) and hashed with SHA-256 while it is read; when the state file already holds the decoding
facts of exactly these bytes (QR texts, the PDF's embedded record and printed fields), decoding is
skipped. The checks that depend on the trust store (signature, key validity, revocation) and the
comparisons run again on every run. See docs/verify.md.

Memory does not grow with the archive: the inputs are listed lazily (one folder's entries or one
ZIP's directory at a time), a bounded number of work units is in flight, and each result is stored
as it arrives in the state file's results table (one run's rows, sealed with a key held only in
this process). After all files, the checks no single scan can do run as SQL over that table: one
certificate number on two different payloads (DUPLICATE_NUMBER) and one payload on two files
(reported as a copy, not an error). :class:`ArchiveRun` streams the results back in input order.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import os
import pickle
import secrets
import sqlite3
import stat
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Container, Generator, Iterator, Sequence
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, overload

from certgen.bounded import kind_of, read_regular, read_stream
from certgen.cells import shown
from certgen.exceptions import ArchiveStateError, DiskFull, InputRefused
from certgen.files import is_disk_full
from certgen.number import ProvinceProfile
from certgen.trust import TrustBundle
from verify.executors import Executor, LocalExecutor
from verify.files import (
    DEFAULT_LIMITS,
    FACTS_VERSION,
    IMAGE_SUFFIXES,
    PDF_SUFFIXES,
    Facts,
    Limits,
    examine_bytes,
    results_from_facts,
)
from verify.reasons import Reason
from verify.scan import Decoder
from verify.status import VerificationStatus
from verify.units import make_context, make_units

Progress = Callable[[int, int], None]
"""Called as files finish with (done, total)."""


@dataclass(frozen=True)
class Item:
    """One file to verify: a path, or a member of a ZIP archive (a picklable descriptor)."""

    source: str
    """How results and reports name it (escaped for terminals; ``name#2`` for a repeated member)."""
    path: str
    """The file, or the ZIP archive (the name as the file system has it)."""
    member: int | None = None
    """The member's index in the archive's central directory (names may repeat)."""
    member_name: str | None = None
    """The member's name, to check the index still points at it."""


@dataclass(frozen=True)
class Skipped:
    """An entry that was deliberately not verified, and why."""

    source: str
    """What it is (escaped)."""
    reason: str
    """Why it was not verified, in Chinese."""


@dataclass(frozen=True)
class Examined:
    """What a worker found for one item: the content hash and the facts, or why it was not read."""

    item: Item
    """The item."""
    sha256: str | None = None
    """SHA-256 of the bytes read (None when they could not be read)."""
    facts: Facts | None = None
    """What decoding found (None when the bytes could not be read)."""
    reused: bool = False
    """Whether the facts came from the state file (same bytes decoded in an earlier run)."""
    error: str | None = None
    """Why the item could not be read or decoded."""
    keep: bool = True
    """Whether the facts may be stored for later runs (not after an unexpected error)."""


def _wanted(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES | PDF_SUFFIXES


def _hidden_reason(name: str) -> str | None:
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if any(p == "__MACOSX" for p in parts):
        return "macOS 压缩时附带的资源数据（__MACOSX），不是证书文件"
    if any(p.startswith(".") for p in parts):
        return "隐藏文件（名称以“.”开头），未核验；如需核验请改名"
    return None


# --- discovery ---------------------------------------------------------------------------------
Listed = Item | VerificationStatus | Skipped
"""What the listing yields: an item to verify, a result for an input that holds none, or a skipped entry."""


@dataclass
class Found:
    """The whole listing in memory (small inputs and tests; a run lists lazily with :func:`listing`)."""

    items: list[Item]
    problems: list[VerificationStatus]
    skipped: list[Skipped]


def _problem(source: str, reason: Reason, why: str) -> VerificationStatus:
    return VerificationStatus(source=source).with_finding(reason, why)


def _zip_items(path: Path, limits: Limits) -> Generator[Listed, None, int]:
    """The members of one ZIP (its central directory is read at once: one ZIP, not the archive);
    returns how many are to be verified."""
    source = shown(str(path))
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        yield _problem(source, Reason.UNREADABLE_FILE, f"ZIP文件损坏或无法读取：{exc}")
        return 0
    seen: Counter[str] = Counter()
    count = 0
    for index, info in enumerate(infos):
        name = info.filename
        seen[name] += 1
        shown_name = shown(name) + (f"#{seen[name]}" if seen[name] > 1 else "")
        where = f"{source}!{shown_name}"
        if info.is_dir():
            continue
        hidden = _hidden_reason(name)
        if hidden:
            yield Skipped(where, hidden)
        elif name.lower().endswith(".zip"):
            yield Skipped(where, "ZIP 中的 ZIP 不展开；请先解压再核验")
        elif not _wanted(name):
            yield Skipped(where, "既非图片也非PDF")
        else:
            yield Item(where, str(path), index, name)
            count += 1
    if seen and not count:
        yield _problem(
            source, Reason.NO_QR, f"ZIP中没有可核验的图片或PDF（{sum(seen.values())} 个成员均已跳过，原因见跳过清单）"
        )  # fmt: skip
    elif not seen:
        yield _problem(source, Reason.NO_QR, "ZIP文件为空")
    return count


def _is_zip_name(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


def _walk(folder: Path, limits: Limits, skipped: list[int]) -> Generator[Listed, None, int]:
    """Everything under ``folder`` (one folder's entries at a time, sorted by name); returns how
    many items are to be verified and counts skipped entries in ``skipped[0]``."""
    count = 0
    try:
        names = sorted(os.listdir(folder))  # names only: a large flat folder costs ~70 bytes a file here
    except OSError as exc:
        yield _problem(shown(str(folder)), Reason.UNREADABLE_FILE, f"无法读取文件夹：{exc.strerror or exc}")
        return 0
    for name in names:
        full = os.path.join(folder, name)
        path = Path(full)
        source = shown(full)
        if name.startswith("."):
            skipped[0] += 1
            yield Skipped(source, "隐藏文件或文件夹（名称以“.”开头），未核验；如需核验请改名")
            continue
        try:
            st = os.stat(full)
        except OSError as exc:
            yield _problem(source, Reason.UNREADABLE_FILE, f"无法读取：{exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            if os.path.islink(full):
                skipped[0] += 1
                yield Skipped(source, "指向文件夹的符号链接，未跟随（避免重复与循环）")
            else:
                count += yield from _walk(path, limits, skipped)
            continue
        kind = kind_of(st.st_mode)
        if kind is not None:
            skipped[0] += 1
            yield Skipped(source, f"{kind}，不是普通文件：未打开")
        elif _is_zip_name(path):
            for listed in _zip_items(path, limits):
                skipped[0] += isinstance(listed, Skipped)
                yield listed
                count += isinstance(listed, Item)
        elif _wanted(name):
            yield Item(source, full)
            count += 1
        else:
            skipped[0] += 1
            yield Skipped(source, "既非图片也非PDF")
    return count


def listing(paths: list[Path], limits: Limits = DEFAULT_LIMITS) -> Iterator[Listed]:
    """The files to verify, results for inputs that hold none (missing, empty, unreadable, not a
    file), and every entry skipped with its reason, lazily, in a stable order: only one folder's
    entries (or one ZIP's directory) are held at a time, whatever the archive's size."""
    for path in paths:
        source = shown(str(path))
        try:
            st = path.stat()
        except OSError as exc:
            why = "文件或文件夹不存在" if isinstance(exc, FileNotFoundError) else f"无法读取：{exc.strerror or exc}"
            yield _problem(source, Reason.UNREADABLE_FILE, why)
            continue
        if stat.S_ISDIR(st.st_mode):
            skipped = [0]
            if not (yield from _walk(path, limits, skipped)):
                why = (
                    f"文件夹中没有可核验的图片或PDF文件（跳过 {skipped[0]} 项，原因见跳过清单）"
                    if skipped[0]
                    else "文件夹为空，没有可核验的文件"
                )
                yield _problem(source, Reason.NO_QR, why)
        elif kind_of(st.st_mode) is not None:
            yield _problem(source, Reason.UNREADABLE_FILE, f"是{kind_of(st.st_mode)}，不是普通文件：未打开")
        elif _is_zip_name(path) and zipfile.is_zipfile(path):
            yield from _zip_items(path, limits)
        else:
            yield Item(source, str(path))


def discover(paths: list[Path], limits: Limits = DEFAULT_LIMITS) -> Found:
    """The whole :func:`listing` in memory, sorted by kind (for small inputs and tests)."""
    found = Found([], [], [])
    for listed in listing(paths, limits):
        if isinstance(listed, Item):
            found.items.append(listed)
        elif isinstance(listed, Skipped):
            found.skipped.append(listed)
        else:
            found.problems.append(listed)
    return found


# --- one item, in a worker process or inline (pure: descriptor + settings -> facts) -------------
def _read(item: Item, limits: Limits, hasher: Any) -> bytes:
    if item.member is None:
        return read_regular(Path(item.path), limits.max_file_bytes, hasher)
    with zipfile.ZipFile(item.path) as archive:
        infos = archive.infolist()
        if item.member >= len(infos) or infos[item.member].filename != item.member_name:
            raise InputRefused("ZIP文件在核验期间被改动：成员已不在原位置")
        info = infos[item.member]
        if info.file_size > limits.max_file_bytes:
            raise InputRefused(f"ZIP成员过大：{info.file_size} 字节，上限 {limits.max_file_bytes} 字节，未解压")
        if info.flag_bits & 0x1:
            raise InputRefused("ZIP成员已加密，无法读取")
        with archive.open(info) as stream:  # the declared size is not trusted: the limit holds while reading
            return read_stream(stream, limits.max_file_bytes, "ZIP成员", hasher)


def examine_item(
    item: Item,
    limits: Limits = DEFAULT_LIMITS,
    decoder: Decoder = "zxing",
    cache: str | None = None,
    known: Container[str] = (),
) -> Examined:
    """Read one item within the limits, hash it, and decode it unless ``cache`` (a state file)
    already holds the facts of these exact bytes, or the client has them (``known`` hashes: the
    result then carries no facts and the client reads them from its own state). Never raises for a
    bad input."""
    hasher = hashlib.sha256()
    try:
        data = _read(item, limits, hasher)
    except InputRefused as exc:
        return Examined(item, error=str(exc))
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError,
            zlib.error, ValueError) as exc:  # fmt: skip
        return Examined(item, error=f"无法读取：{shown(str(exc))}")
    sha = hasher.hexdigest()
    if sha in known:
        return Examined(item, sha, None, reused=True)
    if cache is not None:
        facts = State.lookup(cache, sha, decoder, limits)
        if facts is not None:
            return Examined(item, sha, facts, reused=True)
    try:
        return Examined(item, sha, examine_bytes(data, limits, decoder))
    except MemoryError:
        return Examined(item, sha, error="处理时内存不足（超出每个核验进程的上限）", keep=False)
    except Exception as exc:  # one bad file must never stop the others
        return Examined(item, sha, error=f"处理时出错：{type(exc).__name__}: {shown(str(exc))}", keep=False)


# --- state -------------------------------------------------------------------------------------
SCHEMA_VERSION = 3
"""Version 1 stored pickled verdicts keyed by path and mtime, version 2 had no results table:
neither is read (discarded)."""
COMMIT_EVERY = 1.0
"""Seconds between commits of the state file during a run (also at its end, and when interrupted)."""
PROBLEM, ITEM = 0, 1
"""Kinds of result rows: inputs that hold nothing to verify come first, then the files in listing order."""


def _extractor(decoder: Decoder, limits: Limits) -> str:
    """What produced facts: the same bytes under another decoder or limits are examined again."""
    return json.dumps([FACTS_VERSION, decoder, limits.__dict__], sort_keys=True)


def _seal(key: bytes, run: int, kind: int, position: int, sub: int, columns: tuple[Any, ...], data: bytes) -> bytes:
    """The row's MAC under the run's key: only rows this run wrote are ever unpickled or reported."""
    head = json.dumps([run, kind, position, sub, *columns], ensure_ascii=False).encode()
    return hmac.new(key, head + b"\0" + data, hashlib.sha256).digest()


def _categories(result: VerificationStatus) -> Iterator[str]:
    """Which of REPORTED's selections a result belongs to."""
    yield "all"
    if not result.valid:
        yield "not_valid"
    if result.notes:
        yield "noted"
    if result.valid and result.trust_stale:
        yield "stale"
    if not result.valid or result.trust_stale:
        yield "reported"


@dataclass
class Tally:
    """What one run stored, counted in memory as it is stored (a few numbers whatever the archive's
    size): the totals and the length of each selection come from here, not from the file, and a
    selection read back must have exactly as many rows (none hidden, none added)."""

    rows: Counter[str] = field(default_factory=Counter)
    """Results by REPORTED's selection, by ``status:<verdict>``; and ``skipped`` entries."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Findings by reason code."""

    def add(self, result: VerificationStatus, sign: int = 1) -> None:
        for which in _categories(result):
            self.rows[which] += sign
        self.rows[f"status:{result.status}"] += sign
        for finding in result.findings:
            self.reasons[finding.reason.value] += sign


def _connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


class State:
    """One set of inputs' state file (SQLite): facts about bytes kept across runs, keyed by SHA-256
    (JSON, versioned), and the current run's results, keyed by run and input position.

    Results are never carried from one run to the next: each run deletes the rows of earlier runs,
    writes its own under its own id and seals each with a key that exists only in this process's
    memory (:class:`ArchiveRun` holds it), so rows left by an interrupted run, or edited in the file,
    never count.
    """

    def __init__(self, path: Path, *, force: bool = False) -> None:
        self.path = path
        self.tally = Tally()
        """What this run stored (see :class:`Tally`)."""
        self._committed = time.monotonic()
        with self._guard():
            path.parent.mkdir(parents=True, exist_ok=True)
            if force:
                path.unlink(missing_ok=True)
            self.db = self._open(path)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """A full disk under the state file is reported as such (DiskFull), naming the file."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            if is_disk_full(exc, self.path):
                raise DiskFull(self.path) from None
            raise

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = None
            if "schema_version" in tables:
                row = db.execute("SELECT version FROM schema_version").fetchone()
                version = row[0] if row else None
            if tables and version != SCHEMA_VERSION:  # an older (or unknown) format: start afresh
                db.close()
                path.unlink()
                db = sqlite3.connect(path)
        except sqlite3.DatabaseError:  # not a database at all
            db.close()
            path.unlink()
            db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # a cache and this run's results: no fsync per commit
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            if db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0:
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS facts (sha256 TEXT NOT NULL, extractor TEXT NOT NULL, "
                "facts TEXT NOT NULL, run INTEGER NOT NULL, PRIMARY KEY (sha256, extractor))"
            )
            db.execute("CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS results (run INTEGER NOT NULL, kind INTEGER NOT NULL, "
                "position INTEGER NOT NULL, sub INTEGER NOT NULL, status TEXT NOT NULL, reasons TEXT NOT NULL, "
                "noted INTEGER NOT NULL, stale INTEGER NOT NULL, number TEXT, content TEXT, payload TEXT, "
                "place TEXT NOT NULL, data BLOB NOT NULL, mac BLOB NOT NULL, "
                "PRIMARY KEY (run, kind, position, sub))"  # rows of ~1 KB: a rowid table packs them (~5x smaller)
            )
            db.execute("CREATE INDEX IF NOT EXISTS results_number ON results (run, number) WHERE number IS NOT NULL")
            db.execute("CREATE INDEX IF NOT EXISTS results_payload ON results (run, payload) WHERE payload IS NOT NULL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS units (run INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (run, id)) "
                "WITHOUT ROWID"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS skipped (run INTEGER NOT NULL, seq INTEGER NOT NULL, source TEXT NOT NULL, "
                "reason TEXT NOT NULL, PRIMARY KEY (run, seq)) WITHOUT ROWID"
            )
        return db

    @staticmethod
    def lookup(path: str, sha256: str, decoder: Decoder, limits: Limits) -> Facts | None:
        """The stored facts of these bytes (read-only; safe from a worker process)."""
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                row = db.execute(
                    "SELECT facts FROM facts WHERE sha256 = ? AND extractor = ?", (sha256, _extractor(decoder, limits))
                ).fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            return None
        if row is None:
            return None
        facts: Facts = json.loads(row[0])
        return facts

    def facts(self, sha256: str, decoder: Decoder, limits: Limits) -> tuple[Facts | None, int | None]:
        """The stored facts of these bytes and the run that decoded them (this process's connection)."""
        row = self.db.execute(
            "SELECT facts, run FROM facts WHERE sha256 = ? AND extractor = ?", (sha256, _extractor(decoder, limits))
        ).fetchone()
        return (json.loads(row[0]), int(row[1])) if row else (None, None)

    def previous_interrupted(self) -> bool:
        """Whether the last run on this state file started and never finished."""
        row = self.db.execute("SELECT finished FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return row is not None and row[0] is None

    def begin(self) -> int:
        """A new run: every result row in the file (an earlier run's, finished or not, or rows put
        there under the id this run is about to get) is deleted, never read."""
        with self._guard(), self.db:
            run = int(self.db.execute("INSERT INTO runs (started) VALUES (?)", (_now(),)).lastrowid or 0)
            for table in ("results", "units", "skipped"):  # rows under the new id too: none is this run's yet
                self.db.execute(f"DELETE FROM {table}")  # fixed table names
            self.db.execute("DELETE FROM runs WHERE id != ?", (run,))
        return run

    def finish(self, run: int) -> None:
        with self._guard(), self.db:
            self.db.execute("UPDATE runs SET finished = ? WHERE id = ?", (_now(), run))

    def known(self, decoder: Decoder, limits: Limits) -> frozenset[str]:
        """The content hashes whose facts this state holds (for workers that cannot read it)."""
        rows = self.db.execute("SELECT sha256 FROM facts WHERE extractor = ?", (_extractor(decoder, limits),))
        return frozenset(row[0] for row in rows)

    def put(self, sha256: str, decoder: Decoder, limits: Limits, facts: Facts, run: int = 0) -> None:
        with self._guard():
            self.db.execute(
                "INSERT OR REPLACE INTO facts (sha256, extractor, facts, run) VALUES (?,?,?,?)",
                (sha256, _extractor(decoder, limits), json.dumps(facts, ensure_ascii=False), run),
            )

    def unit_done(self, run: int, unit: int) -> bool:
        """Record a unit as finished; False when it already was (a redone unit counts once)."""
        with self._guard():
            return self.db.execute("INSERT OR IGNORE INTO units VALUES (?, ?)", (run, unit)).rowcount == 1

    def put_skipped(self, run: int, seq: int, skipped: Skipped) -> None:
        with self._guard():
            self.db.execute("INSERT INTO skipped VALUES (?,?,?,?)", (run, seq, skipped.source, skipped.reason))
        self.tally.rows["skipped"] += 1

    def put_result(self, key: bytes, run: int, kind: int, position: int, sub: int, result: VerificationStatus) -> None:
        """Store one result (sealed with the run's key), with what the archive-wide checks compare."""
        checked = result.claims is not None and result.intact and result.payload_sha256
        number = result.claims.number if checked and result.claims else None
        content = hashlib.sha256(_content(result).encode()).hexdigest() if checked else None
        self._write(key, run, kind, position, sub, result, number, content, result.payload_sha256 if checked else None)

    def _write(
        self, key: bytes, run: int, kind: int, position: int, sub: int, result: VerificationStatus,
        number: str | None, content: str | None, payload: str | None, *, replacing: VerificationStatus | None = None,
    ) -> None:  # fmt: skip
        columns = (
            result.status, json.dumps([f.reason.value for f in result.findings]), int(bool(result.notes)),
            int(result.valid and result.trust_stale),
        )  # fmt: skip
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        mac = _seal(key, run, kind, position, sub, columns, data)
        with self._guard():
            if replacing is not None:
                self.db.execute(
                    "UPDATE results SET status = ?, reasons = ?, noted = ?, stale = ?, data = ?, mac = ? "
                    "WHERE run = ? AND kind = ? AND position = ? AND sub = ?",
                    (*columns, data, mac, run, kind, position, sub),
                )
            else:
                self.db.execute(
                    "INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (run, kind, position, sub, *columns, number, content, payload, _place(result), data, mac),
                )
        if replacing is not None:
            self.tally.add(replacing, -1)
        self.tally.add(result)

    def check_archive(self, key: bytes, run: int) -> None:
        """The checks no single scan can do, as SQL over this run's results.

        DUPLICATE_NUMBER for one number on different contents; a note on every copy of one payload
        after its first (in input order). The paper and electronic forms of one certificate share its
        number and differ only in their form claim: they are one certificate, not a duplicate number
        (the content compared leaves the form out, see :func:`_content`).
        """
        with self._guard():
            for table, columns in (
                ("numbers", "number TEXT PRIMARY KEY, contents INTEGER"),  # numbers on several contents
                ("firsts", "payload TEXT PRIMARY KEY, place TEXT, copies INTEGER"),  # payloads on several files
                ("amend", "kind INTEGER, position INTEGER, sub INTEGER, others INTEGER, first TEXT, "
                 "PRIMARY KEY (kind, position, sub)"),
            ):  # fmt: skip
                self.db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns})")  # fixed names
                self.db.execute(f"DELETE FROM {table}")
            self.db.execute(
                "INSERT INTO numbers SELECT number, COUNT(DISTINCT content) AS contents FROM results "
                "WHERE run = ? AND number IS NOT NULL GROUP BY number HAVING contents > 1",
                (run,),
            )
            self.db.execute(
                """INSERT INTO firsts SELECT payload, place, copies FROM (
                       SELECT payload, place, COUNT(*) OVER (PARTITION BY payload) AS copies,
                              ROW_NUMBER() OVER (PARTITION BY payload ORDER BY kind, position, sub) AS rank
                       FROM results WHERE run = ? AND payload IS NOT NULL)
                   WHERE rank = 1 AND copies > 1""",
                (run,),
            )
            self.db.execute(  # indexed joins: the cost grows as n log n with the archive
                """INSERT INTO amend
                SELECT r.kind, r.position, r.sub, COALESCE(n.contents - 1, 0),
                       CASE WHEN f.place != r.place THEN f.place END
                FROM results r LEFT JOIN numbers n ON n.number = r.number LEFT JOIN firsts f ON f.payload = r.payload
                WHERE r.run = ? AND r.payload IS NOT NULL AND (n.contents IS NOT NULL OR f.place != r.place)""",
                (run,),
            )
            after = (-1, -1, -1)
            while True:  # a page at a time: the rows read are not the rows being rewritten
                page = self.db.execute(
                    "SELECT a.kind, a.position, a.sub, a.others, a.first, r.status, r.reasons, r.noted, r.stale, "
                    "r.data, r.mac FROM amend a JOIN results r ON r.run = ? AND r.kind = a.kind "
                    "AND r.position = a.position AND r.sub = a.sub WHERE (a.kind, a.position, a.sub) > (?, ?, ?) "
                    "ORDER BY a.kind, a.position, a.sub LIMIT 256",
                    (run, *after),
                ).fetchall()
                if not page:
                    break
                for kind, position, sub, others, first, *sealed in page:
                    stored = r = _unseal(self.path, key, run, kind, position, sub, sealed)
                    if others:
                        assert r.claims is not None
                        r = r.with_finding(
                            Reason.DUPLICATE_NUMBER, f"证书编号 {r.claims.number} 还出现在{others}份内容不同的证书上"
                        )
                    if first is not None:
                        r = replace(r, notes=(*r.notes, f"与 {first} 内容相同（副本）"))
                    self._write(key, run, kind, position, sub, r, None, None, None, replacing=stored)
                after = tuple(page[-1][:3])
            for table in ("numbers", "firsts", "amend"):
                self.db.execute(f"DELETE FROM {table}")  # fixed names

    def commit(self, *, now: bool = True) -> None:
        """Commit (unless ``now`` is False and the last commit is less than COMMIT_EVERY old)."""
        if now or time.monotonic() - self._committed >= COMMIT_EVERY:
            with self._guard():
                self.db.commit()
            self._committed = time.monotonic()

    def close(self) -> None:
        try:
            with self._guard():
                self.db.commit()
        finally:
            self.db.close()


def _place(result: VerificationStatus) -> str:
    """Where a result is, as a copy note names it: the source, and the page if any."""
    return result.source + (f" 第{result.page}页" if result.page else "")


def _unseal(
    path: Path, key: bytes, run: int, kind: int, position: int, sub: int, sealed: list[Any]
) -> VerificationStatus:
    *columns, data, mac = sealed
    if not hmac.compare_digest(mac, _seal(key, run, kind, position, sub, tuple(columns), data)):
        raise ArchiveStateError(f"状态文件 {path} 中的核验结果在核验期间被改动：请重新运行核验")
    result: VerificationStatus = pickle.loads(data)  # sealed by this process: MAC checked above
    return result


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_state_path(folder: Path, paths: list[Path]) -> Path:
    """One state file per set of inputs, in the station home: the same command resumes."""
    names = sorted(os.fsencode(p.resolve()) for p in paths)
    digest = hashlib.sha256(b"\n".join(names)).hexdigest()
    return folder / f"{digest[:16]}.facts.sqlite"


# --- the run -----------------------------------------------------------------------------------
T = TypeVar("T")

REPORTED = {
    "all": "",
    "not_valid": " AND status != 'valid'",
    "noted": " AND noted = 1",
    "stale": " AND status = 'valid' AND stale = 1",
    "reported": " AND (status != 'valid' OR stale = 1)",
}
"""Which results :meth:`ArchiveRun.select` streams: every one, not valid, with a note, valid on old
revocation data, and what a report lists (not valid, or valid on old data)."""


class Stored(Sequence[T]):
    """Rows of one run in its state file, read as they are iterated (in input order); their number
    is the run's own count (:class:`Tally`), and reading back any other number of rows is refused."""

    def __init__(self, run: ArchiveRun, count: int, rows: str, make: Callable[[tuple[Any, ...]], T]) -> None:
        self._run, self._count, self._rows, self._make = run, count, rows, make

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[T]:
        read = 0
        with closing(self._run.connect()) as db:
            for row in db.execute(self._rows, (self._run.run,)):
                read += 1
                if read > self._count:
                    break
                yield self._make(row)
        if read != self._count:
            raise ArchiveStateError(f"状态文件 {self._run.state_path} 中的核验结果在核验期间被改动：请重新运行核验")

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...

    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += len(self)
        if index < 0:
            raise IndexError(index)
        with closing(self._run.connect()) as db:
            row = db.execute(f"{self._rows} LIMIT 1 OFFSET ?", (self._run.run, index)).fetchone()
        if row is None:
            raise IndexError(index)
        return self._make(row)


@dataclass(frozen=True)
class ArchiveRun:
    """A handle on the outcome of verifying a set of inputs: the results are rows of the run's state
    file, streamed in input order as they are iterated, never held in memory all at once."""

    state_path: Path
    """The state file that holds the results."""
    run: int
    """The run's id in it."""
    key: bytes = field(repr=False)
    """The key this run sealed its rows with (held only in memory)."""
    files: int
    """Files (and ZIP members) looked at."""
    reused: int = 0
    """Files whose decoding facts came from an earlier run (same bytes); trust checks ran anew."""
    previous_interrupted: bool = False
    """Whether the previous run on the same inputs was interrupted before it finished."""
    tally: Tally = field(default_factory=Tally, repr=False)
    """What the run stored, counted as it stored it."""

    def connect(self) -> sqlite3.Connection:
        """A read-only connection to the state file, refused when a later run has replaced this one."""
        db = _connect_ro(self.state_path)
        try:
            if db.execute("SELECT finished FROM runs WHERE id = ?", (self.run,)).fetchone() is None:
                raise ArchiveStateError(f"状态文件 {self.state_path} 中本次核验的结果已被之后的核验取代")
        except BaseException:
            db.close()
            raise
        return db

    def select(self, which: str = "all") -> Stored[VerificationStatus]:
        """Results in input order: ``which`` is a key of REPORTED."""
        where = REPORTED[which]
        rows = (
            f"SELECT kind, position, sub, status, reasons, noted, stale, data, mac FROM results WHERE run = ?{where} "
            "ORDER BY kind, position, sub"
        )  # fixed clauses (REPORTED)

        def make(row: tuple[Any, ...]) -> VerificationStatus:
            kind, position, sub, *sealed = row
            return _unseal(self.state_path, self.key, self.run, kind, position, sub, sealed)

        return Stored(self, self.tally.rows[which], rows, make)

    @property
    def results(self) -> Stored[VerificationStatus]:
        """Every result, in input order, with archive-wide findings and notes added."""
        return self.select()

    @property
    def skipped(self) -> Stored[Skipped]:
        """Entries deliberately not verified, each with its reason."""
        return Stored(
            self, self.tally.rows["skipped"],
            "SELECT source, reason FROM skipped WHERE run = ? ORDER BY seq", lambda row: Skipped(row[0], row[1]),
        )  # fmt: skip

    def totals(self) -> dict[str, int]:
        return {status: self.tally.rows[f"status:{status}"] for status in ("valid", "invalid", "unreadable")}

    def by_reason(self) -> dict[str, int]:
        return {code: n for code, n in sorted(self.tally.reasons.items()) if n}

    @property
    def all_valid(self) -> bool:
        totals = self.totals()
        return totals["valid"] > 0 and totals["invalid"] == totals["unreadable"] == 0

    def summary_lines(self) -> list[str]:
        """The summary in Chinese: totals, what was reused, what was skipped."""
        totals = self.totals()
        lines = [
            f"共 {self.files} 个文件、{sum(totals.values())} 张证书：有效 {totals['valid']}，无效 {totals['invalid']}，"
            f"无法读取 {totals['unreadable']}"
        ]
        if self.reused:
            lines.append(f"{self.reused} 个文件的解码结果沿用上次运行（内容未变），信任检查已重新执行")
        if self.previous_interrupted:
            lines.append("上次对同一输入的核验曾被中断，本次已完整运行")
        skipped = self.skipped
        if count := len(skipped):
            lines.append(f"跳过 {count} 项（如 {skipped[0].source}：{skipped[0].reason}）")
        return lines


def _results(examined: Examined, trust: TrustBundle, today: _dt.date | None, profiles: Any) -> list[VerificationStatus]:
    source = examined.item.source
    if examined.facts is None:
        return [_problem(source, Reason.UNREADABLE_FILE, examined.error or "无法读取")]
    return results_from_facts(examined.facts, source, trust, today=today, profiles=profiles)


def run_archive(
    paths: list[Path],
    trust: TrustBundle,
    *,
    state_path: Path,
    workers: int | None = None,
    decoder: Decoder = "zxing",
    force: bool = False,
    today: _dt.date | None = None,
    profiles: dict[str, ProvinceProfile] | None = None,
    progress: Progress | None = None,
    limits: Limits = DEFAULT_LIMITS,
    worker_memory_bytes: int | None = 4 * 1024**3,
    executor: Executor | None = None,
) -> ArchiveRun:
    """Verify every file under ``paths`` against ``trust``; facts and results stream into ``state_path``.

    The inputs are listed twice, lazily: once to count (for the progress bar), once feeding work
    units to the executor, which keeps a bounded number in flight; each result is stored as it
    arrives and the archive-wide checks run as SQL at the end, so the memory used here does not
    grow with the archive. ``worker_memory_bytes`` caps each worker process's address space (a
    hostile file then fails alone with a clear reason instead of exhausting the machine); None
    leaves it unlimited. Decoding goes to ``executor`` (a Dask cluster, see ``verify.cluster``),
    else to a pool of ``workers`` processes on this machine (default: the core count); trust
    checks run here.
    """
    state = State(state_path, force=force)
    interrupted_before = state.previous_interrupted()
    run_id = state.begin()
    key = secrets.token_bytes(32)
    reused = 0
    files = 0
    try:
        total = sum(isinstance(listed, Item) for listed in listing(paths, limits))
        if progress:
            progress(0, total)
        own = executor is None
        executor = executor or LocalExecutor(max(1, workers or os.cpu_count() or 1))
        # Workers elsewhere cannot (and must not) read a state file under this path on their machine:
        # facts from another station's file could make a forged scan look valid. They are told the
        # hashes whose facts are here instead, and this process reads those facts.
        here = executor.on_this_machine
        cache, known = (str(state_path), frozenset[str]()) if here else (None, state.known(decoder, limits))
        context = make_context(limits, decoder, cache, worker_memory_bytes, known)

        def todo() -> Iterator[tuple[int, Item]]:
            """The listing again, as it is walked: inputs without files and skipped entries are stored."""
            nonlocal files
            problems = skipped = 0
            for listed in listing(paths, limits):
                if isinstance(listed, Item):
                    yield files, listed
                    files += 1
                elif isinstance(listed, Skipped):
                    state.put_skipped(run_id, skipped, listed)
                    skipped += 1
                else:
                    state.put_result(key, run_id, PROBLEM, problems, 0, listed)
                    problems += 1

        done = 0
        units = make_units(todo(), executor.unit_size, executor.workers, total=total)
        with (
            executor if own else nullcontext(executor),
            closing(executor.run(units, context)) as outcomes,
        ):  # closing: when interrupted, the executor cancels what is in flight at once
            for result in outcomes:
                if not state.unit_done(run_id, result.unit.id):  # a unit redone after a lost worker counts once
                    continue
                for index, outcome in zip(result.unit.positions, result.examined, strict=True):
                    if outcome.reused and outcome.sha256:
                        facts, decoded_in = state.facts(outcome.sha256, decoder, limits)
                        if outcome.facts is None:  # known here: the facts come from here
                            outcome = replace(outcome, facts=facts, error=None if facts else "状态文件中的解码结果丢失")
                        reused += decoded_in != run_id  # a copy decoded in this run is not "reused"
                    elif outcome.sha256 and outcome.facts is not None and outcome.keep:
                        state.put(outcome.sha256, decoder, limits, outcome.facts, run_id)
                    for sub, status in enumerate(_results(outcome, trust, today, profiles)):
                        state.put_result(key, run_id, ITEM, index, sub, status)
                state.commit(now=False)  # an interrupted run keeps every finished file (close commits)
                done += len(result.unit.items)
                if progress:
                    progress(done, max(total, done))
        state.check_archive(key, run_id)
        state.finish(run_id)
    finally:
        state.close()
    return ArchiveRun(state_path, run_id, key, files, reused, interrupted_before, state.tally)


def _content(result: VerificationStatus) -> str:
    """The certificate's signed content whatever its form (paper or electronic)."""
    assert result.claims is not None
    claims = {k: v for k, v in result.claims.to_json().items() if k != "form"}
    return json.dumps(claims, ensure_ascii=False, sort_keys=True)


__all__ = [
    "ArchiveRun", "Examined", "Item", "Skipped", "State", "Stored", "default_state_path", "discover",
    "examine_item", "listing", "run_archive",
]  # fmt: skip
