"""The station-wide issuing lock: one issuing run at a time per station home.

``fcntl.flock`` on ``issue.lock`` in the home, which holds the owner's pid. The lock is held for
a whole run (recover, plan, allocate, sign, write, commit, publish), so a second run can never
void or race the first one's in-flight numbers; the register's own unique result index is the
second, independent guard. Re-entrant within one process (a batch run issues under the lock
its caller already holds); a second thread of the same process is refused like a second process.
The kernel releases the lock when the process dies, however it dies.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from certgen.exceptions import IssueBusy
from certgen.station.filelock import file_lock, held_in_this_process


def _owner(path: Path) -> str:
    """The pid the holder wrote into the lock file ("?" when it cannot be read)."""
    try:
        text = path.read_bytes()[:32].decode("ascii", "replace").strip()
    except OSError:
        return "?"
    return text if text.isdigit() else "?"


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)


@contextmanager
def issuing_lock(lock_path: Path) -> Iterator[bool]:
    """Hold the station's issuing lock; yields True for the outermost holder in this process.

    :class:`IssueBusy` ("另一个发证进程正在运行（pid N）") when another process or thread holds it.
    """
    path = lock_path.absolute()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with file_lock(path, wait=False, on_acquire=_write_pid, on_release=lambda fd: os.ftruncate(fd, 0)) as held:
        if held is None and held_in_this_process(path):
            raise IssueBusy(
                f"本程序中另一个发证任务正在运行（pid {os.getpid()}），请等它结束 / "
                f"another issue run is in progress (pid {os.getpid()})"
            )
        if held is None:
            pid = _owner(path)
            raise IssueBusy(
                f"另一个发证进程正在运行（pid {pid}），请等它结束后再发证 / "
                f"another issue run is in progress (pid {pid})"
            )
        yield held
