"""Spreadsheet cells safe to open: the one place CSV/formula injection is neutralised.

A cell whose text begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken by
Excel, WPS and LibreOffice as a formula (``=HYPERLINK(...)``, ``cmd|'/C calc'!A0``). Following
the OWASP CSV-injection guidance, such text is prefixed with a single quote in CSV files; in XLSX
files the value is stored as a string (never a formula) with Excel's quote-prefix flag, so the
cell shows exactly what the roster said and stays text when edited.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet treat a cell as a formula."""


def is_formula_like(value: str) -> bool:
    """Whether a spreadsheet would read ``value`` as a formula."""
    return value.startswith(FORMULA_STARTS)


def neutralise_cell(value: str) -> str:
    """``value`` as a CSV cell that no spreadsheet evaluates: formula-like text gets a leading ``'``."""
    return "'" + value if is_formula_like(value) else value
