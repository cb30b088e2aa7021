"""The kiosk log: one JSON line per check (time, certificate number, verdict, reasons, channel).

Never the holder's name or ID number, and never a scanned file's name (scanners name files after
people). Lines older than the station's retention setting are pruned when the kiosk starts.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from certgen.files import write_bytes_atomic
from certgen.station.home import StationHome
from verify.status import VerificationStatus


def log_path(home: StationHome) -> Path:
    """Where the kiosk log is kept."""
    return home.kiosk_log_path


def _utc(now: _dt.datetime | None) -> _dt.datetime:
    return (now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)


def entry(result: VerificationStatus, channel: str, now: _dt.datetime | None = None) -> dict[str, object]:
    """What the log keeps of one result."""
    return {
        "time": _utc(now).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "channel": channel,
        "number": result.claims.number if result.claims is not None and result.intact else None,
        "verdict": result.status,
        "reasons": [f.reason.value for f in result.findings],
    }


class KioskLog:
    """Append-only JSON lines in the station home."""

    def __init__(self, home: StationHome) -> None:
        self.path = log_path(home)

    def append(self, result: VerificationStatus, channel: str, now: _dt.datetime | None = None) -> None:
        """Add one line (a single ``write`` on an ``O_APPEND`` file: lines never interleave)."""
        line = json.dumps(entry(result, channel, now), ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def entries(self) -> list[dict[str, object]]:
        """Every readable line."""
        try:
            lines = self.path.read_text("utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict):
                out.append(item)
        return out

    def prune(self, years: int, now: _dt.datetime | None = None) -> int:
        """Drop lines older than ``years``; returns how many were dropped (the file is replaced atomically)."""
        try:
            lines = self.path.read_text("utf-8").splitlines()
        except FileNotFoundError:
            return 0
        current = _utc(now)
        try:
            cutoff = current.replace(year=current.year - years)
        except ValueError:  # 29 February
            cutoff = current.replace(year=current.year - years, day=28)
        kept = []
        for line in lines:
            when = _time_of(line)
            if when is None or when >= cutoff:
                kept.append(line)
        if len(kept) == len(lines):
            return 0
        write_bytes_atomic(self.path, "".join(k + "\n" for k in kept).encode("utf-8"), mode=0o600)
        return len(lines) - len(kept)


def _time_of(line: str) -> _dt.datetime | None:
    """A line's time, or None when it has none that parses (kept: never drop what cannot be dated)."""
    try:
        value = json.loads(line).get("time")
        return _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(_dt.UTC)
    except (json.JSONDecodeError, AttributeError, ValueError, TypeError):
        return None
