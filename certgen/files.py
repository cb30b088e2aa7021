"""Small file helpers: write a file so that readers see the old one or the new one, never half."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file in the same folder, fsync it and rename it over.

    Readers see the old file or the new one, never half of one; on error the old file stays.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Atomically replace ``path`` with ``data`` (see :func:`atomic_write`)."""
    with atomic_write(path, mode) as fh:
        fh.write(data)
