"""Work units of an archive run: what is sent to a worker, what comes back, and the work itself.

The archive runner (``verify.archive.run_archive``) cuts its listing into units lazily, hands them
to an executor (``verify.executors`` on this machine, ``verify.cluster`` on a Dask cluster) and
records results as units finish. A unit is a batch of plain files or a range of consecutive
members of one ZIP (opened once per unit); it carries everything a worker needs except the
:class:`Context`, which is sent once per run. Nothing here needs a station home.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from certgen.exceptions import VersionMismatch
from certgen.number import ProvinceProfile
from certgen.trust import TrustBundle
from verify.files import verify_bytes
from verify.reasons import Reason
from verify.scan import Decoder
from verify.status import VerificationStatus

if TYPE_CHECKING:
    from verify.archive import Item


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
    """What every unit of one run is verified against: sent to workers as data, once."""

    trust: TrustBundle
    """The client's trust store (keys and revocations)."""
    decoder: Decoder
    """The QR decoder to use."""
    today: _dt.date
    """The date checks compare against, fixed by the client so every worker uses the same day."""
    profiles: dict[str, ProvinceProfile] | None
    """The client's province profiles (number rules)."""
    version: str
    """The client's :func:`build_id`; a worker running other code refuses the work."""


def make_context(
    trust: TrustBundle, decoder: Decoder, today: _dt.date | None, profiles: dict[str, ProvinceProfile] | None
) -> Context:
    return Context(trust, decoder, today or _dt.date.today(), profiles, build_id())


@dataclass(frozen=True)
class Unit:
    """A batch of files, or a range of one ZIP's members, verified as one task."""

    id: int
    """The listing position of its first file: unique within a run, the key results are deduplicated by."""
    positions: tuple[int, ...]
    """Each file's position in the listing (where its results go in the report)."""
    items: tuple[Item, ...]
    """The files, with absolute paths (a worker's working folder is not the client's)."""


@dataclass(frozen=True)
class UnitResult:
    """The results of one unit, file by file, in the unit's order."""

    unit: Unit
    """The unit these results belong to."""
    results: tuple[tuple[VerificationStatus, ...], ...]
    """One tuple of results per file (one per QR code found, or one saying why none)."""


def make_units(todo: Sequence[tuple[int, Item]], size: int, workers: int = 1) -> Iterator[Unit]:
    """Cut ``(position, item)`` pairs into units of at most ``size`` files, lazily.

    Units shrink towards the end (guided scheduling: at most a quarter of each worker's share of
    what is left, at least an eighth of ``size`` so per-task overhead stays small), so workers finish
    together instead of one waiting for the last big unit. A unit
    never mixes ZIP archives with each other or with plain files, so a large ZIP becomes ranges of
    consecutive members and a worker opens each ZIP once per unit.
    """
    if size < 1:
        raise ValueError(f"work unit size must be at least 1, got {size}")
    batch: list[tuple[int, Item]] = []
    container: str | None = None
    limit = size
    for index, (position, item) in enumerate(todo):
        where = item.path if item.member is not None else None
        if batch and (len(batch) >= limit or where != container):
            yield _unit(batch)
            batch = []
        if not batch:
            limit = max(1, size // 8, min(size, (len(todo) - index) // (4 * max(1, workers))))
        container = where
        batch.append((position, replace(item, path=str(Path(item.path).resolve()))))
    if batch:
        yield _unit(batch)


def _unit(batch: list[tuple[int, Item]]) -> Unit:
    return Unit(batch[0][0], tuple(p for p, _ in batch), tuple(i for _, i in batch))


def verify_unit(unit: Unit, context: Context) -> UnitResult:
    """Verify every file of a unit (in a worker process, or inline)."""
    if context.version != build_id():
        raise VersionMismatch(
            f"工作进程的 certkiosk 为 {build_id()}，与客户端的 {context.version} 不同：请在各机器上安装相同版本"
        )
    zips: dict[str, zipfile.ZipFile] = {}
    out: list[tuple[VerificationStatus, ...]] = []
    try:
        for item in unit.items:
            out.append(tuple(_verify_item(item, context, zips)))
    finally:
        for archive in zips.values():
            archive.close()
    return UnitResult(unit, tuple(out))


def _verify_item(item: Item, context: Context, zips: dict[str, zipfile.ZipFile]) -> list[VerificationStatus]:
    try:
        if item.member is None:
            data = Path(item.path).read_bytes()
        else:
            if item.path not in zips:
                zips[item.path] = zipfile.ZipFile(item.path)
            data = zips[item.path].read(item.member)
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        return [VerificationStatus(source=item.source).with_finding(Reason.UNREADABLE_FILE, f"无法读取：{exc}")]
    return verify_bytes(
        data, item.source, context.trust, decoder=context.decoder, today=context.today, profiles=context.profiles
    )


def crashed(unit: Unit, why: str) -> UnitResult:
    """The result for a unit of one file whose verification kept killing workers."""
    return UnitResult(
        unit,
        tuple((VerificationStatus(source=i.source).with_finding(Reason.UNREADABLE_FILE, why),) for i in unit.items),
    )


__all__ = ["Context", "Unit", "UnitResult", "build_id", "certkiosk_version", "make_units", "verify_unit"]
