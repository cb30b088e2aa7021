"""The station: its home and every path in it, the key store, the register, printing queues; `Station` is the facade."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from certgen.station.station import Station

__all__ = ["Station"]


def __getattr__(name: str) -> Any:
    # `from certgen.station import Station` loads the facade (keys, register, cryptography) when asked;
    # importing `certgen.station.home` alone, as the CLI and the UI do before drawing, does not
    if name == "Station":
        from certgen.station.station import Station

        return Station
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
