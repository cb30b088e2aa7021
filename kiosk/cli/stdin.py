"""Standard input of ``certkiosk verify``: a keyboard-wedge scanner, one QR text per line.

Each line is answered as it arrives (a scanner's operator waits at the counter), bytes are read
raw so that a line that is not UTF-8 gets its own message instead of a traceback, and an input
with nothing on it says so.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

import click

from certgen.number import ProvinceProfile
from certgen.trust import TrustBundle
from verify.check import clean_scanned_text, verify_text
from verify.reasons import Reason
from verify.status import VerificationStatus

MAX_LINE = 8192
"""Longest line read (a QR text is at most 4,096 characters)."""


def scanned_lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """Each line of ``stream`` as soon as its end arrives: ended by LF, CR or CRLF (a scanner's
    suffix is often a lone CR, which ``readline`` would not end a line at, so that scans would run
    together and wait for the stream to end). None for a line longer than :data:`MAX_LINE` bytes,
    whose rest is skipped; what follows the last line end is a line too."""
    read = getattr(stream, "read1", stream.read)  # what is there, without waiting for a full block
    pending = b""
    skipping = after_cr = False
    while chunk := read(65536):
        pending += chunk
        start = 0  # where the next line begins (the rest is cut off once, not at every line)
        for end in _LINE_END.finditer(pending):
            line, token = pending[start : end.start()], end.group()
            start = end.end()
            if after_cr and token == b"\n" and not line and not skipping:  # the LF of a CRLF split across reads
                after_cr = False
                continue
            after_cr = token == b"\r"
            if skipping:
                skipping = False
            else:
                yield line if len(line) <= MAX_LINE else None
        pending = pending[start:]
        if len(pending) > MAX_LINE:
            if not skipping:
                yield None
            pending, skipping = b"", True
    if pending and not skipping:
        yield pending if len(pending) <= MAX_LINE else None


_LINE_END = re.compile(rb"\r\n|\r|\n")


def verify_lines(
    stream: BinaryIO,
    trust: TrustBundle,
    profiles: dict[str, ProvinceProfile] | None,
    say: Callable[[VerificationStatus], None],
    *,
    today: _dt.date | None = None,
) -> bool:
    """Verify each line as it comes (:func:`scanned_lines`); True when at least one was read and
    all were valid."""
    seen = 0
    all_valid = True
    for number, raw in enumerate(scanned_lines(stream), 1):
        if raw is None:
            result = VerificationStatus(source=f"stdin:{number}").with_finding(
                Reason.MALFORMED, f"这一行超过 {MAX_LINE} 字节，不是证书二维码"
            )
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                result = VerificationStatus(source=f"stdin:{number}").with_finding(
                    Reason.NOT_OUR_FORMAT,
                    f"这一行不是有效的 UTF-8 文本（第{exc.start + 1}个字节为 0x{raw[exc.start]:02x}）："
                    "请检查扫码枪的编码或键盘布局设置",
                )
            else:
                if not text.strip():
                    continue
                result = verify_text(
                    clean_scanned_text(text), trust, source=f"stdin:{number}", profiles=profiles, today=today
                )
        seen += 1
        all_valid = all_valid and result.valid
        say(result)
    if not seen:
        click.echo("标准输入中没有读到任何二维码文本（输入为空或只有空行）。", err=True)
        return False
    return all_valid
