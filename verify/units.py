"""Work units of an archive run: what is sent to a worker, what comes back, and the work itself.

The archive runner (``verify.archive.run_archive``) cuts its listing into units lazily, hands them
to an executor (``verify.executors`` on this machine, ``verify.cluster`` on a Dask cluster) and
records results as units finish. A unit is a batch of plain files or a range of consecutive
members of one ZIP; it carries everything a worker needs except the :class:`Context`, which is sent
once per run. Workers only read, hash and decode (facts about bytes); the trust checks run on the
client. Nothing here needs a station home.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from certgen.exceptions import VersionMismatch
from verify.files import Limits
from verify.scan import Decoder

if TYPE_CHECKING:
    from verify.archive import Examined, Item


def certkiosk_version() -> str:
    """The installed certkiosk's version number."""
    try:
        return metadata.version("certkiosk")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def build_id() -> str:
    """The version number and a digest of the code that runs here: what client and workers must share.

    The version alone is not enough: two checkouts of one version pickle classes that differ (a
    moved module fails to unpickle on the other side), so the source of the packages whose objects
    travel between them (certgen, verify) is hashed too.
    """
    digest = hashlib.sha256()
    for package in ("certgen", "verify"):
        root = Path(importlib.import_module(package).__file__ or ".").parent
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{certkiosk_version()}（代码 {digest.hexdigest()[:12]}）"


@dataclass(frozen=True)
class Context:
    """How every unit of one run is examined: sent to workers as data, once."""

    limits: Limits
    """Size, pixel and time limits for hostile files."""
    decoder: Decoder
    """The QR decoder to use."""
    cache: str | None
    """The state file whose facts a worker may reuse (None where it is not this machine's)."""
    memory_bytes: int | None
    """Address-space cap of a local worker process (None: unlimited)."""
    known: frozenset[str]
    """Content hashes whose facts the client holds: workers that cannot read ``cache`` skip decoding them."""
    version: str
    """The client's :func:`build_id`; a worker running other code refuses the work."""


def make_context(
    limits: Limits, decoder: Decoder, cache: str | None, memory_bytes: int | None, known: frozenset[str] = frozenset()
) -> Context:
    return Context(limits, decoder, cache, memory_bytes, known, build_id())


@dataclass(frozen=True)
class Unit:
    """A batch of files, or a range of one ZIP's members, examined as one task."""

    id: int
    """The listing position of its first file: unique within a run, the key results are deduplicated by."""
    positions: tuple[int, ...]
    """Each file's position in the listing (where its results go in the report)."""
    items: tuple[Item, ...]
    """The files, with absolute paths (a worker's working folder is not the client's)."""


@dataclass(frozen=True)
class UnitResult:
    """What was found for each file of one unit, in the unit's order."""

    unit: Unit
    """The unit these results belong to."""
    examined: tuple[Examined, ...]
    """One per file: its content hash and decoding facts, or why it could not be read."""


def make_units(
    todo: Iterable[tuple[int, Item]], size: int, workers: int = 1, *, total: int | None = None
) -> Iterator[Unit]:
    """Cut ``(position, item)`` pairs into units of at most ``size`` files, lazily: ``todo`` may be
    a generator over the listing (``total``: how many it will yield, default ``len(todo)``).

    Units shrink towards the end (guided scheduling: at most a quarter of each worker's share of
    what is left, at least an eighth of ``size`` so per-task overhead stays small), so workers finish
    together instead of one waiting for the last big unit. A unit
    never mixes ZIP archives with each other or with plain files, so a large ZIP becomes ranges of
    consecutive members (by their index in the central directory).
    """
    if size < 1:
        raise ValueError(f"work unit size must be at least 1, got {size}")
    count = len(todo) if total is None and isinstance(todo, Sequence) else total or 0
    batch: list[tuple[int, Item]] = []
    container: str | None = None
    last = ("", str(Path().resolve()))
    limit = size
    for index, (position, item) in enumerate(todo):
        where = item.path if item.member is not None else None
        if batch and (len(batch) >= limit or where != container):
            yield _unit(batch)
            batch = []
        if not batch:
            limit = max(1, size // 8, min(size, (count - index) // (4 * max(1, workers))))
        container = where
        folder, name = os.path.split(item.path)
        if folder != last[0]:  # resolved once per folder, not per file (a stat per path component)
            last = (folder, str(Path(folder).resolve()))
        batch.append((position, replace(item, path=os.path.join(last[1], name))))
    if batch:
        yield _unit(batch)


def _unit(batch: list[tuple[int, Item]]) -> Unit:
    return Unit(batch[0][0], tuple(p for p, _ in batch), tuple(i for _, i in batch))


def examine_unit(unit: Unit, context: Context) -> UnitResult:
    """Read, hash and decode every file of a unit (in a worker process, or inline)."""
    from verify.archive import examine_item

    _tune_allocator_once()  # a process that examines units verifies file after file: keep its buffers

    if context.version != build_id():
        raise VersionMismatch(
            f"工作进程的 certkiosk 为 {build_id()}，与客户端的 {context.version} 不同：请在各机器上安装相同版本"
        )
    return UnitResult(
        unit,
        tuple(examine_item(item, context.limits, context.decoder, context.cache, context.known) for item in unit.items),
    )


_TUNED: list[bool] = []


def _tune_allocator_once() -> None:
    if not _TUNED:
        from verify.memory import reuse_freed_memory

        _TUNED.append(reuse_freed_memory())


def crashed(unit: Unit, why: str) -> UnitResult:
    """The result for a unit whose files kept killing the workers that examined them."""
    from verify.archive import Examined

    return UnitResult(unit, tuple(Examined(item, error=why, keep=False) for item in unit.items))


__all__ = ["Context", "Unit", "UnitResult", "build_id", "certkiosk_version", "examine_unit", "make_units"]
