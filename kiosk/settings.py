"""Station settings kept in the home's ``settings.json`` (every key optional; defaults below).

``{"retention_years": 5, "kiosk_clear_seconds": 20}``: how long the kiosk log is kept (001 keeps
electronic data at least five years) and how long a verdict stays on the kiosk screen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from certgen.exceptions import ConfigError
from certgen.station.home import StationHome


@dataclass(frozen=True)
class StationSettings:
    """The station's settings."""

    retention_years: int = 5
    """Years the kiosk log keeps a check (older lines are pruned when the kiosk starts)."""
    kiosk_clear_seconds: float = 20.0
    """Seconds a verdict stays on the kiosk screen before it clears for the next person."""

    def __post_init__(self) -> None:
        if isinstance(self.retention_years, bool) or not isinstance(self.retention_years, int):
            raise ValueError(f"retention_years must be a whole number of years, got {self.retention_years!r}")
        if not 1 <= self.retention_years <= 100:
            raise ValueError(f"retention_years must be 1-100, got {self.retention_years}")
        seconds = self.kiosk_clear_seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= 3600:
            raise ValueError(f"kiosk_clear_seconds must be a number of seconds in (0, 3600], got {seconds!r}")


def settings_path(home: StationHome) -> Path:
    """Where the station's settings live."""
    return home.settings_path


def load_settings(home: StationHome) -> StationSettings:
    """The station's settings (defaults when there is no file); ConfigError naming a bad one."""
    path = settings_path(home)
    try:
        data: Any = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return StationSettings()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"站点设置文件 {path} 无法读取：{exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"站点设置文件 {path} 应为 JSON 对象")
    known = {f.name for f in fields(StationSettings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"站点设置文件 {path} 有未知的设置：{'、'.join(unknown)}（可用：{'、'.join(sorted(known))}）")
    try:
        return StationSettings(**data)
    except ValueError as exc:
        raise ConfigError(f"站点设置文件 {path} 有误：{exc}") from None
