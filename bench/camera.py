"""Camera benchmark: the kiosk's camera loop on a 1920x1080 video (python bench/camera.py).

The video (made here with OpenCV's VideoWriter, 30 fps) shows an issued certificate sliding into
view and held still. Printed:

- frames per second of the loop (read + scaled grey + zxing-cpp, full frame when the scaled one has
  nothing), and its ratio to only reading the frames (the floor: the pixels must be decoded anyway),
  separately for frames without a code (the counter is empty most of the time) and with one;
- the time from the first frame with a readable code (read by zxing-cpp at full resolution, an
  independent check) to the verdict: frames of video the loop needed, and wall-clock time from the
  start of that frame's decode to verify_text's result (target <= 0.5 s).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import cv2  # noqa: E402

from bench._common import issue_some  # noqa: E402
from tests.helpers.video import first_readable_frame, page_scan, slide_video  # noqa: E402
from verify.camera import CameraLoop, CameraStatus, CodeSeen, FrameDecoder  # noqa: E402
from verify.check import verify_text  # noqa: E402

FPS, SECONDS, SIZE = 30, 6.0, (1920, 1080)
TARGET_LATENCY = 0.5
TARGET_FPS = 10.0


def read_only(video: Path) -> tuple[int, float]:
    capture = cv2.VideoCapture(str(video))
    frames, start = 0, time.perf_counter()
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames, time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        station, issued = issue_some(folder, 1)
        cert = issued[0]
        video = slide_video(folder / "counter.avi", page_scan(cert.path), seconds=SECONDS, fps=FPS, size=SIZE)
        bundle = station.trust.load()
        first = first_readable_frame(video)

        frames, read_seconds = read_only(video)
        decoder = FrameDecoder()
        started: dict[int, float] = {}
        spent: list[tuple[bool, float]] = []

        def timed(frame: Any) -> list[str]:
            started[len(started)] = t0 = time.perf_counter()
            texts = decoder(frame)
            spent.append((bool(texts), time.perf_counter() - t0))
            return texts

        verdicts: list[tuple[CodeSeen, float, str]] = []

        def seen(codes: list[CodeSeen]) -> None:
            for code in codes:
                result = verify_text(code.text, bundle)
                verdicts.append((code, time.perf_counter(), result.status))

        def status(_: CameraStatus) -> None:
            pass

        start = time.perf_counter()
        CameraLoop(str(video), decode=timed).run(seen, status, threading.Event())
        loop_seconds = time.perf_counter() - start

    print(f"video: {frames} frames of {SIZE[0]}x{SIZE[1]} at {FPS} fps; first readable frame: {first}")
    read_fps, loop_fps = frames / read_seconds, frames / loop_seconds
    print(f"reading frames only:            {read_fps:7.1f} frames/s")
    print(f"camera loop (read + decode):    {loop_fps:7.1f} frames/s  ({read_fps / loop_fps:.2f}x the read-only time)")
    empty = [s for has, s in spent if not has]
    full = [s for has, s in spent if has]
    if empty:
        print(f"  decode, no code in view:      {statistics.median(empty) * 1000:6.1f} ms median")
    if full:
        print(f"  decode, code in view:         {statistics.median(full) * 1000:6.1f} ms median")
    ok = "met" if loop_fps >= TARGET_FPS else "NOT met"
    print(f"target >= {TARGET_FPS:.0f} frames/s on 1080p: {ok}")
    print(f"verdicts: {[v[2] for v in verdicts]} (one expected)")
    if verdicts:
        code, done, _ = verdicts[0]
        late = code.frame - first
        latency = done - started[first]
        print(f"frames from the first readable frame to the code: {late} ({late / FPS:.2f} s of video)")
        print(f"first readable frame's decode start -> verdict: {latency * 1000:.1f} ms wall clock")
        # a live camera: at worst the decoder is busy with the previous frame when the code appears
        worst = late / FPS + latency + max(s for _, s in spent)
        ok = "met" if worst <= TARGET_LATENCY else "NOT met"
        print(f"live camera worst case (frames late + one busy decode + this): {worst:.3f} s; "
              f"target <= {TARGET_LATENCY} s: {ok}")  # fmt: skip


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None).parse_args()
    main()
