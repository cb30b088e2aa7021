"""Executors: where an archive run's work units are examined.

An executor takes a lazy iterator of :class:`~verify.units.Unit` and yields a
:class:`~verify.units.UnitResult` per unit as units finish, with a bounded number in flight, so
neither memory nor the queue grows with the archive. :class:`LocalExecutor` is a process pool on
this machine (``certgen.pool``: workers stop with the run, a crashing file is isolated; inline
with one worker); ``verify.cluster.DaskExecutor`` sends the same units to a Dask cluster. The
runner does not know which one it talks to.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Protocol

from certgen.pool import WorkerCrashed, imap
from verify.units import Context, Unit, UnitResult, crashed, examine_unit


class Executor(Protocol):
    """Runs units, yields their results as they finish (in any order)."""

    unit_size: int
    """Files per unit this executor works best with."""
    on_this_machine: bool
    """Whether the workers run on this machine (and may read this station's state file)."""

    @property
    def workers(self) -> int:
        """How many worker processes do the work now (shown on the progress bar)."""
        ...

    def run(self, units: Iterator[Unit], context: Context) -> Generator[UnitResult, None, None]:
        """Examine ``units`` under ``context``; every unit's result is yielded at least once."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


_PROCESS_CONTEXT: list[Context] = []


def _set_context(context: Context) -> None:
    _PROCESS_CONTEXT[:] = [context]
    if context.memory_bytes:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = context.memory_bytes if hard == resource.RLIM_INFINITY else min(context.memory_bytes, hard)
        if soft == resource.RLIM_INFINITY or cap < soft:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _examine_in_process(unit: Unit) -> UnitResult:
    return examine_unit(unit, _PROCESS_CONTEXT[0])


class LocalExecutor:
    """A pool of processes on this machine (``--workers``); inline with one worker.

    Units are single files by default: ``certgen.pool.imap`` re-runs what a dying worker had in
    flight one unit at a time, so a file that kills its process is reported alone.
    """

    def __init__(self, workers: int, *, unit_size: int = 1, in_flight: int = 4, inline: bool | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._workers = workers
        self.unit_size = unit_size
        self.in_flight = in_flight
        """Units in flight per worker."""
        self.on_this_machine = True
        self.inline = workers == 1 if inline is None else inline
        """Examine in this process (the default for one worker) rather than in a pool."""

    @property
    def workers(self) -> int:
        return self._workers

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def run(self, units: Iterator[Unit], context: Context) -> Generator[UnitResult, None, None]:
        if self.inline:
            for unit in units:
                yield examine_unit(unit, context)
            return
        outcomes = imap(
            _examine_in_process, units, workers=self._workers, initializer=_set_context, initargs=(context,),
            window=self._workers * self.in_flight,
        )  # fmt: skip
        for unit, outcome in outcomes:
            yield crashed(unit, outcome.detail) if isinstance(outcome, WorkerCrashed) else outcome


__all__ = ["Executor", "LocalExecutor"]
