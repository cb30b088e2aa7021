"""The kiosk's operator PIN: a salted scrypt hash in the station home (mode 0600), and the delay
that grows after each wrong attempt.

Nothing here blocks: the kiosk asks :func:`lockout_seconds` how long to refuse further attempts
and uses a Textual timer for the wait (tests inject a delay function instead of waiting).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from certgen.exceptions import ConfigError
from certgen.files import write_bytes_atomic
from certgen.station.home import StationHome

MIN_LENGTH, MAX_LENGTH = 6, 64
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
"""scrypt cost (16 MiB of memory, tens of milliseconds per attempt)."""
SALT_BYTES = 16
MAX_DELAY = 300.0


def pin_path(home: StationHome) -> Path:
    """Where the PIN's hash is kept."""
    return home.kiosk_pin_path


def check_new_pin(pin: str) -> None:
    """ValueError stating the rule when ``pin`` cannot be an operator PIN."""
    if not MIN_LENGTH <= len(pin) <= MAX_LENGTH:
        raise ValueError(f"PIN 长度应为 {MIN_LENGTH}-{MAX_LENGTH} 个字符，收到 {len(pin)} 个")
    if any(ch.isspace() for ch in pin):
        raise ValueError("PIN 不能包含空格或换行")


def _hash(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=128 * 1024 * 1024, dklen=32)


def set_pin(home: StationHome, pin: str) -> Path:
    """Store a new PIN (salted scrypt hash, file mode 0600); returns the file written."""
    check_new_pin(pin)
    salt = secrets.token_bytes(SALT_BYTES)
    record = {
        "kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
        "salt": salt.hex(), "hash": _hash(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P).hex(),
    }  # fmt: skip
    home.ensure()
    path = pin_path(home)
    write_bytes_atomic(path, json.dumps(record).encode("utf-8"), mode=0o600)
    return path


def has_pin(home: StationHome) -> bool:
    """Whether an operator PIN is set."""
    return pin_path(home).is_file()


def check_pin(home: StationHome, pin: str) -> bool:
    """Whether ``pin`` is the operator PIN; ConfigError when none is set or the file is damaged."""
    path = pin_path(home)
    try:
        record = json.loads(path.read_bytes())
        salt, expected = bytes.fromhex(record["salt"]), bytes.fromhex(record["hash"])
        n, r, p = int(record["n"]), int(record["r"]), int(record["p"])
    except FileNotFoundError:
        raise ConfigError("未设置操作员 PIN：请先执行 certkiosk kiosk --set-pin") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"PIN 文件 {path} 已损坏（{exc}）：请重新执行 certkiosk kiosk --set-pin") from None
    if record.get("kdf") != "scrypt" or not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
        raise ConfigError(f"PIN 文件 {path} 的参数无效：请重新执行 certkiosk kiosk --set-pin")
    return hmac.compare_digest(_hash(pin, salt, n, r, p), expected)


def lockout_seconds(failures: int) -> float:
    """How long to refuse attempts after ``failures`` wrong PINs in a row: 1, 2, 4 … 300 seconds."""
    if failures <= 0:
        return 0.0
    return min(float(2 ** min(failures - 1, 16)), MAX_DELAY)


def pin_file_mode(home: StationHome) -> int:
    """The PIN file's permission bits (0o600 when written by :func:`set_pin`)."""
    return os.stat(pin_path(home)).st_mode & 0o777
