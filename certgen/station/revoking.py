"""A revocation reaches the trust store even when the process dies between the two writes.

The register (SQLite) and the trust store (``trust.json``) are two files: no one commit changes
both. The register's transaction decides; then the trust store learns the revocation, and the
trust store is what this station verifies with and what ``trust export`` signs for every other
verifier. A process killed between the two (SIGKILL, a power cut, Ctrl-C at the wrong moment)
would leave a certificate revoked in the register and **valid** everywhere else.

So :func:`revoking` makes a marker (``trust-behind`` in the station home) durable before the
register's commit, and removes it only once the trust store holds every revocation of the
register. Whoever finds the marker next finishes the job: an issuing run's recovery, a
verification on this station (:func:`caught_up`), ``trust export``. The trust store is read,
changed and written under a lock (``trust.lock``), so that two processes never each write it
without the other's addition.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from certgen.exceptions import TrustError
from certgen.faults import fault_point
from certgen.files import write_bytes_atomic
from certgen.station.home import StationHome
from certgen.trust import TrustBundle, TrustStore

if TYPE_CHECKING:
    from certgen.station.register import Register


@contextmanager
def trust_lock(home: StationHome) -> Iterator[None]:
    """Hold the station's trust-store lock (``flock``; the kernel releases it when the process dies)."""
    try:
        fd = os.open(home.trust_lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise TrustError(f"无法打开信任库锁文件 {home.trust_lock_path}：{exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def revoking(home: StationHome, trust: TrustStore, reg: Register) -> Iterator[None]:
    """Around a register transaction that may revoke (made inside): the marker is durable before
    it, and the trust store learns every revocation of the register after it. An error inside
    leaves the marker (a commit may have happened): the next :func:`caught_up` finishes."""
    with trust_lock(home):
        write_bytes_atomic(home.trust_behind_path, b"the trust store may lack a revocation of the register\n")
        yield
        fault_point("after_revoke")
        learn_revocations(home, trust, reg)


def learn_revocations(home: StationHome, trust: TrustStore, reg: Register) -> TrustBundle:
    """Under :func:`trust_lock`: every revocation of the register added to the trust store (saved
    when one was missing), then the marker removed; returns the trust bundle."""
    store = trust.load()
    merged = store.with_revocations(reg.revocations())
    if len(merged.revocations) != len(store.revocations):
        trust.save(merged)
    home.trust_behind_path.unlink(missing_ok=True)  # not fsync'd: a marker a power cut brings back only syncs again
    return merged


def caught_up(home: StationHome, trust: TrustStore) -> TrustBundle:
    """The trust store, after finishing what a process killed between a revocation's commit and
    the trust store's update left (only a file test when nothing was left)."""
    if not home.trust_behind_path.exists():
        return trust.load()
    with trust_lock(home):
        if home.trust_behind_path.exists() and home.register_path.exists():
            from certgen.station.register import Register

            with Register(home.register_path) as reg:
                return learn_revocations(home, trust, reg)
        return trust.load()
