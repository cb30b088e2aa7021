"""Every bench script starts: its imports resolve against the current package.

The benches are not run by the suite (their figures belong in docs/performance.md), so a rename
in the package could break one unnoticed; ``bench/issue.py`` once failed on an import for a whole
session. Each script is started with ``--help``, which imports everything it measures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))


def test_every_bench_script_is_listed() -> None:
    assert {p.name for p in SCRIPTS} >= {"issue.py", "peer_issue.py", "archive.py", "startup.py", "alloc.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_script_starts(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{script.name} --help failed:\n{done.stderr[-2000:]}"
    assert "usage:" in done.stdout
