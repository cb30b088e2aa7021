"""Executors: where an archive run's work units are verified.

An executor takes a lazy iterator of :class:`~verify.units.Unit` and yields a
:class:`~verify.units.UnitResult` per unit as units finish, with a bounded number in flight, so
neither memory nor the queue grows with the archive. :class:`LocalExecutor` is a process pool on
this machine (inline with one worker); ``verify.cluster.DaskExecutor`` sends the same units to a
Dask cluster. The runner does not know which one it talks to.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from itertools import islice
from types import TracebackType
from typing import Protocol

from verify.units import Context, Unit, UnitResult, verify_unit


class Executor(Protocol):
    """Runs units, yields their results as they finish (in any order)."""

    unit_size: int
    """Files per unit this executor works best with."""

    @property
    def workers(self) -> int:
        """How many worker processes do the work now (shown on the progress bar)."""
        ...

    def run(self, units: Iterator[Unit], context: Context) -> Generator[UnitResult, None, None]:
        """Verify ``units`` against ``context``; every unit's result is yielded at least once."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


_PROCESS_CONTEXT: list[Context] = []


def _set_context(context: Context) -> None:
    _PROCESS_CONTEXT[:] = [context]


def _verify_in_process(unit: Unit) -> UnitResult:
    return verify_unit(unit, _PROCESS_CONTEXT[0])


class LocalExecutor:
    """A pool of processes on this machine (today's ``--workers``); inline with one worker."""

    def __init__(
        self, workers: int, *, unit_size: int | None = None, in_flight: int = 4, inline: bool | None = None
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._workers = workers
        self.inline = workers == 1 if inline is None else inline
        """Verify in this process (the default for one worker) rather than in a pool."""
        self.unit_size = unit_size or (1 if workers == 1 else 4)
        self.in_flight = in_flight
        """Units in flight per worker."""

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
                yield verify_unit(unit, context)
            return
        with ProcessPoolExecutor(self._workers, initializer=_set_context, initargs=(context,)) as pool:
            pending: set[Future[UnitResult]] = {
                pool.submit(_verify_in_process, u) for u in islice(units, self._workers * self.in_flight)
            }
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        yield future.result()
                        nxt = next(units, None)
                        if nxt is not None:
                            pending.add(pool.submit(_verify_in_process, nxt))
            finally:
                for future in pending:
                    future.cancel()


__all__ = ["Executor", "LocalExecutor"]
