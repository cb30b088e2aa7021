"""The station's two locks share one mechanism (certgen.station.filelock): re-entrant in the
holding thread; the issuing lock refuses another thread or process (naming the pid), the trust
lock waits for it or, asked not to wait, says it is held."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from certgen.exceptions import IssueBusy
from certgen.station.home import StationHome
from certgen.station.issuelock import issuing_lock
from certgen.station.revoking import trust_lock

ROOT = Path(__file__).resolve().parent.parent


def _in_thread(action):  # type: ignore[no-untyped-def]
    found: list[object] = []

    def run() -> None:
        try:
            found.append(action())
        except Exception as exc:  # handed back to the test
            found.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return found[0]


def test_the_issuing_lock_is_reentrant_and_refuses_another_thread(tmp_path: Path) -> None:
    path = tmp_path / "home" / "issue.lock"

    def try_lock() -> bool:
        with issuing_lock(path) as outermost:
            return outermost

    with issuing_lock(path) as outer:
        with issuing_lock(path) as inner:
            assert (outer, inner) == (True, False)
        assert path.read_text().strip().isdigit()  # the holder's pid
        refused = _in_thread(try_lock)
        assert isinstance(refused, IssueBusy) and "本程序中另一个发证任务正在运行" in str(refused)
    assert path.read_text() == ""
    assert _in_thread(try_lock) is True  # free again


def test_the_issuing_lock_names_the_process_that_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "issue.lock"
    code = (
        "import sys\nfrom pathlib import Path\nfrom certgen.station.issuelock import issuing_lock\n"
        f"with issuing_lock(Path({str(path)!r})):\n    print('held', flush=True); sys.stdin.readline()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(IssueBusy, match=f"另一个发证进程正在运行（pid {holder.pid}）"), issuing_lock(path):
            pass
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=60)
    with issuing_lock(path) as outermost:
        assert outermost


def test_the_trust_lock_is_reentrant_and_says_when_another_thread_holds_it(tmp_path: Path) -> None:
    home = StationHome(tmp_path, "test")

    def peek() -> bool:
        with trust_lock(home, wait=False) as held:
            return held

    with trust_lock(home) as outer, trust_lock(home) as inner, trust_lock(home, wait=False) as again:
        assert (outer, inner, again) == (True, True, True)
        assert _in_thread(peek) is False
    assert _in_thread(peek) is True
