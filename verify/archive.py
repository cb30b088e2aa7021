"""Re-verify whole archives: folders and ZIP files, in parallel, resumably, with a report.

Every input the user names, and every file inside it, ends as a result (verified, or unreadable
with the reason) or as a skipped entry with the reason: nothing is left out without a word.

Resuming keeps *facts about bytes*, never verdicts: each file or ZIP member is read (within the
limits) and hashed with SHA-256 while it is read; when the state file already holds the decoding
facts of exactly these bytes (QR texts, the PDF's embedded record and printed fields), decoding is
skipped. The checks that depend on the trust store (signature, key validity, revocation) and the
comparisons run again on every run. See docs/verify.md.

After all files: checks no single scan can do: one certificate number on two different payloads
(DUPLICATE_NUMBER) and one payload on two files (reported as a copy, not an error).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sqlite3
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from certgen.bounded import kind_of, read_regular, read_stream
from certgen.cells import shown
from certgen.exceptions import DiskFull, InputRefused
from certgen.files import is_disk_full
from certgen.number import ProvinceProfile
from certgen.pool import WorkerCrashed, imap
from certgen.trust import TrustBundle
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
@dataclass
class Found:
    """What discovery found: items to verify, results for inputs that hold none, skipped entries."""

    items: list[Item]
    problems: list[VerificationStatus]
    skipped: list[Skipped]


def _problem(source: str, reason: Reason, why: str) -> VerificationStatus:
    return VerificationStatus(source=source).with_finding(reason, why)


def _zip_items(path: Path, found: Found, limits: Limits) -> int:
    """Add the members of one ZIP; returns how many are to be verified."""
    source = shown(str(path))
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        found.problems.append(_problem(source, Reason.UNREADABLE_FILE, f"ZIP文件损坏或无法读取：{exc}"))
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
            found.skipped.append(Skipped(where, hidden))
        elif name.lower().endswith(".zip"):
            found.skipped.append(Skipped(where, "ZIP 中的 ZIP 不展开；请先解压再核验"))
        elif not _wanted(name):
            found.skipped.append(Skipped(where, "既非图片也非PDF"))
        else:
            found.items.append(Item(where, str(path), index, name))
            count += 1
    if seen and not count:
        found.problems.append(_problem(
            source, Reason.NO_QR, f"ZIP中没有可核验的图片或PDF（{sum(seen.values())} 个成员均已跳过，原因见跳过清单）"
        ))  # fmt: skip
    elif not seen:
        found.problems.append(_problem(source, Reason.NO_QR, "ZIP文件为空"))
    return count


def _is_zip_name(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


def _walk(folder: Path, found: Found, limits: Limits) -> int:
    """Add everything under ``folder``; returns how many items are to be verified."""
    count = 0
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        found.problems.append(
            _problem(shown(str(folder)), Reason.UNREADABLE_FILE, f"无法读取文件夹：{exc.strerror or exc}")
        )
        return 0
    for entry in entries:
        path = Path(entry.path)
        source = shown(entry.path)
        if entry.name.startswith("."):
            found.skipped.append(Skipped(source, "隐藏文件或文件夹（名称以“.”开头），未核验；如需核验请改名"))
            continue
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError as exc:
            found.problems.append(_problem(source, Reason.UNREADABLE_FILE, f"无法读取：{exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            if entry.is_symlink():
                found.skipped.append(Skipped(source, "指向文件夹的符号链接，未跟随（避免重复与循环）"))
            else:
                count += _walk(path, found, limits)
            continue
        kind = kind_of(st.st_mode)
        if kind is not None:
            found.skipped.append(Skipped(source, f"{kind}，不是普通文件：未打开"))
        elif _is_zip_name(path):
            count += _zip_items(path, found, limits)
        elif _wanted(entry.name):
            found.items.append(Item(source, entry.path))
            count += 1
        else:
            found.skipped.append(Skipped(source, "既非图片也非PDF"))
    return count


def discover(paths: list[Path], limits: Limits = DEFAULT_LIMITS) -> Found:
    """The files to verify, results for inputs that hold none (missing, empty, unreadable, not a
    file), and every entry skipped with its reason."""
    found = Found([], [], [])
    for path in paths:
        source = shown(str(path))
        try:
            st = path.stat()
        except OSError as exc:
            why = "文件或文件夹不存在" if isinstance(exc, FileNotFoundError) else f"无法读取：{exc.strerror or exc}"
            found.problems.append(_problem(source, Reason.UNREADABLE_FILE, why))
            continue
        if stat.S_ISDIR(st.st_mode):
            before = len(found.skipped)
            if not _walk(path, found, limits):
                skipped = len(found.skipped) - before
                why = (
                    f"文件夹中没有可核验的图片或PDF文件（跳过 {skipped} 项，原因见跳过清单）"
                    if skipped
                    else "文件夹为空，没有可核验的文件"
                )
                found.problems.append(_problem(source, Reason.NO_QR, why))
        elif kind_of(st.st_mode) is not None:
            found.problems.append(
                _problem(source, Reason.UNREADABLE_FILE, f"是{kind_of(st.st_mode)}，不是普通文件：未打开")
            )
        elif _is_zip_name(path) and zipfile.is_zipfile(path):
            _zip_items(path, found, limits)
        else:
            found.items.append(Item(source, str(path)))
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
    item: Item, limits: Limits = DEFAULT_LIMITS, decoder: Decoder = "zxing", cache: str | None = None
) -> Examined:
    """Read one item within the limits, hash it, and decode it unless ``cache`` (a state file)
    already holds the facts of these exact bytes. Never raises for a bad input."""
    hasher = hashlib.sha256()
    try:
        data = _read(item, limits, hasher)
    except InputRefused as exc:
        return Examined(item, error=str(exc))
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError,
            zlib.error, ValueError) as exc:  # fmt: skip
        return Examined(item, error=f"无法读取：{shown(str(exc))}")
    sha = hasher.hexdigest()
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


_SETTINGS: dict[str, Any] = {}


def _init_worker(limits: Limits, decoder: Decoder, cache: str | None, memory_bytes: int | None) -> None:
    _SETTINGS.update(limits=limits, decoder=decoder, cache=cache)
    if memory_bytes:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        if soft == resource.RLIM_INFINITY or cap < soft:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _examine_in_worker(item: Item) -> Examined:
    return examine_item(item, _SETTINGS["limits"], _SETTINGS["decoder"], _SETTINGS["cache"])


# --- state -------------------------------------------------------------------------------------
SCHEMA_VERSION = 2
"""Version 1 stored pickled verdicts keyed by path and mtime; it is never read (discarded)."""


def _extractor(decoder: Decoder, limits: Limits) -> str:
    """What produced facts: the same bytes under another decoder or limits are examined again."""
    return json.dumps([FACTS_VERSION, decoder, limits.__dict__], sort_keys=True)


class State:
    """Facts about bytes from earlier runs, in SQLite: keyed by SHA-256, JSON, versioned."""

    def __init__(self, path: Path, *, force: bool = False) -> None:
        self.path = path
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
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            if db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0:
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS facts (sha256 TEXT NOT NULL, extractor TEXT NOT NULL, "
                "facts TEXT NOT NULL, PRIMARY KEY (sha256, extractor))"
            )
            db.execute("CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT)")
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

    def previous_interrupted(self) -> bool:
        """Whether the last run on this state file started and never finished."""
        row = self.db.execute("SELECT finished FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return row is not None and row[0] is None

    def begin(self) -> int:
        with self._guard(), self.db:
            cur = self.db.execute("INSERT INTO runs (started) VALUES (?)", (_now(),))
        return int(cur.lastrowid or 0)

    def finish(self, run: int) -> None:
        with self._guard(), self.db:
            self.db.execute("UPDATE runs SET finished = ? WHERE id = ?", (_now(), run))

    def put(self, sha256: str, decoder: Decoder, limits: Limits, facts: Facts) -> None:
        with self._guard():
            self.db.execute(
                "INSERT OR REPLACE INTO facts (sha256, extractor, facts) VALUES (?,?,?)",
                (sha256, _extractor(decoder, limits), json.dumps(facts, ensure_ascii=False)),
            )

    def commit(self) -> None:
        with self._guard():
            self.db.commit()

    def close(self) -> None:
        try:
            with self._guard():
                self.db.commit()
        finally:
            self.db.close()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_state_path(folder: Path, paths: list[Path]) -> Path:
    """One state file per set of inputs, in the station home: the same command resumes."""
    names = sorted(os.fsencode(p.resolve()) for p in paths)
    digest = hashlib.sha256(b"\n".join(names)).hexdigest()
    return folder / f"{digest[:16]}.facts.sqlite"


# --- the run -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveRun:
    """The outcome of verifying a set of inputs."""

    results: list[VerificationStatus]
    """Every result, in input order, with archive-wide findings and notes added."""
    files: int
    """Files (and ZIP members) looked at."""
    reused: int = 0
    """Files whose decoding facts came from an earlier run (same bytes); trust checks ran anew."""
    skipped: tuple[Skipped, ...] = ()
    """Entries deliberately not verified, each with its reason."""
    previous_interrupted: bool = False
    """Whether the previous run on the same inputs was interrupted before it finished."""

    def totals(self) -> dict[str, int]:
        counts = Counter(r.status for r in self.results)
        return {status: counts.get(status, 0) for status in ("valid", "invalid", "unreadable")}

    def by_reason(self) -> dict[str, int]:
        counts: Counter[str] = Counter(f.reason.value for r in self.results for f in r.findings)
        return dict(sorted(counts.items()))

    @property
    def all_valid(self) -> bool:
        return bool(self.results) and all(r.valid for r in self.results)

    def summary_lines(self) -> list[str]:
        """The summary in Chinese: totals, what was reused, what was skipped."""
        totals = self.totals()
        lines = [
            f"共 {self.files} 个文件、{len(self.results)} 张证书：有效 {totals['valid']}，无效 {totals['invalid']}，"
            f"无法读取 {totals['unreadable']}"
        ]
        if self.reused:
            lines.append(f"{self.reused} 个文件的解码结果沿用上次运行（内容未变），信任检查已重新执行")
        if self.previous_interrupted:
            lines.append("上次对同一输入的核验曾被中断，本次已完整运行")
        if self.skipped:
            lines.append(f"跳过 {len(self.skipped)} 项（如 {self.skipped[0].source}：{self.skipped[0].reason}）")
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
) -> ArchiveRun:
    """Verify every file under ``paths`` against ``trust``; decoding facts stream into ``state_path``.

    ``worker_memory_bytes`` caps each worker process's address space (a hostile file then fails
    alone with a clear reason instead of exhausting the machine); None leaves it unlimited.
    """
    found = discover(paths, limits)
    items = found.items
    state = State(state_path, force=force)
    interrupted_before = state.previous_interrupted()
    run_id = state.begin()
    per_item: list[list[VerificationStatus]] = [[] for _ in items]
    positions = {id(item): i for i, item in enumerate(items)}
    reused = 0
    decoded_now: set[str] = set()
    try:
        total = len(items)
        if progress:
            progress(0, total)
        cache = str(state_path)
        workers = max(1, workers or os.cpu_count() or 1)
        outcomes: Iterator[tuple[Item, Examined | WorkerCrashed]]
        if workers == 1 or total < 2:
            outcomes = ((item, examine_item(item, limits, decoder, cache)) for item in items)
        else:
            outcomes = imap(
                _examine_in_worker, items, workers=workers, initializer=_init_worker,
                initargs=(limits, decoder, cache, worker_memory_bytes),
            )  # fmt: skip
        for done, (item, outcome) in enumerate(outcomes, 1):
            if isinstance(outcome, WorkerCrashed):
                outcome = Examined(item, error=outcome.detail, keep=False)
            if outcome.reused:
                reused += outcome.sha256 not in decoded_now  # a copy of a file decoded in this run is not "reused"
            elif outcome.sha256 and outcome.facts is not None and outcome.keep:
                state.put(outcome.sha256, decoder, limits, outcome.facts)
                decoded_now.add(outcome.sha256)
            index = positions.get(id(item))
            if index is None:  # the item came back from a worker process: a copy
                index = items.index(item)
            per_item[index] = _results(outcome, trust, today, profiles)
            state.commit()  # cheap next to decoding; an interrupted run keeps every finished file
            if progress:
                progress(done, total)
        state.finish(run_id)
    finally:
        state.close()
    results = [r for rs in per_item for r in rs]
    return ArchiveRun(
        _archive_checks(found.problems + results), len(items), reused, tuple(found.skipped), interrupted_before
    )


def _content(result: VerificationStatus) -> str:
    """The certificate's signed content whatever its form (paper or electronic)."""
    assert result.claims is not None
    claims = {k: v for k, v in result.claims.to_json().items() if k != "form"}
    return json.dumps(claims, ensure_ascii=False, sort_keys=True)


def _archive_checks(results: list[VerificationStatus]) -> list[VerificationStatus]:
    """DUPLICATE_NUMBER for one number on different contents; a note for copies of one payload.

    The paper and electronic forms of one certificate share its number and differ only in their
    form claim: they are one certificate, not a duplicate number.
    """
    payloads_by_number: dict[str, set[str]] = {}
    sources_by_payload: dict[str, list[str]] = {}
    for r in results:
        if r.claims is not None and r.intact and r.payload_sha256:
            payloads_by_number.setdefault(r.claims.number, set()).add(_content(r))
            where = r.source + (f" 第{r.page}页" if r.page else "")
            sources_by_payload.setdefault(r.payload_sha256, []).append(where)
    out = []
    for r in results:
        sha = r.payload_sha256
        if r.claims is not None and r.intact and sha:
            others = payloads_by_number[r.claims.number] - {_content(r)}
            if others:
                r = r.with_finding(
                    Reason.DUPLICATE_NUMBER, f"证书编号 {r.claims.number} 还出现在{len(others)}份内容不同的证书上"
                )
            copies = sources_by_payload[sha]
            where = r.source + (f" 第{r.page}页" if r.page else "")
            if len(copies) > 1 and copies[0] != where:
                r = replace(r, notes=(*r.notes, f"与 {copies[0]} 内容相同（副本）"))
        out.append(r)
    return out


__all__ = [
    "ArchiveRun", "Examined", "Item", "Skipped", "State", "default_state_path", "discover", "examine_item",
    "run_archive",
]  # fmt: skip
