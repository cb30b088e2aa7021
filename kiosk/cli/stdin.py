"""Standard input of ``certkiosk verify``: a keyboard-wedge scanner, one QR text per line.

Each line is answered as it arrives (a scanner's operator waits at the counter), bytes are read
raw so that a line that is not UTF-8 gets its own message instead of a traceback, and an input
with nothing on it says so.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import BinaryIO

import click

from certgen.number import ProvinceProfile
from certgen.trust import TrustBundle
from verify.check import clean_scanned_text, verify_text
from verify.reasons import Reason
from verify.status import VerificationStatus

MAX_LINE = 8192
"""Longest line read (a QR text is at most 4,096 characters)."""


def verify_lines(
    stream: BinaryIO,
    trust: TrustBundle,
    profiles: dict[str, ProvinceProfile] | None,
    say: Callable[[VerificationStatus], None],
    *,
    today: _dt.date | None = None,
) -> bool:
    """Verify each line as it comes; True when at least one was read and all were valid."""
    seen = 0
    all_valid = True
    number = 0
    while True:
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            break
        number += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the overlong line
                raw = stream.readline(MAX_LINE + 1)
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
