"""档案: re-verify a folder or ZIP with progress, a summary by status and reason, and a report."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Footer, Header, ProgressBar, Static

from certgen.exceptions import CertkioskError, ReportError
from kiosk.screens.base import StationScreen
from kiosk.widgets.field import Field
from verify.archive import ArchiveRun, default_state_path, run_archive
from verify.reasons import Reason
from verify.report import report_format_problem, write_report
from verify.status import VERDICT_TEXT


class ArchiveProgress(Message):
    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done, self.total = done, total


class ArchiveScreen(StationScreen):
    """Batch re-verification in a worker thread (which itself uses worker processes)."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("档案复核：核验文件夹或ZIP中的全部证书扫描件与PDF", classes="title")
        yield Field("文件夹或ZIP", "archive-path")
        yield Field("报告文件", "report-path", placeholder=".html、.csv 或 .json，可留空")
        with Horizontal(classes="buttons"):
            yield Button("开始复核", variant="primary", id="start")
        yield ProgressBar(id="archive-progress", show_eta=True)
        yield Static("", id="archive-summary")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "start":
            return
        path = Path(self.query_one("#field-archive-path", Field).value.strip())
        report_text = self.query_one("#field-report-path", Field).value.strip()
        report = Path(report_text) if report_text else None
        problem = report_format_problem(report) if report is not None else None
        if problem is not None:
            self.fail(ReportError(problem))
            return
        try:
            self.station.trust_for_verifying()
        except CertkioskError as exc:
            self.fail(exc)
            return
        event.button.disabled = True
        self.query_one("#archive-summary", Static).update(f"正在复核 {path} ……")
        self.archive_worker(path, report)

    @work(thread=True, exclusive=True, group="archive")
    def archive_worker(self, path: Path, report: Path | None) -> None:
        def progress(done: int, total: int) -> None:
            self.post_message(ArchiveProgress(done, total))

        try:
            bundle, profiles = self.station.verification_data()
            run = run_archive(
                [path], bundle, profiles=profiles,
                state_path=default_state_path(self.station.home.verify_runs_dir, [path]),
                progress=progress, today=self.today(),
            )  # fmt: skip
            if report is not None:
                write_report(run, report)
        except Exception as exc:
            self.app.call_from_thread(self.finished, None, report, exc)
            return
        self.app.call_from_thread(self.finished, run, report, None)

    def on_archive_progress(self, message: ArchiveProgress) -> None:
        self.query_one(ProgressBar).update(total=message.total or None, progress=message.done)

    def finished(self, run: ArchiveRun | None, report: Path | None, error: BaseException | None) -> None:
        self.query_one("#start", Button).disabled = False
        if error is not None or run is None:
            self.query_one("#archive-summary", Static).update("复核中断，见通知。")
            if error is not None:
                self.fail(error)
            return
        totals = run.totals()  # counted in the run's state file: no list of results here
        lines = [
            f"共 {run.files} 个文件、{sum(totals.values())} 张证书"
            + (f"（{run.reused} 个文件的解码结果沿用上次运行，信任检查已重新执行）" if run.reused else "")
        ]
        lines += [f"  {VERDICT_TEXT[s]}：{n}" for s, n in totals.items()]
        lines += [f"  {code} {Reason(code).text}：{n}" for code, n in run.by_reason().items()]
        if skipped := len(run.skipped):
            lines.append(f"  跳过：{skipped} 项（原因见报告）")
        if report is not None:
            lines.append(f"报告：{report}")
        self.query_one("#archive-summary", Static).update("\n".join(lines))
