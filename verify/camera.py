"""The camera loop: frames from OpenCV, QR codes decoded continuously, each code counted once.

No UI here (the kiosk runs :meth:`CameraLoop.run` in a worker thread and turns its callbacks into
messages), so the loop is tested and benchmarked on its own (``bench/camera.py``).

- A source is a device index (``0``), a V4L2 path (``/dev/video0``), an RTSP/HTTP URL or a video
  file (how the tests feed it): anything ``cv2.VideoCapture`` opens.
- Each frame is decoded by zxing-cpp on a grey copy scaled to :data:`WORK_WIDTH`; when that finds
  nothing, the full frame is tried too (a small code, far from the lens, needs every pixel).
- A code seen in consecutive frames counts once: it counts again only after it has been out of
  view for :data:`FORGET_SECONDS` (a missed decode in between, a wobbling hand, does not count twice).
- A camera that cannot be opened or stops delivering frames is reported and retried, never raised.

OpenCV is an optional extra (``certkiosk[camera]``): it is imported when a loop starts.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certgen.exceptions import CameraError

WORK_WIDTH = 960
"""Frames wider than this are scaled down to it (grey) for the first decode attempt."""
FORGET_SECONDS = 1.5
"""A code out of view this long counts again when it comes back (a new person at the counter)."""
RETRY_SECONDS = 3.0
"""Wait before reopening a camera that failed or disconnected."""
OPEN_TIMEOUT_MS = 5000
"""How long a network stream may take to open or to send a frame."""
STATUS_EVERY = 0.25
"""At most this often (seconds) a status report, besides one on every change."""
FPS_WINDOW = 2.0
"""Frames per second are counted over the last this many seconds."""


def parse_source(spec: str) -> int | str:
    """``--camera`` text as OpenCV wants it: digits are a device index, anything else a path or URL."""
    spec = spec.strip()
    if not spec:
        raise ValueError("camera source is empty: expected a device index, a device path, a URL or a video file")
    return int(spec) if spec.isdigit() else spec


def is_file_source(source: int | str) -> bool:
    """Whether ``source`` is a video file (which ends, rather than disconnects)."""
    return isinstance(source, str) and "://" not in source and Path(source).is_file()


QUIET = {"OPENCV_LOG_LEVEL": "SILENT", "OPENCV_FFMPEG_LOGLEVEL": "-8"}
"""OpenCV and FFmpeg print warnings straight to file descriptor 2, which is the kiosk's terminal:
they are silenced (the loop reports failures on the status line instead)."""


def load_cv2() -> Any:
    """OpenCV, with its and FFmpeg's console logging off; :class:`CameraError` when not installed."""
    for name, value in QUIET.items():
        os.environ.setdefault(name, value)
    try:
        import cv2
    except ImportError:
        raise CameraError("未安装 OpenCV：请安装 certkiosk[camera]（opencv-python-headless）") from None
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


def open_capture(source: int | str) -> Any:
    """An opened ``cv2.VideoCapture``; :class:`CameraError` saying why not."""
    cv2 = load_cv2()
    if isinstance(source, str) and "://" not in source and not source.startswith("/dev/") and not Path(source).exists():
        raise CameraError(f"找不到摄像头或视频文件 {source}")
    if isinstance(source, str) and "://" in source:  # a network stream: never hang on a dead address
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, OPEN_TIMEOUT_MS]
        capture = cv2.VideoCapture(source, cv2.CAP_ANY, timeouts)
    else:
        capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise CameraError(f"无法打开摄像头 {source}")
    return capture


@dataclass
class FrameDecoder:
    """zxing-cpp on a scaled grey frame, then on the full frame when the scaled one had nothing."""

    work_width: int = WORK_WIDTH
    """Width of the first, scaled attempt."""
    full_frame: bool = True
    """Whether to try the full frame when the scaled attempt finds nothing."""

    def __call__(self, frame: Any) -> list[str]:
        """Every QR text in ``frame`` (BGR or grey ``numpy`` array)."""
        import cv2
        import zxingcpp

        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        formats = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        height, width = gray.shape[:2]
        if width > self.work_width:
            small = cv2.resize(
                gray, (self.work_width, round(height * self.work_width / width)), interpolation=cv2.INTER_AREA
            )
            found = zxingcpp.read_barcodes(small, formats=formats)
            if not found and self.full_frame:
                found = zxingcpp.read_barcodes(gray, formats=formats)
        else:
            found = zxingcpp.read_barcodes(gray, formats=formats)
        return list(dict.fromkeys(r.text for r in found if r.valid and r.text))


@dataclass
class Dedupe:
    """Counts each code once while it stays in view (times in seconds, from any one clock)."""

    forget_after: float = FORGET_SECONDS
    """How long a code must be out of view before it counts again."""
    last_seen: dict[str, float] = field(default_factory=dict)
    """When each code in (or recently in) view was last seen."""

    def new_codes(self, texts: list[str], now: float) -> list[str]:
        """The codes in ``texts`` that count as new at time ``now``; remembers all of them."""
        for text, when in list(self.last_seen.items()):
            if now - when > self.forget_after:
                del self.last_seen[text]
        new = [t for t in texts if t not in self.last_seen]
        for text in texts:
            self.last_seen[text] = now
        return new


@dataclass(frozen=True)
class CameraStatus:
    """What the status line shows."""

    connected: bool
    """Whether frames are arriving."""
    fps: float
    """Frames decoded per second (over the last :data:`FPS_WINDOW` seconds)."""
    code_in_view: bool
    """Whether the last frame held a readable QR code."""
    message: str
    """A Chinese sentence for the screen (connected, failed and retrying, ended)."""
    frames: int = 0
    """Frames read since the source was opened."""

    def line(self) -> str:
        """The status line, in Chinese."""
        if not self.connected:
            return f"摄像头：{self.message}"
        view = "画面中有二维码" if self.code_in_view else "画面中无二维码"
        return f"摄像头：{self.message}  {self.fps:.1f} 帧/秒  {view}"


@dataclass(frozen=True)
class CodeSeen:
    """A code that came into view."""

    text: str
    """The QR text."""
    frame: int
    """Index of the frame it was first read in (0 = the first frame after opening)."""
    position: float
    """Its time in the source (seconds): the video position for files, else the monotonic clock."""
    read_at: float
    """``time.monotonic()`` when that frame was read (for latency measurements)."""


class LatestFrame:
    """A live source read in its own thread, keeping only the newest frame.

    Decoding a 1080p frame can take longer than a camera's frame interval; OpenCV (and FFmpeg for
    streams) would then hand out ever older queued frames and the verdict would lag further and
    further behind the counter. The grabber drops the frames the decoder has no time for instead.
    It owns the capture and releases it when it stops.
    """

    def __init__(self, capture: Any) -> None:
        self._capture = capture
        self._cond = threading.Condition()
        self._frame: Any = None
        self._read_at = 0.0
        self._seq = 0
        self._ended = False
        self._closed = False
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="camera-grabber", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._closed:
                ok, frame = self._capture.read()
                with self._cond:
                    if not ok or frame is None:
                        break
                    self._frame, self._read_at, self._seq = frame, time.monotonic(), self._seq + 1
                    self._cond.notify_all()
        except Exception as exc:  # cv2.error from a broken stream: reported by the reader
            self._error = exc
        finally:
            self._capture.release()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def next(self, after: int, timeout: float) -> tuple[int, Any, float] | None:
        """The newest frame after number ``after`` as (number, frame, read time); None when the source
        ended or sent nothing for ``timeout`` seconds; the grabber's error if it failed."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._ended, timeout)
            if self._seq > after:
                return self._seq, self._frame, self._read_at
            if self._error is not None:
                raise self._error
            return None

    def close(self) -> None:
        """Stop grabbing (the capture is released by the grabber thread as it ends)."""
        self._closed = True


STALL_SECONDS = 5.0
"""A live camera that delivers no frame for this long counts as disconnected."""


@dataclass
class CameraLoop:
    """Reads one source until stopped; reports codes and status through callbacks."""

    source: int | str
    """What ``cv2.VideoCapture`` opens."""
    decode: Callable[[Any], list[str]] = field(default_factory=FrameDecoder)
    """Frame -> QR texts."""
    opener: Callable[[int | str], Any] = open_capture
    """Source -> an opened capture (tests pass failing ones)."""
    retry_seconds: float = RETRY_SECONDS
    """Wait between attempts to reopen a failed camera."""
    dedupe: Dedupe = field(default_factory=Dedupe)
    """Which codes count as new."""

    def run(
        self,
        on_codes: Callable[[list[CodeSeen]], None],
        on_status: Callable[[CameraStatus], None],
        stop: threading.Event,
    ) -> None:
        """Until ``stop`` is set (or a video file ends): open, read, decode, report; retry on failure.

        ``on_codes`` gets the codes that came into view in one frame; ``on_status`` the status line.
        """
        from_file = is_file_source(self.source)
        while not stop.is_set():
            try:
                capture = self.opener(self.source)
            except CameraError as exc:
                on_status(self._down(f"{exc}，{self.retry_seconds:g}秒后重试"))
            except Exception as exc:  # OpenCV raises cv2.error and others: report, never crash the kiosk
                on_status(self._down(f"无法打开摄像头 {self.source}：{exc}，{self.retry_seconds:g}秒后重试"))
            else:
                frames = _file_frames(capture, stop) if from_file else _live_frames(capture, stop)
                try:
                    self._read(frames, on_codes, on_status, stop)
                except Exception as exc:
                    on_status(self._down(f"摄像头出错：{exc}，{self.retry_seconds:g}秒后重试"))
                else:
                    if stop.is_set():
                        return
                    if from_file:
                        on_status(self._down("视频已播放完毕"))
                        return
                    on_status(self._down(f"摄像头已断开，{self.retry_seconds:g}秒后重试"))
                finally:
                    frames.close()
            if stop.wait(self.retry_seconds):
                return

    @staticmethod
    def _down(message: str) -> CameraStatus:
        return CameraStatus(connected=False, fps=0.0, code_in_view=False, message=message)

    def _read(
        self,
        frames: Iterator[tuple[Any, float, float]],
        on_codes: Callable[[list[CodeSeen]], None],
        on_status: Callable[[CameraStatus], None],
        stop: threading.Event,
    ) -> None:
        """Decode frames until the source stops delivering them or ``stop`` is set."""
        times: deque[float] = deque()
        last_report, in_view = 0.0, False
        for index, (frame, position, read_at) in enumerate(frames):
            texts = self.decode(frame)
            new = self.dedupe.new_codes(texts, position)
            if new:  # codes that came into view together are reported together
                on_codes([CodeSeen(text, index, position, read_at) for text in new])
            now = time.monotonic()
            times.append(now)
            while times and now - times[0] > FPS_WINDOW:
                times.popleft()
            if bool(texts) != in_view or now - last_report >= STATUS_EVERY:
                in_view, last_report = bool(texts), now
                span = times[-1] - times[0] if len(times) > 1 else 0.0
                fps = (len(times) - 1) / span if span > 0 else 0.0
                on_status(CameraStatus(True, fps, in_view, f"{self.source} 已连接", index + 1))
            if stop.is_set():
                return


def _file_frames(capture: Any, stop: threading.Event) -> Generator[tuple[Any, float, float], None, None]:
    """Every frame of a video file in order, with its position in the video."""
    import cv2

    try:
        while not stop.is_set():
            ok, frame = capture.read()
            read_at = time.monotonic()
            if not ok or frame is None:
                return
            yield frame, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000, read_at
    finally:
        capture.release()


def _live_frames(capture: Any, stop: threading.Event) -> Generator[tuple[Any, float, float], None, None]:
    """The newest frame each time the decoder is ready (older ones dropped); ends on a stall."""
    grabber = LatestFrame(capture)
    try:
        seq = 0
        while not stop.is_set():
            got = grabber.next(seq, STALL_SECONDS)
            if got is None:
                return
            seq, frame, read_at = got
            yield frame, read_at, read_at
    finally:
        grabber.close()
