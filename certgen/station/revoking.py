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

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from certgen.exceptions import TrustError
from certgen.faults import fault_point
from certgen.files import write_bytes_atomic
from certgen.station.filelock import file_lock
from certgen.station.home import StationHome
from certgen.trust import TrustBundle, TrustStore

if TYPE_CHECKING:
    from certgen.station.register import Register


@contextmanager
def trust_lock(home: StationHome, *, wait: bool = True) -> Iterator[bool]:
    """Hold the station's trust-store lock (certgen.station.filelock: re-entrant in one thread).
    Yields True; with ``wait=False`` yields False at once, holding nothing, while another process
    or thread holds it."""
    path = home.trust_lock_path
    with contextlib.ExitStack() as stack:
        try:
            held = stack.enter_context(file_lock(path, wait=wait))
        except OSError as exc:
            raise TrustError(f"无法打开信任库锁文件 {path.absolute()}：{exc.strerror}") from None
        yield held is not None


@contextmanager
def revoking(home: StationHome, trust: TrustStore, reg: Register) -> Iterator[None]:
    """Around a register transaction that may revoke (made inside): the marker is durable before
    it, and the trust store learns every revocation of the register after it, also when the
    transaction failed (a refusal, Ctrl-C): only a killed process leaves the marker."""
    with trust_lock(home):
        write_bytes_atomic(home.trust_behind_path, b"the trust store may lack a revocation of the register\n")
        try:
            yield
        except BaseException:
            with contextlib.suppress(
                Exception
            ):  # the error in hand is the one reported (if this fails, the marker stays)
                learn_revocations(home, trust, reg)
            raise
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
    _learnt[home.root.absolute()] = reg.revocation_count()
    return merged


_learnt: dict[Path, int] = {}
"""Per station home: how many revocations its register held when this process last made the
trust store learn them all (:func:`learn_if_new`)."""


def learn_if_new(home: StationHome, trust: TrustStore, reg: Register) -> None:
    """The trust store learns the register's revocations when the register holds revocations this
    process has not passed on yet (the first call in a process always looks): a gap no marker
    tells of (a station upgraded from a version that could leave one, a marker lost) is closed by
    the next issuing run. Costs one count query when nothing changed."""
    if _learnt.get(home.root.absolute()) != reg.revocation_count():
        with trust_lock(home):
            learn_revocations(home, trust, reg)


def caught_up(home: StationHome, trust: TrustStore) -> TrustBundle:
    """The trust store, after finishing what a process killed between a revocation's commit and
    the trust store's update left (only a file test when nothing was left). While another
    process holds the trust-store lock (a revocation under way, perhaps stopped), the register's
    revocations are added in memory for this verification instead of waiting."""
    if not home.trust_behind_path.exists() or not home.register_path.exists():
        return trust.load()
    from certgen.station.register import Register

    with Register(home.register_path) as reg, trust_lock(home, wait=False) as held:
        if not held:
            return trust.load().with_revocations(reg.revocations())
        return learn_revocations(home, trust, reg)
