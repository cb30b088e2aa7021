"""Archive benchmark: the local process pool against a local Dask cluster, Dask's scaling, and the
client's memory.

    python bench/archive.py [--files 1000] [--rounds 3] [--memory-files 2000]

- the same scans (300/250/200 dpi JPEGs of issued certificates, as bench/verify.py makes them, each
  with distinct bytes so every one is decoded) through the local pool and through a local Dask
  cluster with the same number of workers: Dask's overhead as a ratio of wall times (target <= 1.10;
  the cluster's start-up is shown apart);
- the Dask cluster with 1 worker against 2 workers (target >= 1.8x), and the local pool likewise;
- the variants run interleaved, ``--rounds`` times, and every figure is the median of the rounds
  (a single run on a shared machine is noise); the CPU time of the client process (trust checks,
  state commits, and a local cluster's scheduler, which runs in it) is shown for each;
- files per second per core, the workers' memory, and a projection of the wall time for one
  million scans per number of cores from the measured per-core rate;
- the client's peak memory (RSS) verifying N and 10 N small distinct scans, each in a fresh process,
  as a ratio (target <= 1.10: the client's memory does not grow with the archive).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from statistics import median

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


def small_scans(folder: Path, count: int, first: int) -> None:
    """``count`` small PNGs of distinct signed QR codes (cheap to decode) in ``folder``."""
    from tests.test_verify import base_claims, png, qr_image, signed_text

    folder.mkdir()
    for n in range(first, first + count):
        text = signed_text(base_claims(number=f"Y000021012001203{n + 1:06d}"))  # serials start at 000001
        (folder / f"{n:06d}.png").write_bytes(png(qr_image(text, scale=2, border=8)))


def client_memory(folder: Path, state: Path) -> None:
    """In a fresh process: verify ``folder`` as the command does (a pool of 2, every verdict read
    back, a JSON report written) and print this process's peak RSS during that, in KiB.

    The peak is reset after the imports (Linux: ``/proc/self/clear_refs``), whose transient peak
    would otherwise hide what the run itself adds."""
    from tests.test_verify import TODAY, trust
    from verify.report import write_report

    bundle = trust()
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        status = Path("/nonexistent")
    run = run_archive([folder], bundle, state_path=state, workers=2, today=TODAY)
    assert run.all_valid and sum(r.valid for r in run.results) == run.files, run.totals()
    write_report(run, state.with_suffix(".json"))
    if status.exists():
        print(next(line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM:")))
    else:
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def memory_figures(folder: Path, small: int) -> None:
    import subprocess

    peaks = {}
    for count, first in ((small, 0), (10 * small, small)):
        scans = folder / f"small-{count}"
        small_scans(scans, count, first)
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--client-memory", str(scans), str(folder / f"small-{count}.sqlite")],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        peaks[count] = int(out.stdout.split()[-1]) * 1024
        print(f"  client verifying {count} small scans: peak RSS {peaks[count] / 2**20:.1f} MiB "
              f"({time.perf_counter() - start:.0f} s)")  # fmt: skip
    ratio = peaks[10 * small] / peaks[small]
    print(f"client peak memory, {10 * small} against {small} files: {ratio:.2f}x (target <= 1.10); "
          f"{(peaks[10 * small] - peaks[small]) / (9 * small):.0f} bytes per extra file")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are their medians")
    parser.add_argument("--memory-files", type=int, default=2000, help="N for the client memory figure (0: skip)")
    parser.add_argument("--client-memory", nargs=2, metavar=("FOLDER", "STATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_memory:
        client_memory(Path(args.client_memory[0]), Path(args.client_memory[1]))
        return
    files = args.files
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        station, issued = issue_some(folder, 24)
        trust = station.trust.load()
        archive = folder / "archive"
        archive.mkdir()
        scans = [scan(item.path, 200 + 50 * (i % 3)) for i, item in enumerate(issued)]
        for n in range(files):  # distinct bytes (after the JPEG's end), so no run reuses another file's facts
            (archive / f"{n:05d}.jpg").write_bytes(scans[n % len(scans)] + n.to_bytes(4, "big"))
        size = sum(len(s) for s in scans) // len(scans) // 1024
        print(f"{files} scans ({size} KiB on average), {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f} at start, {args.rounds} rounds")  # fmt: skip

        def timed(executor: LocalExecutor | DaskExecutor, label: str, cpu: Callable[[], float]) -> None:
            start, used, client = time.perf_counter(), cpu(), time.process_time()
            run = run_archive([archive], trust, state_path=folder / f"{label}.sqlite", executor=executor, force=True)
            wall[label].append(time.perf_counter() - start)
            here[label].append(time.process_time() - client)
            assert run.files == files and run.all_valid, run.totals()
            spent[label] = used

        wall: dict[str, list[float]] = defaultdict(list)
        here: dict[str, list[float]] = defaultdict(list)
        cpu: dict[str, list[float]] = defaultdict(list)
        spent: dict[str, float] = {}
        startup: list[float] = []
        memory: list[int] = []
        for round_ in range(args.rounds):
            order = (2, 1) if round_ % 2 == 0 else (1, 2)  # interleaved, the order alternating
            for workers in order:
                label = f"local pool, {workers} workers"
                with LocalExecutor(workers, unit_size=4, inline=False) as pool:  # a pool even for 1, like the cluster
                    timed(pool, label, children_cpu)
                cpu[label].append(children_cpu() - spent[label])  # the pool's processes have ended: counted
                start = time.perf_counter()
                with DaskExecutor(f"local:{workers}") as dask:
                    startup.append(time.perf_counter() - start)
                    label = f"Dask, {workers} workers"
                    total_cpu = lambda: sum(dask.client.run(worker_cpu).values())  # noqa: E731
                    timed(dask, label, total_cpu)
                    cpu[label].append(total_cpu() - spent[label])
                    memory += list(dask.client.run(worker_rss).values())
        print(f"  (a local Dask cluster started in {median(startup):.1f} s, median)")
        w = {label: median(times) for label, times in wall.items()}
        c = {label: median(times) for label, times in cpu.items()}
        for label in w:
            print(f"  {label}: {w[label]:.1f} s wall, {files / w[label]:.1f} files/s; {c[label]:.1f} CPU s "
                  f"in the verifying processes, {files / c[label]:.1f} files per CPU second; "
                  f"client process {median(here[label]):.1f} CPU s")  # fmt: skip
        overhead = w["Dask, 2 workers"] / w["local pool, 2 workers"]
        overhead_cpu = c["Dask, 2 workers"] / c["local pool, 2 workers"]
        scaling = w["Dask, 1 workers"] / w["Dask, 2 workers"]
        local_scaling = w["local pool, 1 workers"] / w["local pool, 2 workers"]
        per_core = files / c["Dask, 1 workers"]
        print(f"Dask overhead, 2 workers: {overhead:.2f}x the local pool's wall time, {overhead_cpu:.2f}x its CPU time "
              f"(target <= 1.10)")  # fmt: skip
        print(f"Dask 1 -> 2 workers: {scaling:.2f}x (target >= 1.8x); local pool 1 -> 2 workers: {local_scaling:.2f}x; "
              f"load average now {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(f"per core: {per_core:.1f} files per CPU second of a Dask worker; worker memory after the run: "
              f"{min(memory) / 2**20:.0f}-{max(memory) / 2**20:.0f} MiB")  # fmt: skip
        for cores in (2, 8, 32, 128, 512):
            hours = 1_000_000 / (per_core * cores) / 3600
            print(f"  1 million scans on {cores:>3} dedicated cores: {hours:6.2f} h")
        if args.memory_files:
            memory_figures(folder, args.memory_files)


if __name__ == "__main__":
    main()
