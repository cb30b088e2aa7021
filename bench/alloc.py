"""Verify without allocator churn: the code path before and after, side by side in one run.

    python bench/alloc.py [--reps 3] [--breakdown]

Verifies the same 200 PDFs and the same 200 JPEG scans (200-300 dpi A4) with one worker, each
run in a fresh process, the variants interleaved so a busy machine slows them alike:

- before: what verify did until issue 18: PDF pages rendered in colour, JPEG scans under 3000 px
  decoded in colour, glibc's default allocator settings (every page-sized buffer mapped, faulted
  in and unmapped again);
- after: as shipped: pages rendered and JPEGs decoded straight to grey (what the QR decoder
  reads), and the worker's allocator keeping freed buffers for the next file (verify/memory.py).

With --breakdown also each change alone. Prints wall and CPU time, the share spent in the kernel,
minor page faults and the process's peak RSS (and, from a run through two worker processes, the
larger worker's peak RSS); target: after >= 1.4x faster than before.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = """
import json, resource, sys, time
from pathlib import Path
variant, folder, state, home = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
with_pool = sys.argv[5] == "pool"
import pypdfium2
import verify.archive
if variant in ("before", "allocator only"):  # colour PDF pages and full-size JPEGs, as before
    from PIL import JpegImagePlugin
    render = pypdfium2.PdfPage.render
    pypdfium2.PdfPage.render = lambda self, **kw: render(self, **{**kw, "grayscale": False})
    draft = JpegImagePlugin.JpegImageFile.draft
    JpegImagePlugin.JpegImageFile.draft = lambda self, mode, size: (
        None if size == self.size else draft(self, mode, size)  # the half-size preview was there before
    )
if variant in ("before", "grey only"):  # glibc's defaults, as before
    verify.archive.reuse_freed_memory = lambda: False
from certgen.station import Station
from certgen.station.home import StationHome
trust = Station(StationHome(home, "--home")).trust.load()
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
run = verify.archive.run_archive([folder], trust, state_path=state, workers=1, force=True)
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
assert run.all_valid and run.files == 200, run.totals()
peak = [int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM")]
worker_mb = 0.0
if with_pool:  # the same files through two worker processes: the peak RSS of either worker
    verify.archive.run_archive([folder], trust, state_path=state, workers=2, force=True)
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({
    "wall": wall, "user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime,
    "faults": r1.ru_minflt - r0.ru_minflt, "peak_mb": peak[0] / 1024 if peak else r1.ru_maxrss / 1024,
    "worker_mb": worker_mb,
}))
"""


def prepare(folder: Path) -> Path:
    """200 PDFs (50 issued certificates, 4 copies) and 200 scans (25 renderings, 8 copies); the station home."""
    sys.path.insert(0, str(ROOT))
    from bench._common import issue_some
    from bench.verify import scan

    _, issued = issue_some(folder, 50)
    (folder / "pdfs").mkdir()
    (folder / "scans").mkdir()
    for copy in range(4):
        for i, item in enumerate(issued):
            shutil.copy(item.path, folder / "pdfs" / f"{copy}-{i:03d}.pdf")
    scans = [scan(item.path, 200 + 50 * (i % 3)) for i, item in enumerate(issued[:25])]
    for copy in range(8):
        for i, data in enumerate(scans):
            (folder / "scans" / f"{copy}-{i:03d}.jpg").write_bytes(data)
    return folder / "station"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="runs of each variant on each set")
    parser.add_argument("--breakdown", action="store_true", help="also each change alone")
    args = parser.parse_args()
    variants = ["before", "after"] + (["grey only", "allocator only"] if args.breakdown else [])
    load = os.getloadavg()[0]
    print(f"machine: {multiprocessing.cpu_count()} cores, load {load:.1f}, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        home = prepare(folder)
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for rep in range(args.reps):
            for kind in ("pdfs", "scans"):
                for variant in variants if rep % 2 == 0 else reversed(variants):
                    out = subprocess.run(
                        [sys.executable, "-c", CHILD, variant, str(folder / kind), str(folder / "state.sqlite"),
                         str(home), "pool" if rep == 0 else "-"],
                        capture_output=True, text=True, cwd=ROOT, check=True,
                    )  # fmt: skip
                    results.setdefault((kind, variant), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
        for kind, label in (("pdfs", "200 PDFs"), ("scans", "200 JPEG scans")):
            medians = {}
            for variant in variants:
                runs = results[(kind, variant)]
                m = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                medians[variant] = m
                cpu = m["user"] + m["sys"]
                print(
                    f"{label}, 1 worker, {variant:<14}: {m['wall']:.2f} s wall, {cpu:.2f} s CPU "
                    f"({m['sys'] / cpu:.0%} in the kernel), {m['faults'] / 1000:.0f}k minor faults, "
                    f"peak RSS {m['peak_mb']:.0f} MB; with 2 workers, each worker's peak RSS "
                    f"<= {runs[0]['worker_mb']:.0f} MB"
                )
            before, after = medians["before"], medians["after"]
            print(
                f"{label}: after is {before['wall'] / after['wall']:.2f}x faster in wall time, "
                f"{(before['user'] + before['sys']) / (after['user'] + after['sys']):.2f}x in CPU time "
                f"(target >= 1.4x; median of {args.reps})"
            )
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
