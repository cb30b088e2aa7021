"""Issuing benchmark: prints figures as ratios against baselines measured in the same run.

    python bench/issue.py [--samples 60] [--rows 200] [--repeats 3] [--scaling-rows 200,1000]
                          [--scaling-repeats 5] [--memory-rows 2000,100000]

``--cpu-only`` (a diagnostic) prints only the first figure, with fsync a no-op and SQLite's
synchronous OFF: what the code costs apart from the disk.

Each pair of figures is measured alternating (one certificate of each, one roster run of each),
and the medians are compared, so that a busy spell on a shared machine hits both.

- median time per finished certificate (allocate + sign + QR + render + PDF/A finish + write +
  register commits, fsync'd) against the floor: stock reportlab drawing the same text, border,
  photo and QR code (target <= 2.0x);
- a roster issued by certkiosk (plan + batch + reports) against bench/peer_issue.py, a
  straightforward script drawing the same page (target >= 2x faster); certkiosk verifies a
  sample of the peer's PDFs as valid;
- throughput with 2 issuing processes against 1, on rosters of the given sizes, the signing key
  unlocked first (target >= 1.8x), and how busy the two cores were; beside it, measured again in
  every round, the machine's own ceiling: the bare floor page drawn by 2 processes against 1, and
  a bare interpreter loop split the same way, and the share of the floor's ceiling the batch
  reached (the median of the per-round ratios over the same round's ceiling);
- peak RSS of a whole batch run (plan, issue, reports) on rosters of the given sizes, in a fresh
  process each, with the page drawing (and the layout and photo it is drawn from) replaced by a
  small signed file (unless ``--full-pages``: the per-row plan, register commits with their
  fsyncs, files and reports are all still there), on tmpfs where there is one, so that 100,000
  rows take minutes (target: the largest within 10 % of the smallest).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import io
import multiprocessing
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from reportlab.lib.units import mm  # noqa: E402
from reportlab.pdfbase import pdfmetrics  # noqa: E402
from reportlab.pdfbase.ttfonts import TTFont  # noqa: E402
from reportlab.pdfgen.canvas import Canvas  # noqa: E402

from bench._common import PASSPHRASE, station  # noqa: E402
from bench.peer_issue import peer_issue  # noqa: E402
from certgen.issuing.batch import plan_batch, run_batch  # noqa: E402
from certgen.issuing.issuer import Issuer  # noqa: E402
from certgen.issuing.roster import read_roster  # noqa: E402
from certgen.pdf.fonts import bundled_font  # noqa: E402
from certgen.pdf.render import draw_qr, qr_symbol  # noqa: E402
from certgen.pdf.template import placeholders  # noqa: E402
from certgen.record import CertificateRecord  # noqa: E402
from kiosk.demo import make_placeholder_photo  # noqa: E402
from tests.conftest import resident_id  # noqa: E402
from tests.test_batch import roster_rows, write_csv  # noqa: E402

FLOOR_FONT = "floor-wenkai"


def record(i: int, photo: Path) -> CertificateRecord:
    return CertificateRecord(
        name="王秀英", id_type=201, id_number=resident_id(i), occupation_code="6-18-01-01", occupation="车工",
        job_type="数控车工", level=3, issue_date=dt.date(2020, 11, 15), photo=photo,
    )  # fmt: skip


def floor_page(issuer: Issuer, rec: CertificateRecord, photo: Path, qr_text: str) -> bytes:
    """The same text, border, photo and QR code, drawn with stock reportlab alone (the font
    registered the ordinary way, the photo file passed as it is, the QR code as one path, encoded by
    zxing-cpp as it comes: libzint chooses the mask, not certgen.pdf.qrmask)."""
    if FLOOR_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FLOOR_FONT, str(bundled_font().path)))
    t = issuer.template
    values = placeholders(rec.replace(evaluator="示例职业技能等级认定中心（示例）"))
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(t.page_w * mm, t.page_h * mm), pageCompression=1, initialFontName=FLOOR_FONT)
    c.setLineWidth(t.border_pt)
    c.rect(t.border.x * mm, t.border.y * mm, t.border.w * mm, t.border.h * mm)
    y = 180 * mm
    for key in ("title", "body", "url"):
        c.setFont(FLOOR_FONT, getattr(t, key).size_pt)
        for line in getattr(t, key).text.format_map(values).split("\n"):
            c.drawString(30 * mm, y, line)
            y -= 7 * mm
    c.setFont(FLOOR_FONT, 16)
    for field, label in t.info.fields:
        c.drawString(165 * mm, y, f"{label}：{values[field]}")
        y -= 7 * mm
    c.drawImage(str(photo), t.photo.x * mm, 100 * mm, t.photo.w * mm, t.photo.h * mm)
    draw_qr(c, qr_symbol(qr_text), t.qr, t.page_h)
    c.showPage()
    c.save()
    return buf.getvalue()


def timed_ms(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def per_certificate(folder: Path, n: int) -> tuple[float, float]:
    """Median ms of one finished certificate and of the floor, alternating one of each, ``n`` times."""
    st = station(folder / "single")
    photo = folder / "photo.jpg"
    make_placeholder_photo(photo, 1)
    issuer = Issuer(st, PASSPHRASE, out_dir=folder / "out")
    ours: list[float] = []
    floor: list[float] = []
    with st.register() as reg:
        qr_text = issuer.issue(reg, record(0, photo)).qr_text  # warm up: font load, key decryption
        floor_page(issuer, record(0, photo), photo, qr_text)
        for i in range(1, n + 1):
            ours.append(timed_ms(lambda i=i: issuer.issue(reg, record(i, photo))))
            floor.append(timed_ms(lambda i=i: floor_page(issuer, record(i, photo), photo, qr_text)))
    return statistics.median(ours), statistics.median(floor)


def against_peer(folder: Path, rows: int, repeats: int) -> tuple[float, float, int]:
    """Median seconds for certkiosk (plan + batch + reports, 1 worker) and for the peer script on
    the same roster, the two alternating ``repeats`` times (fresh stations and folders each time);
    the number of the peer's PDFs certkiosk verified as valid (a sample of 5 from the first run)."""
    from verify.files import verify_bytes

    photos = folder / "photos"
    make_placeholder_photo(photos / "p0.jpg", 0)
    roster_path = write_csv(folder / "peer.csv", roster_rows(rows), "utf-8")
    ours: list[float] = []
    peer: list[float] = []
    for run in range(repeats):
        ours_st, peer_st = station(folder / f"ours{run}"), station(folder / f"peer{run}")
        start = time.perf_counter()
        issuer = Issuer(ours_st, PASSPHRASE, out_dir=folder / f"ours-out{run}")
        with ours_st.register() as reg:
            plan = plan_batch(issuer, reg, read_roster(roster_path), photos)
        run_batch(issuer, plan)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        peer_issue(roster_path, photos, folder / f"peer-out{run}", peer_st, PASSPHRASE)
        peer.append(time.perf_counter() - start)
        if run == 0:
            trust = peer_st.trust.load()
            sample = sorted((folder / "peer-out0").glob("*.pdf"))[:: max(1, rows // 5)][:5]
            valid = sum(all(s.valid for s in verify_bytes(p.read_bytes(), p.name, trust)) for p in sample)
    return statistics.median(ours), statistics.median(peer), valid


def throughput(folder: Path, rows: int, workers: int, run: int) -> tuple[float, float]:
    """Certificates per second issuing a planned ``rows``-row roster with ``workers`` processes, and
    the share of the ``workers`` cores the batch kept busy (CPU time of this process and of the
    workers, over wall time). The signing key is unlocked first, as the memory runs do: scrypt's
    fixed ~0.3 s per batch (when the operator's passphrase is taken) is not issuing, and is the
    same for any number of workers."""
    st = station(folder / f"w{workers}-{rows}-{run}")
    photos = folder / "photos"
    make_placeholder_photo(photos / "p0.jpg", 0)
    roster = read_roster(write_csv(folder / f"r{workers}-{rows}-{run}.csv", roster_rows(rows), "utf-8"))
    issuer = Issuer(st, PASSPHRASE, out_dir=folder / f"out{workers}-{rows}-{run}")
    with st.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
        issuer.private_key(reg.institution_keys()[0])
    cpu = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = run_batch(issuer, plan, workers=workers)
    wall = time.perf_counter() - start
    assert result.issued == rows, result
    used = sum(
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        for before, after in zip(
            cpu, (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)), strict=True
        )
    )
    shutil.rmtree(folder / f"out{workers}-{rows}-{run}")
    return rows / wall, used / (wall * workers)


def _floor_pages(issuer: Issuer, photo: Path, qr_text: str, count: int) -> None:
    for i in range(count):
        floor_page(issuer, record(i, photo), photo, qr_text)


def _spin(count: int) -> None:
    """Pure interpreter work: no allocation to speak of, no file, nothing shared."""
    total = 0
    for i in range(count):
        total += i * i % 7


def _two_against_one(target: Callable[[int], None], work: int) -> float:
    """Wall time of ``work`` done by one forked process over the same work split between two."""
    fork = multiprocessing.get_context("fork")
    walls = []
    for n in (1, 2):
        procs = [fork.Process(target=target, args=(work // n,)) for _ in range(n)]
        start = time.perf_counter()
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        walls.append(time.perf_counter() - start)
    return walls[0] / walls[1]


class Ceilings:
    """What the machine itself gives two processes against one, measured again in every scaling
    round (the cores of a shared machine change from minute to minute): ``floor``, floor pages
    drawn (the same drawing as a certificate, with no disk, no register, nothing shared), and
    ``loop``, a bare interpreter loop (no memory traffic either)."""

    def __init__(self, folder: Path, pages: int) -> None:
        st = station(folder / "floor-scaling")
        photo = folder / "floor-scaling.jpg"
        make_placeholder_photo(photo, 1)
        issuer = Issuer(st, PASSPHRASE, out_dir=folder / "floor-scaling-out")
        with st.register() as reg:
            qr_text = issuer.issue(reg, record(0, photo)).qr_text
        _floor_pages(issuer, photo, qr_text, 1)  # the font registered before the processes fork
        self.pages = functools.partial(_floor_pages, issuer, photo, qr_text)
        self.count = pages

    def floor(self) -> float:
        return _two_against_one(self.pages, self.count)

    def loop(self) -> float:
        return _two_against_one(_spin, 15_000_000)  # ~0.7 s alone: a fork's own cost is lost in it


def scaling(folder: Path, rows: int, repeats: int, ceilings: Ceilings) -> tuple[str, float]:
    """Two workers against one on a ``rows``-row roster, alternating ``repeats`` times, each round
    followed by the machine's ceilings: the figures, and the median of the per-round ratios."""
    ones, twos, busy, floors, loops = [], [], [], [], []
    for run in range(repeats):  # alternating, so that a busy spell hits both
        ones.append(throughput(folder, rows, 1, run)[0])
        rate, used = throughput(folder, rows, 2, run)
        twos.append(rate)
        busy.append(used)
        floors.append(ceilings.floor())
        loops.append(ceilings.loop())
    one, two = statistics.median(ones), statistics.median(twos)
    ratios = [b / a for a, b in zip(ones, twos, strict=True)]
    shares = [r / c for r, c in zip(ratios, floors, strict=True)]

    def listed(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    return (
        f"{rows} rows: 1 worker {one:.1f}/s, 2 workers {two:.1f}/s, ratio {two / one:.2f}x (rounds {listed(ratios)}, "
        f"median {statistics.median(ratios):.2f}x; the two cores {statistics.median(busy):.0%} busy); "
        f"the machine's ceiling in the same rounds: floor pages {listed(floors)} "
        f"(median {statistics.median(floors):.2f}x), a bare loop {listed(loops)} "
        f"(median {statistics.median(loops):.2f}x); the batch reached {statistics.median(shares):.0%} of the "
        f"floor pages' ceiling (median of the rounds)"
    ), statistics.median(ratios)


def memory_child(folder: str, rows: int, cheap: bool) -> None:
    """Plan and issue the ``rows``-row roster ``folder``/mem{rows}.csv in this process (reports
    included); print peak RSS in MB. The roster is written by the parent: making it here would
    put every row in this process's memory before the batch starts."""
    base = Path(folder)
    if cheap:  # the page is a small signed file: the batch's own per-row machinery is what is measured
        from certgen.files import write_bytes_atomic
        from certgen.payload import sign

        def make_form(self, form, record, key, photo, out, laid=None, print_serial=None, before_write=None):  # type: ignore[no-untyped-def]
            signed = sign(record, self.template.id, self.private_key(key), key.kid, form)
            pdf = b"%PDF-1.7 " + signed.text.encode()
            if before_write is not None:
                before_write()
            write_bytes_atomic(out, pdf)
            return signed, pdf

        real_prepare = Issuer.prepare
        prepared = {}

        def prepare(self, record, key, print_serial=None):  # type: ignore[no-untyped-def]
            """What the page is drawn from (layout, prepared photo): made once, as no page is drawn."""
            if "first" not in prepared:
                prepared["first"] = real_prepare(self, record, key, print_serial)
            return prepared["first"]

        Issuer.make_form = make_form  # type: ignore[method-assign]
        Issuer.prepare = prepare  # type: ignore[method-assign]
    st = station(base / f"mem{rows}")
    photos = base / "photos"
    make_placeholder_photo(photos / "p0.jpg", 0)
    issuer = Issuer(st, PASSPHRASE, out_dir=base / f"memout{rows}")
    with st.register() as reg:  # the key unlocked first: scrypt's 128 MiB is a fixed cost of any batch
        issuer.private_key(reg.institution_keys()[0])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm = Path("/proc/self/clear_refs")
    if hwm.exists():
        hwm.write_text("5")  # Linux: the peak RSS (VmHWM) starts again from here
    with st.register() as reg:
        plan = plan_batch(issuer, reg, read_roster(base / f"mem{rows}.csv"), photos)
    result = run_batch(issuer, plan)
    assert result.issued == rows, result
    status = Path("/proc/self/status")
    batch = 0.0
    if status.exists():
        batch = next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
    whole = max(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # the reset also reset this one
    print(whole / 1024, batch / 1024, flush=True)


def memory_roster(path: Path, rows: int) -> Path:
    """The test roster of ``rows`` people with an ID number each: tests' resident IDs repeat after
    21,000 rows (the same ID with another name is refused), so each row gets its own birth date
    and sequence code."""
    from certgen.idtypes import gb11643_check_char

    table = roster_rows(rows)
    for i, row in enumerate(table[1:]):
        first = "210102" + (dt.date(1970, 1, 1) + dt.timedelta(days=i // 1000)).strftime("%Y%m%d") + f"{i % 1000:03d}"
        row[2] = first + gb11643_check_char(first)
    return write_csv(path, table, "utf-8")


def memory_runs(sizes: list[int], full_pages: bool) -> list[tuple[float, float]]:
    """Peak RSS (MB) of a batch run of each size, each in a fresh process. The station and its
    output live on tmpfs (/dev/shm) where there is one: every commit, fsync and file is still made,
    but an fsync costs nothing there, so a 100,000-row run takes minutes rather than an hour.
    Each is the process's peak and, on Linux, the peak from after the key was unlocked (scrypt's
    128 MiB sets the process's peak) to the end of the batch: what the rows themselves cost."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        peaks = []
        for n in sizes:
            memory_roster(Path(tmp) / f"mem{n}.csv", n)
            command = [sys.executable, __file__, "--memory-child", tmp, str(n)]
            if full_pages:
                command.append("--full-pages")
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                sys.exit(f"memory run of {n} rows failed:\n{done.stderr}")
            whole, batch = done.stdout.split()
            peaks.append((float(whole), float(batch)))
            shutil.rmtree(Path(tmp) / f"mem{n}")
            shutil.rmtree(Path(tmp) / f"memout{n}", ignore_errors=True)
        return peaks


def cpu_only() -> None:
    """Diagnostic (``--cpu-only``): fsync a no-op and SQLite's synchronous OFF in this process, to
    see what the code costs apart from the disk. Never how a station runs."""
    import os
    import sqlite3

    class Connection(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            return super().execute("PRAGMA synchronous=OFF" if sql.startswith("PRAGMA synchronous") else sql, *args)

    connect = sqlite3.connect
    os.fsync = lambda fd: None
    sqlite3.connect = lambda *a, **k: connect(*a, factory=Connection, **k)  # type: ignore[assignment,misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60, help="certificates timed one by one (alternating)")
    parser.add_argument("--rows", type=int, default=200, help="roster rows for the peer and throughput runs")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of the peer and throughput figures")
    parser.add_argument("--scaling-rows", default="200,1000", help="roster sizes for 2 workers against 1")
    parser.add_argument("--scaling-repeats", type=int, default=5, help="alternating rounds of each scaling figure")
    parser.add_argument("--memory-rows", default="2000,100000", help="roster sizes for the memory runs")
    parser.add_argument("--full-pages", action="store_true", help="memory runs draw every page (slow)")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="diagnostic: only the single-certificate figure, "
        "with fsync a no-op and SQLite's synchronous OFF (what the code costs apart from the disk)",
    )
    args = parser.parse_args()
    if args.cpu_only:
        cpu_only()
        with tempfile.TemporaryDirectory() as tmp:
            ours, floor = per_certificate(Path(tmp), args.samples)
        print(
            f"CPU only (no fsync): per certificate {ours:.1f} ms median; floor {floor:.1f} ms; "
            f"ratio {ours / floor:.2f}x"
        )
        return
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]), not args.full_pages)
        return
    print(f"machine: {multiprocessing.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours, floor = per_certificate(folder, args.samples)
        print(f"per finished certificate: {ours:.1f} ms median; stock reportlab floor (same text, photo, QR) "
              f"{floor:.1f} ms; ratio {ours / floor:.2f}x (target <= 2.0x)")  # fmt: skip
        batch, peer, valid = against_peer(folder, args.rows, args.repeats)
        print(f"{args.rows}-row roster (median of {args.repeats}, alternating): certkiosk "
              f"{batch * 1000 / args.rows:.1f} ms/certificate (plan + issue + reports), peer script "
              f"{peer * 1000 / args.rows:.1f} ms; certkiosk {peer / batch:.2f}x faster (target >= 2x); "
              f"peer PDFs verified valid: {valid}/5")  # fmt: skip
        ceilings = Ceilings(folder, 400)
        for rows in (int(n) for n in args.scaling_rows.split(",")):
            figures, _ = scaling(folder, rows, args.scaling_repeats, ceilings)
            print(f"throughput, key unlocked (median of {args.scaling_repeats}, alternating), {figures}; "
                  "target >= 1.8x")  # fmt: skip
        sizes = [int(n) for n in args.memory_rows.split(",")]
        peaks = memory_runs(sizes, args.full_pages)
        trail = ", ".join(
            f"{n} rows: {mb:.0f} MB ({batch:.0f} MB)" for n, (mb, batch) in zip(sizes, peaks, strict=True)
        )
        mode = "every page drawn" if args.full_pages else "pages replaced by small signed files"
        print(f"peak RSS of a batch run ({mode}; in brackets from after the key unlock): {trail}; "
              f"largest/smallest {peaks[-1][0] / peaks[0][0]:.3f} ({peaks[-1][1] / max(peaks[0][1], 1):.3f}) "
              "(target <= 1.10)")  # fmt: skip


if __name__ == "__main__":
    main()
