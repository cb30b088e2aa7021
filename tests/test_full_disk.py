"""A full disk: every command says so, names the file, and leaves the register consistent.

The home sits on a real 4 MiB tmpfs (mounted by the test when it may, i.e. as root); the
simulated ENOSPC test below runs everywhere.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from certgen.exceptions import DiskFull
from certgen.files import write_bytes_atomic
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.station.register import Register
from tests.conftest import FILING, INSTITUTION, PASSPHRASE
from tests.test_batch import roster_rows, write_csv

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    """Write a file until the file system is full."""
    filler = folder / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), CERTKIOSK_PASSPHRASE=PASSPHRASE)
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "--home", str(home), *args], capture_output=True, text=True, cwd=ROOT,
        env=env, timeout=300,
    )  # fmt: skip


def _assert_reported(done: subprocess.CompletedProcess[str], path: Path) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "磁盘已满" in done.stderr and str(path) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "OperationalError" not in done.stderr


def test_a_full_home_is_reported_and_the_register_stays_consistent(
    small_fs: Path, tmp_path: Path, photo_dir: Path
) -> None:
    home = small_fs / "home"
    station = Station(StationHome(home, "--home").ensure())
    station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    rows = roster_rows(4)
    first = write_csv(tmp_path / "first.csv", rows[:3], "utf-8")
    done = _run(home, "issue", str(first), "--photos", str(photo_dir), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    pdf = next((tmp_path / "out").rglob("*.pdf"))
    with Register(home / "register.sqlite") as reg:
        before = reg.counts()
        number = reg.find("")[0].number

    filler = _fill(small_fs)
    second = write_csv(tmp_path / "second.csv", rows[:1] + rows[3:], "utf-8")
    register = home / "register.sqlite"
    _assert_reported(_run(home, "issue", str(second), "--photos", str(photo_dir), "--out", str(tmp_path / "o2")),
                     register)  # fmt: skip
    _assert_reported(_run(home, "register", "revoke", "--certificate", number, "--reason", "信息有误"), register)
    done = _run(home, "verify", str(pdf))
    assert done.returncode == 2 and "磁盘已满" in done.stderr and str(home) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr

    filler.unlink()
    check = _run(home, "register", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    with Register(register) as reg:
        assert reg.counts() == before  # nothing half-written, nothing lost
        assert reg.revocations() == []


def test_a_simulated_enospc_names_the_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trust.json"
    write_bytes_atomic(path, b"old")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DiskFull, match=f"磁盘已满：无法写入 {path}") as info:
        write_bytes_atomic(path, b"new")
    assert isinstance(info.value, OSError)  # callers that handle failed writes still do
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["trust.json"]


def test_sqlite_full_in_the_register_is_a_clear_error(tmp_path: Path) -> None:
    """SQLite's own "database or disk is full" (here: its page limit) is reported, and rolled back."""
    from tests.conftest import make_record, resident_id

    path = tmp_path / "register.sqlite"
    with Register(path) as reg:
        pages = reg._db.execute("PRAGMA page_count").fetchone()[0]
        reg._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(DiskFull, match=f"磁盘已满：无法写入 {path}"):
            for i in range(200):
                reg.allocate(make_record(id_number=resident_id(i)), FILING)
        allocated = reg.counts()["pending"]
        reg._db.execute("PRAGMA max_page_count = 1000000")
        assert reg.check() == []
        assert reg.counts()["pending"] == allocated
