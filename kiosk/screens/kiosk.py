"""The kiosk screen: camera, scan-to-folder, SANE scanner and keyboard-wedge scanner, one verdict.

Every source ends in :meth:`KioskScreen.show`: the verdict is shown large, logged (without the
holder's name or ID number) and cleared after the configured number of seconds. Camera, folder and
scanner run in ``@work(thread=True)`` workers that post messages; the wedge input is checked at once.
"""

from __future__ import annotations

import subprocess
import threading
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from certgen.number import load_profiles
from kiosk.widgets.kiosk_verdict import KioskVerdict
from verify.camera import CameraLoop, CameraStatus, CodeSeen, parse_source
from verify.check import clean_scanned_text, verify_text
from verify.files import verify_bytes
from verify.status import VerificationStatus, worst_first
from verify.watch import Checked, FolderWatch

if TYPE_CHECKING:
    from kiosk.kiosk_app import KioskApp

SCAN_TIMEOUT = 180.0
"""Seconds a SANE scan may take before it is given up."""
CHANNELS = {"wedge": "扫码枪", "camera": "摄像头", "folder": "扫描文件夹", "scanner": "扫描仪"}


class Verified(Message):
    """Results from one source (posted from worker threads)."""

    def __init__(self, results: list[VerificationStatus], channel: str) -> None:
        super().__init__()
        self.results, self.channel = results, channel


class CameraChanged(Message):
    """The camera's status line changed."""

    def __init__(self, status: CameraStatus) -> None:
        super().__init__()
        self.status = status


class Notice(Message):
    """A message for the verdict area (e.g. the scanner failed)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class KioskScreen(Screen[None]):
    """The only screen of the kiosk."""

    AUTO_FOCUS = "#scan"
    BINDINGS = [Binding("f8", "scan_page", "扫描")]

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()
        self.clear_timer: Timer | None = None
        self.watch_lock = threading.Lock()
        self.watcher: FolderWatch | None = None
        self.shown = 0

    @property
    def kiosk(self) -> KioskApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        options = self.kiosk.options
        ways = ["扫码枪"]
        if options.camera is not None:
            ways.insert(0, "摄像头")
        if options.watch is not None:
            ways.append("扫描文件夹")
        if options.scanimage is not None:
            ways.append("扫描仪（按 F8）")
        yield Static("职业技能等级证书 · 自助核验", classes="kiosk-title")
        yield Static(f"请将证书二维码对准{'、'.join(ways)}", classes="hint", id="kiosk-prompt")
        yield KioskVerdict(id="verdict")
        yield Input(placeholder="扫码枪输入区", id="scan", max_length=4296)
        yield Static("", id="camera-status", classes="hint", markup=False)  # texts from OpenCV, paths: never markup
        yield Static("", id="watch-status", classes="hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        options = self.kiosk.options
        if options.camera is not None:
            self.query_one("#camera-status", Static).update("摄像头：正在打开……")
            self.run_camera(options.camera)
        if options.watch is not None:
            self.watcher = FolderWatch(options.watch, self._verify_file)
            self.query_one("#watch-status", Static).update(f"扫描文件夹：{options.watch}")
            self.set_interval(options.poll_seconds, self.poll_folder)

    def on_unmount(self) -> None:
        self.stop.set()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "scan_page":
            return self.kiosk.options.scanimage is not None  # hidden without SANE
        return True

    # --- every source ends here ------------------------------------------------------------
    def show(self, results: list[VerificationStatus], channel: str) -> None:
        """Show one result large (the others listed), log every one, start the clear timer.

        A page with several codes shows a failing one large: a genuine certificate beside a forged
        one must not put a big ✓ on the screen.
        """
        if not results:
            return
        for result in results:
            self.kiosk.kiosk_log.append(result, channel)
        self.shown += len(results)
        results = worst_first(results)
        first = results[0]
        more = [r.line().split("\n")[0] for r in results[1:]]
        age = self.kiosk.options.trust_age(first) if first.key else ""
        self.query_one(KioskVerdict).show(first, age, more)
        self.restart_clear_timer()
        self.query_one("#scan", Input).focus()

    def restart_clear_timer(self) -> None:
        if self.clear_timer is not None:
            self.clear_timer.stop()
        self.clear_timer = self.set_timer(self.kiosk.clear_seconds, self.clear_verdict)

    def clear_verdict(self) -> None:
        """Ready for the next person: nothing of the last check stays on screen."""
        self.clear_timer = None
        self.query_one(KioskVerdict).clear()

    def on_verified(self, message: Verified) -> None:
        self.show(message.results, message.channel)

    def on_notice(self, message: Notice) -> None:
        self.query_one(KioskVerdict).say(message.text)
        self.restart_clear_timer()

    def on_camera_changed(self, message: CameraChanged) -> None:
        self.query_one("#camera-status", Static).update(message.status.line())

    def _verify_text(self, text: str, source: str) -> VerificationStatus:
        station = self.kiosk.station
        bundle = station.trust_for_verifying()
        return verify_text(text, bundle, source=source, profiles=load_profiles(station.home.profiles_dir))

    def _verify_file(self, data: bytes, name: str) -> list[VerificationStatus]:
        station = self.kiosk.station
        bundle = station.trust_for_verifying()
        return verify_bytes(data, name, bundle, profiles=load_profiles(station.home.profiles_dir))

    # --- keyboard-wedge scanner ------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        text, event.input.value = event.value, ""
        cleaned = clean_scanned_text(text)
        if not cleaned:
            return
        try:
            result = self._verify_text(cleaned, "扫码枪")
        except Exception as exc:
            self.on_notice(Notice(f"无法核验：{exc}"))
            return
        self.show([result], "wedge")

    def on_descendant_blur(self) -> None:
        """Keep the wedge input focused: a scanner types wherever the focus is."""
        self.call_after_refresh(self._refocus)

    def _refocus(self) -> None:
        if self.app.screen is self and self.focused is None:
            self.query_one("#scan", Input).focus()

    # --- camera ----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="camera")
    def run_camera(self, source: str) -> None:
        """The camera loop, until the screen goes away (or a video file ends)."""

        def seen(codes: list[CodeSeen]) -> None:
            try:
                results = [self._verify_text(code.text, "摄像头") for code in codes]
            except Exception as exc:
                self.post_message(Notice(f"无法核验：{exc}"))
                return
            self.post_message(Verified(results, "camera"))

        def status(state: CameraStatus) -> None:
            self.post_message(CameraChanged(state))

        try:
            loop = CameraLoop(parse_source(source))
            loop.run(seen, status, self.stop)
        except Exception as exc:  # never a traceback on a public screen
            self.post_message(CameraChanged(CameraStatus(False, 0.0, False, f"摄像头出错：{exc}")))

    # --- scan-to-folder --------------------------------------------------------------------
    @work(thread=True, group="watch")
    def poll_folder(self) -> None:
        """Verify and file what became complete in the watched folder (one poll at a time)."""
        if self.watcher is None or not self.watch_lock.acquire(blocking=False):
            return
        try:
            for checked in self.watcher.poll():
                self.post_message(Verified(list(checked.results), "folder"))
                if checked.error:
                    self.post_message(Notice(checked.error))
                self.app.call_from_thread(self._count_filed, checked)
        except Exception as exc:
            self.post_message(Notice(f"扫描文件夹出错：{exc}"))
        finally:
            self.watch_lock.release()

    def _count_filed(self, checked: Checked) -> None:
        where = "done" if checked.valid else "failed"
        self.query_one("#watch-status", Static).update(
            f"扫描文件夹：{self.kiosk.options.watch}  最近一份已移入 {where}/"
        )

    # --- SANE scanner ----------------------------------------------------------------------
    def action_scan_page(self) -> None:
        if self.kiosk.options.scanimage is None:
            return
        self.query_one(KioskVerdict).say("正在扫描，请稍候……")
        self.scan_page()

    @work(thread=True, exclusive=True, group="scanner")
    def scan_page(self) -> None:
        """One page at 300 dpi from SANE's scanimage, verified."""
        options = self.kiosk.options
        assert options.scanimage is not None
        command = [options.scanimage, "--resolution", "300", "--mode", "Gray", "--format=png"]
        if options.scanner_device:
            command += ["--device-name", options.scanner_device]
        try:
            done = subprocess.run(command, capture_output=True, timeout=SCAN_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.post_message(Notice(f"扫描失败：{exc}"))
            return
        if done.returncode != 0 or not done.stdout:
            why = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"退出码 {done.returncode}"]
            self.post_message(Notice(f"扫描失败：{why[0]}"))
            return
        try:
            results = self._verify_file(done.stdout, "扫描仪")
        except Exception as exc:
            self.post_message(Notice(f"无法核验：{exc}"))
            return
        self.post_message(Verified(results, "scanner"))
