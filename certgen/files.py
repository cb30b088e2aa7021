"""Small file helpers: write a file so that readers see the old one or the new one, never half."""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from certgen.exceptions import DiskFull

SQLITE_IOERR, SQLITE_FULL = 10, 13
NEARLY_FULL = 1024 * 1024
"""Free bytes under which an I/O error of SQLite is taken for a full disk (see :func:`is_disk_full`)."""


def is_disk_full(exc: BaseException, where: Path | None = None) -> bool:
    """Whether ``exc`` says the file system is full: ENOSPC or EDQUOT, SQLite's SQLITE_FULL, or
    (given the file's path) SQLite's I/O error on a file system with less than 1 MiB free, which
    is how SQLite reports failing to extend its shared-memory file on a full disk."""
    if isinstance(exc, DiskFull):
        return True
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    sqlite3 = sys.modules.get("sqlite3")  # an SQLite error means SQLite was imported: not imported here for it
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code == SQLITE_FULL or "database or disk is full" in str(exc):
            return True
        if code == SQLITE_IOERR and where is not None:
            folder = where if where.is_dir() else where.parent
            try:
                return shutil.disk_usage(folder).free < NEARLY_FULL
            except OSError:
                return False
    return False


PRIVATE_FILE = 0o600
"""Mode of every file certkiosk writes: certificates, reports and the register hold personal data."""


_WRITING_SUFFIX = ".tmp"
_WRITING = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}" + re.escape(_WRITING_SUFFIX))
"""The name :func:`atomic_write` writes ``name`` under until it renames it (``tempfile.mkstemp``
with the prefix and suffix below: eight random characters between them)."""


def written_name(name: str) -> str | None:
    """The file :func:`atomic_write` was writing when it left a file called ``name`` (a process
    killed halfway), or None when ``name`` is not such a file."""
    found = _WRITING.fullmatch(name)
    return found["name"] if found else None


@contextmanager
def atomic_write(path: Path, mode: int = PRIVATE_FILE) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file in the same folder, fsync it and rename it over.

    Readers see the old file or the new one, never half of one; on error the old file stays.
    A folder it creates is 0700 (not world-readable: certificates hold names and ID numbers).
    """
    with _disk_full_named(path):
        _make_folder(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_WRITING_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(exc) and not isinstance(exc, DiskFull):
            raise DiskFull(path) from None
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (where the file system allows it)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_in_place(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Write ``path`` itself, fsync it and its folder: for a file whose name is already the
    temporary one (a certificate form's ``.partial``, renamed once its number is committed).

    Unlike :func:`atomic_write`, an error (Ctrl-C, a full disk) leaves the file as far as it got:
    a signed form must not vanish before whoever abandons its number has revoked it (a copy may
    have been taken), and a file on disk is what tells the next recovery to do it if that is
    interrupted too. Whatever is at ``path`` before is removed, never written through. A folder
    it creates is 0700."""
    with _disk_full_named(path):
        _make_folder(path)
        # never through what is there (a symlink another user of a shared folder planted at the
        # name, to have a file of ours overwritten): it goes, and the file is made anew
        clear_name(path)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode), "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    fsync_folder(path.parent)


def clear_name(path: Path) -> None:
    """Remove the file or symlink at ``path``; anything else there (a folder another user of a
    shared output folder planted at a name certkiosk writes) is renamed aside, to
    ``<name>.planted-<random>``, so that the name is free and the station can go on issuing."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except IsADirectoryError:
        os.replace(path, path.with_name(f"{path.name}.planted-{os.urandom(4).hex()}"))


@contextmanager
def _disk_full_named(path: Path) -> Iterator[None]:
    """A full disk's OSError raised as :class:`DiskFull` naming ``path``."""
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(path) from None
        raise


def _make_folder(path: Path) -> None:
    """``path``'s folder, made 0700 if it is missing (certificates hold names and ID numbers)."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)


def write_bytes_atomic(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Atomically replace ``path`` with ``data`` (see :func:`atomic_write`)."""
    with atomic_write(path, mode) as fh:
        fh.write(data)
