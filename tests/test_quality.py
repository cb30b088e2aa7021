"""Project-wide rules: lint and types clean, and verify / certgen stay free of heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("reportlab", "pikepdf", "segno", "textual")


def _imported_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return {m.split(".")[0] for m in json.loads(out.stdout)}


def test_importing_verify_pulls_in_no_rendering_or_ui_library() -> None:
    modules = sorted(p.stem for p in (ROOT / "verify").glob("*.py") if p.stem != "__init__")
    statement = "; ".join(["import verify"] + [f"import verify.{m}" for m in modules])
    loaded = _imported_after(statement)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


PURE_CORE = (
    "assets",
    "bounded",
    "bundle",
    "cells",
    "docsign",
    "exceptions",
    "faults",
    "files",
    "idtypes",
    "labels",
    "levels",
    "number",
    "payload",
    "pool",
    "printserial",
    "profiles",
    "provinces",
    "record",
    "secret",
    "trust",
)


def test_the_pure_core_is_every_flat_module_of_certgen() -> None:
    flat = {p.stem for p in (ROOT / "certgen").glob("*.py") if p.stem != "__init__"} | {"profiles", "assets"}
    assert flat == set(PURE_CORE), "a new flat certgen module belongs to the pure core, or in a sub-package"


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_pure_certgen_modules_import_no_rendering_or_ui_library(module: str) -> None:
    loaded = _imported_after(f"import certgen.{module}")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_certgen_and_verify_never_import_textual() -> None:
    for package in ("certgen", "verify"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text("utf-8")
            assert "import textual" not in text and "from textual" not in text, path


def test_the_architecture_contracts_are_kept() -> None:
    """import-linter's contracts in pyproject.toml: the layers, and verify / the core kept light."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True, cwd=ROOT, check=False)


def test_ruff_is_clean() -> None:
    lint = _run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_error_is_defined_in_certgen_exceptions() -> None:
    """pikepdf's model: one module defines every error, so callers have one import point."""
    code = (
        "import importlib, inspect, json, pkgutil, sys\n"
        "found = []\n"
        "for pkg in ('certgen', 'verify', 'kiosk'):\n"
        "    root = importlib.import_module(pkg)\n"
        "    for info in pkgutil.walk_packages(root.__path__, pkg + '.'):\n"
        "        if info.name.endswith('__main__'):\n"
        "            continue\n"
        "        module = importlib.import_module(info.name)\n"
        "        for name, obj in vars(module).items():\n"
        "            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:\n"
        "                found.append(info.name + '.' + name)\n"
        "print(json.dumps(found))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    outside = [name for name in json.loads(out.stdout) if not name.startswith("certgen.exceptions.")]
    assert outside == []
