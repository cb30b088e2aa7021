"""证书印制流水码: the serial printed on a physical certificate blank (人社鉴发〔2021〕1号, optional).

A fact of the paper form, recorded in the register with it (one blank is used once); not part of
the certificate's record nor of its signed QR payload (docs/record.md).
"""

from __future__ import annotations

import re
import unicodedata

from certgen.cells import shown

PRINT_SERIAL_HEADER = "印制流水码"
"""The roster column (also accepted: 证书印制流水码, print_serial)."""
PRINT_SERIAL_HEADERS = (PRINT_SERIAL_HEADER, "证书印制流水码", "print_serial")
MIN_LENGTH, MAX_LENGTH = 4, 24
_FORM = re.compile(r"[0-9A-Z-]+")
SHOWN_LENGTH = 40
"""How much of a refused value a message repeats (a cell may hold thousands of characters)."""


def _as_typed(text: str) -> str:
    """A refused value as a message shows it: controls, bidi overrides and invisible characters
    written as escapes (certgen.cells.shown), cut to :data:`SHOWN_LENGTH` characters."""
    if len(text) > SHOWN_LENGTH:
        return f"{shown(text[:SHOWN_LENGTH])}…（共{len(text)}个字符）"
    return shown(text)


def normal_print_serial(value: object) -> str | None:
    """The serial as stored: NFKC (full-width digits from a Chinese input method become ASCII), upper
    case, trimmed; None when empty. ValueError (in Chinese, with the value) when it is not 4-24
    letters, digits or hyphens with at least one digit."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip().upper()
    if not text:
        return None
    seen = _as_typed(str(value))
    rule = f"印制流水码「{seen}」无效：应为{MIN_LENGTH}-{MAX_LENGTH}位字母、数字或连字符（至少含一位数字）"
    if not MIN_LENGTH <= len(text) <= MAX_LENGTH:
        raise ValueError(f"{rule}，实际为{len(text)}位")
    if not _FORM.fullmatch(text) or not any(c.isdigit() for c in text):
        typed = str(value).strip()  # the characters as the user typed them (a full-width ；, not ;)
        bad = "".join(dict.fromkeys(c for c in typed if not _FORM.fullmatch(unicodedata.normalize("NFKC", c).upper())))
        raise ValueError(f"{rule}，含有不允许的字符：{_as_typed(bad)}" if bad else f"{rule}，其中没有数字")
    return text


def blank_of(serial: str) -> str:
    """The blank a normalised serial names: hyphens only group its characters (LN-0001 is LN0001);
    the register's unique index on print_serials applies the same rule in SQL."""
    return serial.replace("-", "")
