"""Archive verification on a Dask cluster: ``certkiosk verify ... --scheduler tcp://HOST:PORT``.

:class:`DaskExecutor` implements the same small interface as ``verify.executors.LocalExecutor``:
it submits work units (``verify.units``) to the cluster with a bounded number in flight, and
yields results as they finish (``as_completed``), never gathering them all at once. The run's
:class:`~verify.units.Context` (trust data, province profiles, decoder, date) is scattered to the
workers once; workers need certkiosk installed and the inputs under the same paths, but no
station home. ``distributed`` is imported only here and only when a scheduler is asked for:
without the ``cluster`` extra, verify works as before.

Faults: a lost worker's units are redone by Dask elsewhere (the runner counts each unit once);
a unit that keeps killing workers is split into single files, and a single file that does is
reported UNREADABLE_FILE; an unreachable scheduler and a worker with another certkiosk version
are :class:`~certgen.exceptions.ClusterError` messages.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from importlib import metadata
from types import TracebackType
from typing import Any

from certgen.exceptions import ClusterError, VersionMismatch
from verify.units import Context, Unit, UnitResult, build_id, certkiosk_version, crashed, examine_unit

INSTALL_HINT = "pip install 'certkiosk[cluster]'"
CONNECT_TIMEOUT = 10.0
"""Seconds to reach the scheduler, and to wait for its first worker."""
UNIT_SIZE = 64
"""Files per unit (fewer near the end of a run): at ~8 ms a scan, half a second of work, so even a
thousand cores send the scheduler only about two thousand tasks a second."""
WORKER_CONFIG: dict[str, object] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}
"""Dask settings for verification workers (docs/cluster.md). Dask's default trim threshold makes
glibc return every freed page-image buffer to the system and fault it in again for the next scan
(measured: +35% CPU per scan); the statistical profiler samples the working thread 100 times a second."""
CRASHED = "核验该文件时工作进程多次意外退出（文件可能损坏或为恶意构造）"


@dataclass(frozen=True)
class Scheduler:
    """Where to run: a running scheduler's address, or a local cluster of ``workers`` processes."""

    address: str | None
    """``tcp://HOST:PORT`` (any Dask address), or None for a local cluster."""
    workers: int = 0
    """Worker processes of the local cluster."""

    def __str__(self) -> str:
        return self.address or f"local:{self.workers}"


def parse_scheduler(text: str) -> Scheduler:
    """``tcp://HOST:PORT`` (also ``tls://``, ``ucx://`` ...) or ``local:N``."""
    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not count.isdigit() or not 1 <= int(count) <= 256:
            raise ClusterError(f"--scheduler {text}：local: 后应为 1-256 的工作进程数，例如 local:4")
        return Scheduler(None, int(count))
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme or not rest:
        raise ClusterError(f"--scheduler {text}：应为调度器地址（如 tcp://10.0.0.5:8786）或 local:N")
    return Scheduler(text)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"使用 --scheduler 需要安装 Dask：{INSTALL_HINT}") from None
    return distributed


class DaskExecutor:
    """Verify work units on a Dask cluster; a context manager that connects and disconnects."""

    def __init__(
        self, scheduler: Scheduler | str, *, unit_size: int = UNIT_SIZE, in_flight: int = 2,
        timeout: float = CONNECT_TIMEOUT,
    ) -> None:  # fmt: skip
        self.scheduler = parse_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
        self.unit_size = unit_size
        self.on_this_machine = self.scheduler.address is None
        """A local cluster's workers may read this station's state file; others are told what it holds."""
        self.in_flight = in_flight
        """Units in flight per worker thread: enough to keep workers busy, few enough to bound memory."""
        self.timeout = timeout
        self.client: Any = None
        self._cluster: Any = None
        self._workers = 0
        self._counted = 0.0

    # --- connecting ---------------------------------------------------------------------------
    def __enter__(self) -> DaskExecutor:
        distributed = _distributed()
        try:
            if self.scheduler.address is None:
                import dask

                with dask.config.set(WORKER_CONFIG):
                    self._cluster = distributed.LocalCluster(
                        n_workers=self.scheduler.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None, silence_logs=logging.ERROR,
                    )  # fmt: skip
                address = self._cluster.scheduler_address
            else:
                address = self.scheduler.address
            try:
                self.client = distributed.Client(address, timeout=self.timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ClusterError(
                    f"无法连接调度器 {self.scheduler}（{self.timeout:g} 秒内未连上）：请确认 dask scheduler 已启动、"
                    f"地址与端口正确且网络可达（{exc}）"
                ) from None
            self._check_scheduler()
            try:
                self.client.wait_for_workers(1, timeout=self.timeout)
            except (OSError, TimeoutError):
                raise ClusterError(
                    f"调度器 {self.scheduler} 上没有工作进程（等待 {self.timeout:g} 秒）："
                    f"请用 dask worker {address} 启动"
                ) from None
            self._check_versions()
        except BaseException:
            self._close()
            raise
        return self

    def _check_scheduler(self) -> None:
        """The scheduler unpickles the submitted tasks, which name certkiosk's classes: it needs the same code."""
        here = build_id()
        try:
            there = self.client.run_on_scheduler(build_id)
        except Exception as exc:  # whatever the scheduler's environment fails with, said in one line
            there = f"无法加载本机的 certkiosk 代码（{type(exc).__name__}: {exc}）"
        if there != here:
            raise VersionMismatch(
                f"调度器 {self.scheduler} 的 certkiosk 为 {there}，本机为 {here}：调度器所在机器也要安装同一份 "
                f"certkiosk（{INSTALL_HINT}）"
            )

    def _check_versions(self) -> None:
        """Every worker must run the client's certkiosk: before sending a single pickled unit."""
        mine = certkiosk_version()
        found = self.client.run(metadata.version, "certkiosk", on_error="return")
        for worker, version in sorted(found.items()):
            if isinstance(version, metadata.PackageNotFoundError):
                raise VersionMismatch(f"工作进程 {worker} 上没有安装 certkiosk：请在该机器上安装 {INSTALL_HINT}")
            if isinstance(version, BaseException):
                raise ClusterError(f"无法检查工作进程 {worker} 的 certkiosk 版本：{version}")
            if version != mine:
                raise VersionMismatch(
                    f"工作进程 {worker} 的 certkiosk 版本为 {version}，本机为 {mine}：请在所有机器上安装相同版本"
                )
        here = build_id()
        for worker, build in sorted(self.client.run(build_id, on_error="return").items()):
            if isinstance(build, BaseException) or build != here:
                what = f"无法加载本机的 certkiosk 代码（{build!r}）" if isinstance(build, BaseException) else build
                raise VersionMismatch(
                    f"工作进程 {worker} 的 certkiosk 为 {what}，本机为 {here}：请在所有机器上安装同一份 certkiosk"
                )

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._close()

    def _close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    @property
    def workers(self) -> int:
        """Worker threads in the cluster now (asked at most once a second)."""
        if self.client is not None and time.monotonic() - self._counted >= 1.0:
            self._workers = sum(self.client.nthreads().values())
            self._counted = time.monotonic()
        return self._workers

    # --- running ------------------------------------------------------------------------------
    def run(self, units: Iterator[Unit], context: Context) -> Generator[UnitResult, None, None]:
        if self.client is None:
            raise ClusterError("内部错误：DaskExecutor 未连接（请在 with 语句中使用）")
        distributed = _distributed()
        client = self.client
        run_id = uuid.uuid4().hex[:12]
        shared = client.scatter(context, broadcast=True, hash=False)
        pending: dict[str, tuple[Unit, Any]] = {}
        finished = distributed.as_completed(loop=client.loop)

        def submit(unit: Unit, attempt: str = "") -> None:
            future = client.submit(
                examine_unit, unit, shared, key=f"certkiosk-verify-{run_id}-{unit.id}{attempt}", pure=False
            )
            pending[future.key] = (unit, future)
            finished.add(future)

        def fill() -> None:
            limit = max(2, self.workers * self.in_flight)
            while len(pending) < limit:
                unit = next(units, None)
                if unit is None:
                    return
                submit(unit)

        try:
            fill()
            for future in finished:
                unit, _ = pending.pop(future.key)
                try:
                    result = future.result()
                except distributed.KilledWorker:
                    if len(unit.items) == 1:
                        yield crashed(unit, CRASHED)
                    else:  # find the one file that kills workers; the others are verified
                        for position, item in zip(unit.positions, unit.items, strict=True):
                            submit(Unit(position, (position,), (item,)), "-alone")
                    continue
                finally:
                    future.release()
                yield result
                fill()
        finally:
            if pending:
                client.cancel([f for _, f in pending.values()])
            pending.clear()
            shared.release()


__all__ = ["CONNECT_TIMEOUT", "INSTALL_HINT", "DaskExecutor", "Scheduler", "parse_scheduler"]
