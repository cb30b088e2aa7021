"""The print dialog (a modal): choose a queue, copies, print; the register logs every accepted job."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from certgen.issuing.printing import print_files
from certgen.station.printing import PrintJob, Queue, list_queues
from certgen.station.station import describe_error


class PrintDialog(ModalScreen[list[PrintJob] | None]):
    """Print certificates; dismisses with the accepted jobs (or None)."""

    BINDINGS = [("escape", "cancel", "取消")]

    def __init__(self, files: list[Path]) -> None:
        super().__init__()
        self.files = files

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"打印 {len(self.files)} 个文件（A4，100%比例，不缩放）")
            yield Select([], prompt="选择打印机", id="queue")
            yield Input("1", placeholder="份数", id="copies", restrict=r"[0-9]*")
            yield Label("", id="print-status")
            with Horizontal(classes="buttons"):
                yield Button("打印", variant="primary", id="do-print")
                yield Button("取消", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#print-status", Label).update("正在查询打印机……")
        self.query_one("#do-print", Button).disabled = True
        self.queues_worker()

    @work(thread=True, exclusive=True, group="print")
    def queues_worker(self) -> None:
        """lpstat can take long (a network queue that does not answer): never on the UI thread."""
        try:
            queues = list_queues()
        except Exception as exc:
            self.app.call_from_thread(self.query_one("#print-status", Label).update, describe_error(exc))
            return
        self.app.call_from_thread(self.show_queues, queues)

    def show_queues(self, queues: list[Queue]) -> None:
        self.query_one("#print-status", Label).update("" if queues else "CUPS 中没有打印机")
        self.query_one("#do-print", Button).disabled = not queues
        select = self.query_one("#queue", Select)
        select.set_options([(f"{q.name}（{q.state_text}）", q.name) for q in queues])
        default = next((q.name for q in queues if q.default), queues[0].name if queues else None)
        if default is not None:
            select.value = default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        value = self.query_one("#queue", Select).value
        queue = value if isinstance(value, str) else None
        copies = int(self.query_one("#copies", Input).value or "1")
        event.button.disabled = True
        self.query_one("#print-status", Label).update("正在提交……")
        self.print_worker(queue, copies)

    @work(thread=True, exclusive=True, group="print")
    def print_worker(self, queue: str | None, copies: int) -> None:
        app = self.app
        try:
            jobs = print_files(app.station.home, self.files, queue, copies)  # type: ignore[attr-defined]
        except Exception as exc:
            app.call_from_thread(self.failed, exc)
            return
        app.call_from_thread(self.done, jobs)

    def failed(self, exc: BaseException) -> None:
        self.query_one("#print-status", Label).update(describe_error(exc))
        self.query_one("#do-print", Button).disabled = False

    def done(self, jobs: list[PrintJob]) -> None:
        self.app.notify("，".join(f"{j.file.name} → {j.queue} 任务 {j.job_id}" for j in jobs), title="已提交打印")
        self.dismiss(jobs)

    def action_cancel(self) -> None:
        self.dismiss(None)
