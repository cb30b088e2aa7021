"""Re-verify whole archives: folders and ZIP files, in parallel, resumably, with a report.

Files are streamed (a ZIP member is read when its turn comes), results go to a small SQLite state
file as they arrive, so an interrupted run continues where it stopped and memory stays bounded.
After all files: checks no single scan can do: one certificate number on two different payloads
(DUPLICATE_NUMBER) and one payload on two files (reported as a copy, not an error).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import pickle
import sqlite3
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from certgen.number import ProvinceProfile
from certgen.trust import TrustBundle
from verify.files import IMAGE_SUFFIXES, PDF_SUFFIXES, verify_bytes
from verify.reasons import Reason
from verify.scan import Decoder
from verify.status import VerificationStatus

Progress = Callable[[int, int], None]
"""Called as files finish with (done, total)."""


@dataclass(frozen=True)
class Item:
    """One file to verify: a path, or a member of a ZIP archive."""

    key: str
    """Stable identity: the absolute path, or ``zip-path!member``."""
    source: str
    """How reports name it."""
    size: int
    """Size in bytes (with ``stamp``, tells a changed file on resume)."""
    stamp: str
    """Modification time, or the member's CRC."""
    path: str
    """The file, or the ZIP archive."""
    member: str | None = None
    """The member name inside the ZIP archive."""

    def read(self) -> bytes:
        if self.member is None:
            return Path(self.path).read_bytes()
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(self.member)


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" and zipfile.is_zipfile(path)


CANDIDATES = IMAGE_SUFFIXES | PDF_SUFFIXES
"""Inside folders and ZIP archives only these are looked at; other files are counted as skipped."""


def _wanted(name: str) -> bool:
    return Path(name).suffix.lower() in CANDIDATES


def _zip_items(path: Path, skipped: list[str]) -> Iterator[Item]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or Path(name).name.startswith(".") or "__MACOSX" in name:
                continue
            if not _wanted(name):
                skipped.append(f"{path}!{name}")
                continue
            yield Item(
                f"{path.resolve()}!{name}", f"{path}!{name}", info.file_size, f"crc:{info.CRC:08x}", str(path), name
            )


def _file_item(path: Path) -> Item:
    st = path.stat()
    return Item(str(path.resolve()), str(path), st.st_size, f"mtime:{st.st_mtime_ns}", str(path))


def discover(paths: list[Path]) -> tuple[list[Item], list[VerificationStatus], list[str]]:
    """The files to verify, results for inputs that hold none (missing, empty folder, bad ZIP),
    and the files inside folders and ZIPs that were skipped as neither image nor PDF."""
    items: list[Item] = []
    empty: list[VerificationStatus] = []
    skipped: list[str] = []
    for path in paths:
        if not path.exists():
            empty.append(
                VerificationStatus(source=str(path)).with_finding(Reason.UNREADABLE_FILE, "文件或文件夹不存在")
            )
        elif path.is_dir():
            found = 0
            for sub in sorted(path.rglob("*")):
                if sub.is_file() and not any(part.startswith(".") for part in sub.relative_to(path).parts):
                    if _is_zip(sub):
                        zipped = list(_zip_items(sub, skipped))
                        items.extend(zipped)
                        found += len(zipped)
                    elif _wanted(sub.name):
                        items.append(_file_item(sub))
                        found += 1
                    else:
                        skipped.append(str(sub))
            if not found:
                why = "文件夹中没有图片或PDF文件" if skipped else "文件夹为空，没有可核验的文件"
                empty.append(VerificationStatus(source=str(path)).with_finding(Reason.NO_QR, why))
        elif path.suffix.lower() == ".zip":
            try:
                zipped = list(_zip_items(path, skipped))
            except zipfile.BadZipFile as exc:
                empty.append(
                    VerificationStatus(source=str(path)).with_finding(Reason.UNREADABLE_FILE, f"ZIP文件损坏：{exc}")
                )
                continue
            if not zipped:
                empty.append(VerificationStatus(source=str(path)).with_finding(Reason.NO_QR, "ZIP文件为空"))
            items.extend(zipped)
        else:
            items.append(_file_item(path))
    return items, empty, skipped


# --- one file, in a worker process or inline ---------------------------------------------------
_CONTEXT: dict[str, Any] = {}


def _init(
    trust: TrustBundle, decoder: Decoder, today: _dt.date | None, profiles: dict[str, ProvinceProfile] | None
) -> None:
    _CONTEXT.update(trust=trust, decoder=decoder, today=today, profiles=profiles)


def _verify_item(item: Item) -> tuple[Item, list[VerificationStatus]]:
    try:
        data = item.read()
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        return item, [VerificationStatus(source=item.source).with_finding(Reason.UNREADABLE_FILE, f"无法读取：{exc}")]
    results = verify_bytes(
        data, item.source, _CONTEXT["trust"], decoder=_CONTEXT["decoder"], today=_CONTEXT["today"],
        profiles=_CONTEXT["profiles"],
    )  # fmt: skip
    return item, results


# --- state -------------------------------------------------------------------------------------
class State:
    """The results so far, in SQLite: what makes a run resumable and its memory bounded."""

    def __init__(self, path: Path, *, force: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if force:
            path.unlink(missing_ok=True)
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, size INTEGER, stamp TEXT, position INTEGER, "
            "data BLOB NOT NULL)"
        )

    def done(self, item: Item) -> bool:
        row = self.db.execute("SELECT size, stamp FROM results WHERE key = ?", (item.key,)).fetchone()
        return row is not None and tuple(row) == (item.size, item.stamp)

    def put(self, item: Item, position: int, results: list[VerificationStatus]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO results (key, size, stamp, position, data) VALUES (?,?,?,?,?)",
            (item.key, item.size, item.stamp, position, pickle.dumps(results)),
        )

    def commit(self) -> None:
        self.db.commit()

    def results(self, keys: list[str]) -> Iterator[tuple[str, list[VerificationStatus]]]:
        for key in keys:
            row = self.db.execute("SELECT data FROM results WHERE key = ?", (key,)).fetchone()
            if row is not None:
                yield key, pickle.loads(row[0])  # our own state file, written above

    def close(self) -> None:
        self.db.commit()
        self.db.close()


def default_state_path(folder: Path, paths: list[Path]) -> Path:
    """One state file per set of inputs, in the station home: the same command resumes."""
    digest = hashlib.sha256("\n".join(sorted(str(p.resolve()) for p in paths)).encode("utf-8")).hexdigest()
    return folder / f"{digest[:16]}.sqlite"


# --- the run -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveRun:
    """The outcome of verifying a set of inputs."""

    results: list[VerificationStatus]
    """Every result, in input order, with archive-wide findings and notes added."""
    files: int
    """Files looked at."""
    resumed: int
    """Files whose results came from an earlier, interrupted run."""
    skipped: tuple[str, ...] = ()
    """Files inside folders and ZIPs that are neither images nor PDFs (not looked at)."""

    def totals(self) -> dict[str, int]:
        counts = Counter(r.status for r in self.results)
        return {status: counts.get(status, 0) for status in ("valid", "invalid", "unreadable")}

    def by_reason(self) -> dict[str, int]:
        counts: Counter[str] = Counter(f.reason.value for r in self.results for f in r.findings)
        return dict(sorted(counts.items()))

    @property
    def all_valid(self) -> bool:
        return bool(self.results) and all(r.valid for r in self.results)


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
) -> ArchiveRun:
    """Verify every file under ``paths``; results stream into ``state_path``."""
    items, empty, skipped = discover(paths)
    state = State(state_path, force=force)
    try:
        todo = [(i, item) for i, item in enumerate(items) if not state.done(item)]
        resumed = len(items) - len(todo)
        done = resumed
        total = len(items)
        if progress:
            progress(done, total)
        workers = max(1, workers or os.cpu_count() or 1)
        if workers == 1 or len(todo) < 2:
            _init(trust, decoder, today, profiles)
            for position, item in todo:
                _, results = _verify_item(item)
                state.put(item, position, results)
                done += 1
                if done % 20 == 0:
                    state.commit()
                if progress:
                    progress(done, total)
        else:
            positions = {item.key: position for position, item in todo}
            with ProcessPoolExecutor(workers, initializer=_init, initargs=(trust, decoder, today, profiles)) as pool:
                window = workers * 4  # bounded: never more than this many files in flight
                pending: list[Future[tuple[Item, list[VerificationStatus]]]] = []
                queue = iter(item for _, item in todo)
                for item in queue:
                    pending.append(pool.submit(_verify_item, item))
                    if len(pending) >= window:
                        break
                while pending:
                    future = pending.pop(0)
                    item, results = future.result()
                    state.put(item, positions[item.key], results)
                    done += 1
                    if done % 20 == 0:
                        state.commit()
                    if progress:
                        progress(done, total)
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.append(pool.submit(_verify_item, nxt))
        state.commit()
        results = [r for _, rs in state.results([item.key for item in items]) for r in rs]
    finally:
        state.close()
    return ArchiveRun(_archive_checks(empty + results), len(items), resumed, tuple(skipped))


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


__all__ = ["ArchiveRun", "Item", "default_state_path", "discover", "run_archive"]
