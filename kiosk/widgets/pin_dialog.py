"""The operator PIN dialog: the only way out of the kiosk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

if TYPE_CHECKING:
    from kiosk.kiosk_app import KioskApp


class PinDialog(ModalScreen[None]):
    """Asks for the operator PIN; a right one ends the kiosk, a wrong one locks the input for a while."""

    AUTO_FOCUS = "#pin"
    BINDINGS = [("escape", "cancel", "返回")]

    @property
    def kiosk(self) -> KioskApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("退出核验模式：请输入操作员 PIN（Esc 返回）", classes="title")
            yield Input(password=True, id="pin", max_length=64)
            yield Label("", id="pin-message", classes="error")

    def on_mount(self) -> None:
        self.refresh_lock()

    def refresh_lock(self) -> None:
        """Disable the input while the app refuses attempts."""
        locked = self.kiosk.pin_locked
        field = self.query_one("#pin", Input)
        field.disabled = locked
        if locked:
            self.query_one("#pin-message", Label).update(f"PIN 错误 {self.kiosk.pin_failures} 次，请稍后再试")
        else:
            if self.kiosk.pin_failures:
                self.query_one("#pin-message", Label).update("请重新输入 PIN")
            field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        pin, event.input.value = event.value, ""
        if not pin or self.kiosk.pin_locked:
            return
        self.kiosk.try_pin(pin)

    def action_cancel(self) -> None:
        self.dismiss(None)
