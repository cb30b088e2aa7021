"""A closed standard output (``certkiosk ... | head``) ends a command quietly, never with "Broken pipe"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from certgen.station import Station
from certgen.station.register import Register
from certgen.trust import PublicKeyInfo
from kiosk.cli.base import BROKEN_PIPE_EXIT
from tests.conftest import PASSPHRASE
from tests.test_batch import roster_rows, write_csv

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), CERTKIOSK_PASSPHRASE=PASSPHRASE)


def test_verify_piped_into_head_exits_quietly(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path) -> None:
    station, _ = keyed_station
    texts = tmp_path / "scans.txt"
    texts.write_text("".join(f"NOT-A-CERTIFICATE-{i}\n" for i in range(3000)), "utf-8")  # > 64 KiB of output
    script = (
        f"{sys.executable} -m kiosk --home '{station.home.root}' verify < '{texts}' | head -n 1; "
        'echo "status=${PIPESTATUS[0]}" >&2'
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=120)
    assert len(done.stdout.splitlines()) == 1
    assert done.stderr.strip() == f"status={BROKEN_PIPE_EXIT}", done.stderr
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr


def _closed_pipe_run(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run certkiosk with its stdout a pipe whose reading end is already closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "kiosk", *args], stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env=_env(), timeout=300,
        )  # fmt: skip
    finally:
        os.close(write_end)


def test_issue_and_verify_into_a_closed_pipe_exit_quietly(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path, photo_dir: Path
) -> None:
    station, _ = keyed_station
    roster = write_csv(tmp_path / "r.csv", roster_rows(2), "utf-8")
    home = ["--home", str(station.home.root)]
    issued = _closed_pipe_run([*home, "issue", str(roster), "--photos", str(photo_dir), "--out", str(tmp_path / "o")])
    assert issued.returncode == BROKEN_PIPE_EXIT, issued.stderr
    assert issued.stderr == ""
    with Register(station.home.register_path) as reg:
        assert reg.counts()["pending"] == 0  # nothing left half-done
    checked = _closed_pipe_run([*home, "verify", "--text", "NOT-A-CERTIFICATE"])
    assert checked.returncode == BROKEN_PIPE_EXIT and checked.stderr == ""
