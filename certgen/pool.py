"""Worker processes that stop when their run stops: SIGTERM, Ctrl-C, an error, or a dead parent.

Pure (standard library). Used by archive verification and batch issuing. What it guarantees:

- SIGTERM to the parent raises :class:`Interrupted` (a KeyboardInterrupt) in the parent's main
  thread, like Ctrl-C, so the caller's ``finally`` blocks run and finished work is kept;
- leaving the pool by an exception terminates and reaps every worker (no orphan keeps a
  register or a state file open);
- workers ignore Ctrl-C (the parent decides) and, on Linux, get SIGTERM if the parent dies;
- :func:`imap` survives a worker that dies (a crash in a native library, the memory limit): the
  files that were in flight are re-run one at a time, and the one that kills its process again
  gets a :class:`WorkerCrashed` as its result instead of taking the run down.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from certgen.exceptions import Interrupted

T = TypeVar("T")
R = TypeVar("R")
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerCrashed:
    """The result of an item whose worker process died while working on it, twice."""

    detail: str
    """What happened, in Chinese."""


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(f"收到信号 {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Interrupted` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def interrupted(signum: int, frame: Any) -> None:
        received.append(signum)
        _raise_interrupted(signum, frame)

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    if received:  # its raise was lost: the handler ran inside a finalizer, where Python ignores exceptions
        _raise_interrupted(received[0], None)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's cleanup is all there is
        pass


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    if initializer is not None:
        initializer(*initargs)


def start(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """A process pool whose workers are set up as described above."""
    return ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(initializer, initargs))


def stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started, terminate the workers and wait until they are gone."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # the executor has no public handle
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()


@contextlib.contextmanager
def worker_pool(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> Iterator[ProcessPoolExecutor]:
    """A pool for a ``with`` block: workers stopped on any exception, SIGTERM interrupts."""
    with sigterm_interrupts():
        pool = start(workers, initializer, initargs)
        try:
            yield pool
        except BaseException:
            stop(pool)
            raise
        pool.shutdown(wait=True)


def imap(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    window: int | None = None,
) -> Iterator[tuple[T, R | WorkerCrashed]]:
    """``(item, fn(item))`` as they finish, at most ``window`` (default 4 per worker) in flight."""
    queue = iter(items)
    window = window or workers * 4
    with sigterm_interrupts():
        while True:
            pool = start(workers, initializer, initargs)
            pending: dict[Future[R], T] = {}
            crashed: list[T] = []
            try:
                for item in queue:
                    pending[pool.submit(fn, item)] = item
                    if len(pending) >= window:
                        break
                while pending and not crashed:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        item = pending.pop(future)
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            crashed.append(item)
                            continue
                        yield item, result
                        for nxt in queue:
                            pending[pool.submit(fn, nxt)] = nxt
                            break
            except BaseException:
                stop(pool)
                raise
            if not crashed:
                pool.shutdown(wait=True)
                return
            crashed.extend(pending.values())
            stop(pool)
            for item in crashed:  # alone, so that the one that kills its process is known
                yield item, _alone(fn, item, initializer, initargs)


def _alone(fn: Callable[[T], R], item: T, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> Any:
    pool = start(1, initializer, initargs)
    try:
        return pool.submit(fn, item).result()
    except BrokenProcessPool:
        return WorkerCrashed("处理该文件时核验进程异常退出（可能超出内存上限或触发了解码库的错误）")
    finally:
        stop(pool)


__all__ = ["Interrupted", "WorkerCrashed", "imap", "sigterm_interrupts", "start", "stop", "worker_pool"]
