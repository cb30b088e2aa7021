"""Archive benchmark: the local process pool against a local Dask cluster, and Dask's scaling.

    python bench/archive.py [--files 1000]

- the same scans (300/250/200 dpi JPEGs of issued certificates, as bench/verify.py makes them)
  through the local pool and through a local Dask cluster with the same number of workers: Dask's
  overhead as a ratio of wall times (target <= 1.10; the cluster's start-up is shown apart);
- the Dask cluster with 1 worker against 2 workers (target >= 1.8x);
- files per second per core, the workers' memory, and a projection of the wall time for one
  million scans per number of cores from the measured per-core rate.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from bench._common import issue_some  # noqa: E402
from bench.verify import scan  # noqa: E402
from verify.archive import run_archive  # noqa: E402
from verify.cluster import DaskExecutor  # noqa: E402
from verify.executors import LocalExecutor  # noqa: E402


def worker_rss() -> int:
    """Resident memory of the calling worker process, in bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def worker_cpu() -> float:
    """CPU seconds (user + system) the calling worker process has used."""
    import psutil

    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    files = parser.parse_args().files
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        station, issued = issue_some(folder, 24)
        trust = station.trust.load()
        archive = folder / "archive"
        archive.mkdir()
        scans = [scan(item.path, 200 + 50 * (i % 3)) for i, item in enumerate(issued)]
        for n in range(files):  # distinct bytes (after the JPEG's end), so no run reuses another file's facts
            (archive / f"{n:05d}.jpg").write_bytes(scans[n % len(scans)] + n.to_bytes(4, "big"))
        print(f"{files} scans ({sum(len(s) for s in scans) // len(scans) // 1024} KiB on average), "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip

        def timed(executor: LocalExecutor | DaskExecutor, label: str, cpu: Callable[[], float]) -> tuple[float, float]:
            start, used = time.perf_counter(), cpu()
            run = run_archive([archive], trust, state_path=folder / f"{label}.sqlite", executor=executor, force=True)
            seconds = time.perf_counter() - start
            assert run.files == files and run.all_valid, run.totals()
            return seconds, used

        wall: dict[str, float] = {}
        cpu: dict[str, float] = {}
        memory: list[int] = []
        for workers in (2, 1):
            label = f"local pool, {workers} workers"
            with LocalExecutor(workers, unit_size=4, inline=False) as pool:  # a pool even for 1, like the cluster
                wall[label], before = timed(pool, label, children_cpu)
            cpu[label] = children_cpu() - before  # the pool's processes have ended: their time is counted
            start = time.perf_counter()
            with DaskExecutor(f"local:{workers}") as dask:
                started = time.perf_counter() - start
                label = f"Dask, {workers} workers"
                total_cpu = lambda: sum(dask.client.run(worker_cpu).values())  # noqa: E731
                wall[label], before = timed(dask, label, total_cpu)
                cpu[label] = total_cpu() - before
                memory += list(dask.client.run(worker_rss).values())
            print(f"  (local Dask cluster of {workers} started in {started:.1f} s)")
        for label in wall:
            print(f"  {label}: {wall[label]:.1f} s wall, {files / wall[label]:.1f} files/s; {cpu[label]:.1f} CPU s "
                  f"in the verifying processes, {files / cpu[label]:.1f} files per CPU second")  # fmt: skip
        overhead = wall["Dask, 2 workers"] / wall["local pool, 2 workers"]
        overhead_cpu = cpu["Dask, 2 workers"] / cpu["local pool, 2 workers"]
        scaling = wall["Dask, 1 workers"] / wall["Dask, 2 workers"]
        per_core = files / cpu["Dask, 1 workers"]
        print(f"Dask overhead, 2 workers: {overhead:.2f}x the local pool's wall time, {overhead_cpu:.2f}x its CPU time "
              f"(target <= 1.10)")  # fmt: skip
        print(f"Dask 1 -> 2 workers: {scaling:.2f}x (target >= 1.8x); load average now {os.getloadavg()[0]:.1f}")
        print(f"per core: {per_core:.1f} files per CPU second of a Dask worker; worker memory after the run: "
              f"{min(memory) / 2**20:.0f}-{max(memory) / 2**20:.0f} MiB")  # fmt: skip
        for cores in (2, 8, 32, 128, 512):
            hours = 1_000_000 / (per_core * cores) / 3600
            print(f"  1 million scans on {cores:>3} dedicated cores: {hours:6.2f} h")


if __name__ == "__main__":
    main()
