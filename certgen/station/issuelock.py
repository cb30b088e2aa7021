"""The station-wide issuing lock: one issuing run at a time per station home.

``fcntl.flock`` on ``issue.lock`` in the home, which holds the owner's pid. The lock is held for
a whole run (recover, plan, allocate, sign, write, commit, publish), so a second run can never
void or race the first one's in-flight numbers; the register's own unique result index is the
second, independent guard. Re-entrant within one process (a batch run issues under the lock
its caller already holds); a second thread of the same process is refused like a second process.
The kernel releases the lock when the process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from certgen.exceptions import IssueBusy


@dataclass
class _Held:
    fd: int
    depth: int
    thread: int


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


def _owner(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return "?"
    return text if text.isdigit() else "?"


@contextmanager
def issuing_lock(lock_path: Path) -> Iterator[bool]:
    """Hold the station's issuing lock; yields True for the outermost holder in this process.

    :class:`IssueBusy` ("另一个发证进程正在运行（pid N）") when another process or thread holds it.
    """
    path = lock_path.absolute()
    home_root = path.parent
    me = threading.get_ident()
    with _guard:
        held = _held.get(path)
        if held is not None:
            if held.thread != me:
                raise IssueBusy(
                    f"本程序中另一个发证任务正在运行（pid {os.getpid()}），请等它结束 / "
                    f"another issue run is in progress (pid {os.getpid()})"
                )
            held.depth += 1
            outermost = False
        else:
            home_root.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _owner(fd)
                os.close(fd)
                raise IssueBusy(
                    f"另一个发证进程正在运行（pid {pid}），请等它结束后再发证 / "
                    f"another issue run is in progress (pid {pid})"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            held = _held[path] = _Held(fd, 1, me)
            outermost = True
    try:
        yield outermost
    finally:
        with _guard:
            held.depth -= 1
            if held.depth == 0:
                del _held[path]
                os.ftruncate(held.fd, 0)
                fcntl.flock(held.fd, fcntl.LOCK_UN)
                os.close(held.fd)
