"""Text that came from outside, made safe to show: on a terminal, in a spreadsheet cell.

Pure (standard library only), shared by verify (file names, signed names in its output and
reports) and issuing (roster and batch reports), so that there is one rule for each place.
"""

from __future__ import annotations

import unicodedata

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "|")
"""A spreadsheet cell starting with one of these may be read as a formula (CSV/XLSX injection)."""

_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
"""Controls (ESC, CR, LF, ...), format characters (bidi overrides, zero-width), surrogates
(undecodable bytes of a file name), private use, unassigned, line and paragraph separators."""


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(text: str) -> str:
    """``text`` with everything that could move the cursor, change colours, reorder the line or
    hide characters written as a visible escape (``\\x1b``, ``\\n``, ``\\u202e`` ...).

    Undecodable bytes of a file name (``surrogateescape``) come out as ``\\xNN``. Ordinary
    characters, CJK and the ideographic space included, are kept. The result is always valid
    UTF-8 and one line.
    """
    if text.isprintable() and text.isascii():
        return text
    out = []
    for ch in text:
        if ch == " " or ch == "\u3000" or unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
            out.append(ch)
        else:
            out.append(_escape(ch))
    return "".join(out)


def is_formula_like(value: str) -> bool:
    """Whether a spreadsheet may read ``value`` as a formula (XLSX writers then set quotePrefix)."""
    return value.startswith(FORMULA_STARTS)


def neutralise_cell(value: str) -> str:
    """A text cell for CSV or XLSX that a spreadsheet shows as text, never runs as a formula.

    A value starting with ``= + - @``, a tab, CR, LF or ``|`` gets a leading apostrophe (OWASP's
    advice for CSV injection); the apostrophe is what a person sees, so nothing is hidden.
    """
    if is_formula_like(value):
        return "'" + value
    return value


__all__ = ["FORMULA_STARTS", "is_formula_like", "neutralise_cell", "shown"]
