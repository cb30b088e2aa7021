"""A verify worker keeps its freed image buffers for the next file (glibc), and changes nothing elsewhere."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from verify import memory

ROOT = Path(__file__).resolve().parent.parent

CHURN = """
import json, resource, sys
from verify.memory import reuse_freed_memory
tuned = reuse_freed_memory() if sys.argv[1] == "tuned" else False
page = 12 * 1024 * 1024  # a 200 dpi A4 page: 15 MB as pdfium's bitmap, 12 MB in RGB, 4 MB in grey
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):  # per file: the rendered page, its conversion and the decoder's copy, then all freed
    buffers = [b"\\x01" * page for _ in range(3)]
    del buffers
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"tuned": tuned, "faults": faults}))
"""


def _churn(mode: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, cwd=ROOT, check=True)
    result: dict[str, int] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the tuning applies to glibc only")
def test_a_tuned_process_reuses_a_freed_page_buffer_instead_of_faulting_it_in_again() -> None:
    default, tuned = _churn("default"), _churn("tuned")
    pages = 12 * 1024 * 1024 // 4096
    assert tuned["tuned"] and not default["tuned"]
    assert default["faults"] > 30 * pages  # glibc's defaults: the freed pages go back, each file faults anew
    assert tuned["faults"] < 6 * pages  # tuned: the first file's pages serve the next files


def test_elsewhere_nothing_is_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert memory.reuse_freed_memory() is False
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert memory.reuse_freed_memory() is False
