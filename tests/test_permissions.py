"""Permissions: the home is 0700 and every file with personal data or keys 0600, whoever made the folder."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from certgen.exceptions import ConfigError
from certgen.issuing.issuer import Issuer
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.station.register import Register
from tests.conftest import FILING, INSTITUTION, PASSPHRASE, make_record

ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_home_created_0755_by_someone_else_ends_up_private(tmp_path: Path, loose_umask: None) -> None:
    root = tmp_path / "home"
    root.mkdir(mode=0o755)
    (root / "keys").mkdir(mode=0o755)
    station = Station(StationHome(root, "--home"))
    station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        issued = issuer.issue(reg, make_record())
        wal = root / "register.sqlite-wal"
        shm = root / "register.sqlite-shm"
        assert wal.exists() and shm.exists()  # while the register is open
        assert mode(wal) == mode(shm) == 0o600
    assert mode(root) == mode(root / "keys") == 0o700
    assert mode(root / "register.sqlite") == 0o600
    assert mode(root / "trust.json") == 0o600
    assert {mode(p) for p in (root / "keys").iterdir()} == {0o600}  # the QR key and the PDF-signing key
    assert mode(issued.path) == 0o600 and mode(issued.path.parent) == 0o700  # the PDF with a name and ID


def test_an_existing_world_readable_register_is_tightened(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "register.sqlite"
    with Register(path):
        pass
    path.chmod(0o644)
    journal = tmp_path / "register.sqlite-journal"
    journal.write_bytes(b"")
    journal.chmod(0o644)
    with Register(path):
        assert mode(path) == 0o600 and mode(journal) == 0o600


def test_a_shared_folder_is_not_taken_over(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(ConfigError, match="是共享目录"):
        StationHome(shared, "--home").ensure()
    assert mode(shared) == 0o1777


def test_batch_reports_and_the_command_line_write_private_files(tmp_path: Path, photo_dir: Path) -> None:
    from tests.test_batch import roster_rows, write_csv

    home = tmp_path / "h"
    home.mkdir(mode=0o755)
    env = dict(os.environ, PYTHONPATH=str(ROOT), CERTKIOSK_PASSPHRASE=PASSPHRASE)
    kiosk = [sys.executable, "-m", "kiosk", "--home", str(home)]
    subprocess.run([*kiosk, "keys", "new", "--institution", FILING, "--name", INSTITUTION, "--valid-from",
                    "2020-01-01"], check=True, env=env, cwd=ROOT, capture_output=True)  # fmt: skip
    roster = write_csv(tmp_path / "r.csv", roster_rows(2), "utf-8")
    done = subprocess.run([*kiosk, "issue", str(roster), "--photos", str(photo_dir), "--out", str(tmp_path / "out")],
                          env=env, cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = [p for p in (tmp_path / "out").rglob("*")]
    assert {p.suffix for p in written if p.is_file()} >= {".pdf", ".csv", ".xlsx", ".json"}
    assert {oct(mode(p)) for p in written if p.is_file()} == {oct(0o600)}
    assert {oct(mode(p)) for p in written if p.is_dir()} == {oct(0o700)}
    assert mode(home) == 0o700 and mode(home / "register.sqlite") == 0o600
