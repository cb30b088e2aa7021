"""验证: the input has focus, so a keyboard-wedge scanner types straight in; the verdict shows at once."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.widgets import Footer, Header, Input, Static

from certgen.exceptions import CertkioskError
from kiosk.screens.base import StationScreen
from kiosk.widgets.verdict import VerdictPanel
from verify.check import clean_scanned_text, verify_text
from verify.files import verify_path
from verify.status import VerificationStatus, worst_first


class VerifyScreen(StationScreen):
    """Scan a QR code (or type a file path) and see the verdict."""

    AUTO_FOCUS = "#scan"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("验证证书：用扫码枪扫描证书二维码，或输入图片/PDF文件路径后按回车", classes="title")
        yield Input(placeholder="扫描二维码……", id="scan")
        yield VerdictPanel("等待扫描", id="verdict")
        yield Static("", id="more", classes="hint")
        yield Footer()

    def on_screen_resume(self) -> None:
        self.query_one("#scan", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value
        event.input.value = ""
        if not text.strip():
            return
        try:
            bundle, profiles = self.station.verification_data()
        except CertkioskError as exc:
            self.fail(exc)
            return
        cleaned = clean_scanned_text(text)
        if cleaned.upper().startswith("ZJ") or not Path(cleaned).exists():
            self.show([verify_text(cleaned, bundle, source="扫码", profiles=profiles, today=self.today())])
        else:
            self.query_one("#verdict", VerdictPanel).clear(f"正在核验 {cleaned} ……")
            self.verify_file(Path(cleaned))

    @work(thread=True, exclusive=True, group="verify")
    def verify_file(self, path: Path) -> None:
        try:
            bundle, profiles = self.station.verification_data()
            results = verify_path(path, bundle, profiles=profiles, today=self.today())
        except Exception as exc:
            self.app.call_from_thread(self.fail, exc)
            return
        self.app.call_from_thread(self.show, results)

    def show(self, results: list[VerificationStatus]) -> None:
        results = worst_first(results)  # a genuine code beside a forged one: the forged one large
        self.query_one("#verdict", VerdictPanel).show(results[0])
        rest = [r.line() for r in results[1:]]
        self.query_one("#more", Static).update("\n".join(rest))
        self.query_one("#scan", Input).focus()
