"""Verification benchmark: prints figures as ratios against baselines measured in the same run.

    python bench/verify.py

- median time to verify one 300 dpi A4 JPEG scan, and its ratio to only opening and decoding that
  image with Pillow (target <= 1.5x: the pixels must be read anyway);
- the same scan with pyzbar on the whole page, as a ratio to ours (target >= 5x faster);
- archive throughput with 2 workers against 1 (target >= 1.8x), on distinct scans (every one decoded).
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # bench/verify.py is not `verify`
sys.path.insert(0, str(HERE.parent))

from PIL import Image  # noqa: E402

from bench._common import issue_some  # noqa: E402
from verify.archive import run_archive  # noqa: E402
from verify.files import verify_bytes  # noqa: E402

COPIES = 10


def scan(pdf: Path, dpi: int = 300, quality: int = 85) -> bytes:
    import pypdfium2

    page = pypdfium2.PdfDocument(str(pdf))[0].render(scale=dpi / 72).to_pil()
    out = io.BytesIO()
    page.save(out, "JPEG", quality=quality)
    return out.getvalue()


def median_ms(fn, n: int = 15) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        station, issued = issue_some(folder, 24)
        trust = station.trust.load()
        data = scan(issued[0].path)
        size = Image.open(io.BytesIO(data)).size
        assert verify_bytes(data, "scan.jpg", trust)[0].valid

        def pillow_only() -> None:
            Image.open(io.BytesIO(data)).load()

        ours = median_ms(lambda: verify_bytes(data, "scan.jpg", trust))
        base = median_ms(pillow_only)
        print(
            f"one 300 dpi A4 JPEG scan ({size[0]}x{size[1]}): verify {ours:.1f} ms, "
            f"Pillow decode only {base:.1f} ms; ratio {ours / base:.2f}x (target <= 1.5x)"
        )
        try:
            from pyzbar import pyzbar

            def zbar() -> None:
                pyzbar.decode(Image.open(io.BytesIO(data)).convert("L"), symbols=[pyzbar.ZBarSymbol.QRCODE])

            slow = median_ms(zbar, 7)
            print(f"pyzbar on the whole page: {slow:.1f} ms; ours is {slow / ours:.1f}x faster (target >= 5x)")
        except (ImportError, OSError) as exc:
            print(f"pyzbar not available ({exc}): install libzbar0 and pyzbar for this figure")

        archive = folder / "archive"
        archive.mkdir()
        scans = [scan(item.path, 200 + 50 * (i % 3)) for i, item in enumerate(issued)]
        for copy in range(COPIES):  # enough files that start-up does not dominate
            for i, data in enumerate(scans):  # distinct bytes (after the JPEG's end): facts are reused by content,
                n = copy * len(scans) + i  # so copies would measure hashing, not decoding
                (archive / f"{copy}-{i:03d}.jpg").write_bytes(data + n.to_bytes(4, "big"))
        rates = {}
        for workers in (1, 2):
            start = time.perf_counter()
            run = run_archive([archive], trust, state_path=folder / f"s{workers}.sqlite", workers=workers, force=True)
            rates[workers] = run.files / (time.perf_counter() - start)
            assert run.all_valid
        print(
            f"archive of {len(issued) * COPIES} scans: 1 worker {rates[1]:.1f} files/s, "
            f"2 workers {rates[2]:.1f} files/s; ratio {rates[2] / rates[1]:.2f}x (target >= 1.8x)"
        )


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None).parse_args()
    main()
