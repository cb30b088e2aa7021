"""Test-only fault injection at named points of issuing (inert unless an environment variable asks).

``CERTKIOSK_TEST_CRASH_AT=POINT[:N]`` makes the process SIGKILL itself the N-th time (default the
first) it reaches POINT; ``CERTKIOSK_TEST_STOP_AT=POINT[:N]`` makes it SIGSTOP itself there (a
test then inspects the station and sends SIGCONT). The points are listed in :data:`POINTS` and
described in docs/record.md (``after_revoke``: certgen.station.revoking). With neither variable
set, :func:`fault_point` only reads the environment and returns. These exist so that tests can
kill a real issuing process at each step of the protocol; a station never sets them.
"""

from __future__ import annotations

import os
import signal

ENV_CRASH = "CERTKIOSK_TEST_CRASH_AT"
ENV_STOP = "CERTKIOSK_TEST_STOP_AT"
POINTS = ("after_allocate", "after_write", "after_commit", "before_rename", "after_rename", "after_revoke")
"""The issuing steps a test may stop or kill a process at, in order; and ``after_revoke``: a
revocation committed in the register, before the trust store learns it (certgen.station.revoking)."""

_counts: dict[str, int] = {}


def _wanted(spec: str | None, point: str, count: int) -> bool:
    if not spec:
        return False
    name, _, nth = spec.partition(":")
    return name == point and count == (int(nth) if nth else 1)


def fault_point(point: str) -> None:
    """Kill or stop this process here if the test environment asks for it; otherwise nothing."""
    crash, stop = os.environ.get(ENV_CRASH), os.environ.get(ENV_STOP)
    if not crash and not stop:
        return
    if point not in POINTS:  # pragma: no cover - a programming error
        raise ValueError(f"unknown fault point {point!r}; known: {', '.join(POINTS)}")
    _counts[point] = count = _counts.get(point, 0) + 1
    if _wanted(crash, point, count):
        os.kill(os.getpid(), signal.SIGKILL)
    if _wanted(stop, point, count):
        os.kill(os.getpid(), signal.SIGSTOP)
