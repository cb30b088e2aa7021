"""An exclusive ``flock`` on a file of the station home, re-entrant in the thread that holds it.

The issuing lock (certgen.station.issuelock) and the trust-store lock (certgen.station.revoking)
are each one. The kernel releases a lock when its process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class _Held:
    fd: int
    """The descriptor the lock is held on."""
    depth: int
    """How many holders are nested in the holding thread."""
    thread: int
    """The holding thread."""


_held: dict[Path, _Held] = {}
"""The locks this process holds, by absolute path."""
_guard = threading.Lock()


@contextmanager
def file_lock(
    path: Path,
    *,
    wait: bool,
    on_acquire: Callable[[int], None] | None = None,
    on_release: Callable[[int], None] | None = None,
) -> Iterator[bool | None]:
    """Hold an exclusive lock on ``path`` (created 0600; OSError when it cannot be opened).

    Yields True to the outermost holder, False to a holder nested in the same thread, and None,
    holding nothing, when the lock is held elsewhere and ``wait`` is False: by another process, or
    by another thread of this one. With ``wait``, another's hold is waited for. ``on_acquire(fd)``
    runs once the outermost holder has the lock, ``on_release(fd)`` just before it lets go.
    """
    path, me = path.absolute(), threading.get_ident()
    with _guard:
        held = _held.get(path)
        nested = held is not None and held.thread == me
        if nested:
            assert held is not None
            held.depth += 1
    if nested:
        assert held is not None
        try:
            yield False
        finally:
            with _guard:
                held.depth -= 1
        return
    if held is not None and not wait:  # another thread of this process holds it
        yield None
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            locked = False
        if not locked:
            yield None
            return
        if on_acquire is not None:
            on_acquire(fd)
        with _guard:
            _held[path] = _Held(fd, 1, me)
        try:
            yield True
        finally:
            with _guard:
                del _held[path]
            if on_release is not None:
                on_release(fd)
    finally:
        os.close(fd)  # lets go of the lock


def held_in_this_process(path: Path) -> bool:
    """Whether a thread of this process holds the lock on ``path``."""
    with _guard:
        return path.absolute() in _held
