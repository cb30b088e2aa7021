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
import sys
import tempfile
import time
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
        for n in range(files):
            (archive / f"{n:05d}.jpg").write_bytes(scans[n % len(scans)])
        print(f"{files} scans ({sum(len(s) for s in scans) // len(scans) // 1024} KiB on average), "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip

        def timed(executor: LocalExecutor | DaskExecutor, label: str) -> float:
            start = time.perf_counter()
            run = run_archive([archive], trust, state_path=folder / f"{label}.sqlite", executor=executor, force=True)
            seconds = time.perf_counter() - start
            assert run.files == files and run.all_valid, run.totals()
            print(f"  {label}: {seconds:.1f} s, {files / seconds:.1f} files/s")
            return seconds

        times: dict[str, float] = {}
        memory: list[int] = []
        for workers in (2, 1):
            with LocalExecutor(workers) as pool:
                times[f"local pool, {workers} workers"] = timed(pool, f"local pool, {workers} workers")
            start = time.perf_counter()
            with DaskExecutor(f"local:{workers}") as dask:
                print(f"  (local Dask cluster of {workers} started in {time.perf_counter() - start:.1f} s)")
                times[f"Dask, {workers} workers"] = timed(dask, f"Dask, {workers} workers")
                memory += list(dask.client.run(worker_rss).values())
        overhead = times["Dask, 2 workers"] / times["local pool, 2 workers"]
        scaling = times["Dask, 1 workers"] / times["Dask, 2 workers"]
        per_core = files / times["Dask, 1 workers"]
        print(f"Dask overhead, 2 workers: {overhead:.2f}x the local pool's wall time (target <= 1.10)")
        print(f"Dask 1 -> 2 workers: {scaling:.2f}x (target >= 1.8x)")
        print(f"per core: {per_core:.1f} files/s; worker memory after the run: "
              f"{min(memory) / 2**20:.0f}-{max(memory) / 2**20:.0f} MiB")  # fmt: skip
        for cores in (2, 8, 32, 128, 512):
            hours = 1_000_000 / (per_core * cores) / 3600
            print(f"  1 million scans on {cores:>3} cores: {hours:6.2f} h (at the measured per-core rate)")


if __name__ == "__main__":
    main()
