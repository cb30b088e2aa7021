"""The sdist and the wheel carry everything certkiosk reads at run time.

Built as ``python -m build`` does it (sdist first, then the wheel from the unpacked sdist), from a
copy of the source so the checkout gets no build/ or egg-info folders, offline with the installed
setuptools. ``.ci/run`` goes further: it installs the wheel into a fresh virtualenv and runs the demo.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "certgen", "verify", "kiosk", "templates", "fonts")
RUN_TIME_DATA = {
    "certgen/assets/templates/liaoning-2020.toml",
    "certgen/assets/templates/national-2021.toml",
    "certgen/assets/fonts/LXGWWenKai-Regular.ttf",
    "certgen/assets/fonts/OFL-LXGWWenKai.txt",  # the font's licence, beside the font
    "certgen/profiles/liaoning.toml",
    "kiosk/app.tcss",
    "kiosk/demo_roster.csv",
}


def _build(backend_call: str, source: Path, out: Path) -> Path:
    code = f"import setuptools.build_meta as b; print(b.{backend_call}({str(out)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


def test_the_sdist_and_the_wheel_built_from_it_carry_the_run_time_data(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)

    sdist = _build("build_sdist", source, tmp_path / "dist")
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        in_sdist = {n.removeprefix(top + "/") for n in tar.getnames()}
        assert not [m.name for m in tar.getmembers() if m.issym()], "the sdist carries files, not links"
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+; Debian 12's 3.11.2 has no filters
            tar.extractall(tmp_path / "unpacked", filter="data")
        else:
            tar.extractall(tmp_path / "unpacked")  # our own sdist
    assert RUN_TIME_DATA | {"LICENSE"} <= in_sdist

    wheel = _build("build_wheel", tmp_path / "unpacked" / top, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert names >= RUN_TIME_DATA, sorted(RUN_TIME_DATA - names)
    assert {n.split(".dist-info/licenses/")[-1] for n in names if ".dist-info/licenses/" in n} == {
        "LICENSE",
        "fonts/OFL-LXGWWenKai.txt",
    }
    assert "License-Expression: Apache-2.0 AND OFL-1.1" in metadata
    assert not [n for n in names if n.startswith(("tests/", "templates/", "fonts/", "bench/"))]
