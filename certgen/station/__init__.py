"""The station: its home and every path in it, the key store, the register, printing queues; `Station` is the facade."""

from __future__ import annotations

from certgen.station.station import Station

__all__ = ["Station"]
