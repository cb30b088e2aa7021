"""Issuing benchmark: prints figures as ratios against baselines measured in the same run.

    python bench/issue.py [--count 2000]

- median time per certificate (allocate + sign + QR + render + finish + register) and its ratio to
  bare reportlab drawing the same text, border and photo (target <= 1.3x);
- throughput with 2 worker processes against 1 (target >= 1.8x);
- peak memory (RSS) while issuing --count certificates, sampled as it goes (target < 300 MB and
  not growing with the count).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import multiprocessing
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from reportlab.lib.units import mm  # noqa: E402
from reportlab.pdfgen.canvas import Canvas  # noqa: E402

from bench._common import PASSPHRASE, station  # noqa: E402
from certgen.issuing.batch import plan_batch, run_batch  # noqa: E402
from certgen.issuing.issuer import Issuer  # noqa: E402
from certgen.issuing.roster import read_roster  # noqa: E402
from certgen.record import CertificateRecord  # noqa: E402
from kiosk.demo import make_placeholder_photo  # noqa: E402
from tests.conftest import resident_id  # noqa: E402
from tests.test_batch import roster_rows, write_csv  # noqa: E402


def record(i: int, photo: Path) -> CertificateRecord:
    return CertificateRecord(
        name="王秀英", id_type=201, id_number=resident_id(i), occupation_code="6-18-01-01", occupation="车工",
        job_type="数控车工", level=3, issue_date=dt.date(2020, 11, 15), photo=photo,
    )  # fmt: skip


def bare_reportlab(issuer: Issuer, rec: CertificateRecord, photo: Path) -> bytes:
    """The same lines of text, border and photo, drawn with reportlab alone."""
    from certgen.pdf.template import placeholders

    t, font = issuer.template, issuer.font
    values = placeholders(rec.replace(evaluator="示例职业技能等级认定中心（示例）"))
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(t.page_w * mm, t.page_h * mm), pageCompression=1, initialFontName=font.name)
    c.setLineWidth(t.border_pt)
    c.rect(t.border.x * mm, t.border.y * mm, t.border.w * mm, t.border.h * mm)
    y = 180 * mm
    for key in ("title", "body", "url"):
        c.setFont(font.name, getattr(t, key).size_pt)
        for line in getattr(t, key).text.format_map(values).split("\n"):
            c.drawString(30 * mm, y, line)
            y -= 7 * mm
    c.setFont(font.name, 16)
    for field, label in t.info.fields:
        c.drawString(165 * mm, y, f"{label}：{values[field]}")
        y -= 7 * mm
    c.drawImage(str(photo), t.photo.x * mm, 100 * mm, t.photo.w * mm, t.photo.h * mm)
    c.showPage()
    c.save()
    return buf.getvalue()


def median_ms(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def per_certificate(folder: Path, n: int) -> tuple[float, float]:
    st = station(folder / "single")
    photo = folder / "photo.jpg"
    make_placeholder_photo(photo, 1)
    issuer = Issuer(st, PASSPHRASE, out_dir=folder / "out")
    with st.register() as reg:
        issuer.issue(reg, record(0, photo))  # warm up: font load, key decryption
        bare_reportlab(issuer, record(0, photo), photo)
        ours = median_ms(lambda i: issuer.issue(reg, record(i + 1, photo)), n)
    bare = median_ms(lambda i: bare_reportlab(issuer, record(i, photo), photo), n)
    return ours, bare


def throughput(folder: Path, rows: int, workers: int) -> float:
    st = station(folder / f"w{workers}")
    photos = folder / "photos"
    make_placeholder_photo(photos / "p0.jpg", 0)
    roster = read_roster(write_csv(folder / f"r{workers}.csv", roster_rows(rows), "utf-8"))
    issuer = Issuer(st, PASSPHRASE, out_dir=folder / f"out{workers}")
    with st.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
    start = time.perf_counter()
    run_batch(issuer, plan, workers=workers)
    return rows / (time.perf_counter() - start)


def memory_child(folder: str, count: int) -> None:
    """Issue ``count`` certificates in one process, printing peak RSS (MB) every quarter."""
    base = Path(folder)
    st = station(base / "mem")
    photo = base / "photo.jpg"
    make_placeholder_photo(photo, 2)
    issuer = Issuer(st, PASSPHRASE, out_dir=base / "memout")
    with st.register() as reg:
        for i in range(count):
            issuer.issue(reg, record(i, photo))
            if (i + 1) % (count // 4) == 0:
                print(i + 1, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="certificates for the memory run")
    parser.add_argument("--samples", type=int, default=60, help="certificates timed one by one")
    parser.add_argument("--rows", type=int, default=300, help="roster rows for the throughput runs")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return
    print(f"machine: {multiprocessing.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours, bare = per_certificate(folder, args.samples)
        ratio = ours / bare
        print(
            f"per certificate: {ours:.1f} ms median; bare reportlab {bare:.1f} ms; ratio {ratio:.2f}x (target <= 1.3x)"
        )
        one = throughput(folder, args.rows, 1)
        two = throughput(folder, args.rows, 2)
        print(f"throughput: 1 worker {one:.1f}/s, 2 workers {two:.1f}/s; ratio {two / one:.2f}x (target >= 1.8x)")
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", tmp, str(args.count)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        samples = [(int(out[i]), float(out[i + 1])) for i in range(0, len(out), 2)]
        trail = ", ".join(f"{n}: {mb:.0f} MB" for n, mb in samples)
        growth = samples[-1][1] - samples[0][1]
        print(f"peak RSS over {args.count} certificates: {trail}; growth after the first quarter {growth:+.0f} MB "
              "(target < 300 MB, not growing)")  # fmt: skip


if __name__ == "__main__":
    main()
