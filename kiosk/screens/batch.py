"""批量: choose a roster, see every row's errors, issue the valid batch with progress; cancellable."""

from __future__ import annotations

import threading
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Header, Label, ProgressBar, Select, Static

from certgen.exceptions import BatchCancelled
from certgen.issuing.batch import BatchPlan, BatchResult, plan_batch, run_batch
from certgen.issuing.issuer import Issuer
from certgen.issuing.roster import Roster, read_roster
from certgen.labels import label
from certgen.secret import Secret
from kiosk.screens.base import StationScreen
from kiosk.widgets.field import Field
from kiosk.widgets.forms import FORM_CHOICES, FORMS_OF


class BatchProgress(Message):
    """Posted by the worker after each certificate."""

    def __init__(self, done: int, total: int, number: str) -> None:
        super().__init__()
        self.done, self.total, self.number = done, total, number


class BatchScreen(StationScreen):
    """Batch issuance from a roster, in a worker thread."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: BatchPlan | None = None
        self.issuer: Issuer | None = None
        self.cancel_event = threading.Event()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("按名册批量发证", classes="title")
        yield Field("名册文件", "roster", placeholder="CSV、XLSX 或 JSON")
        yield Field("照片目录", "photos", placeholder="名册“照片”列中文件所在的目录")
        with Horizontal(classes="row"):
            yield Label("证书形式", classes="label")
            yield Select(FORM_CHOICES, value="paper", allow_blank=False, id="batch-form")
        yield Field("私钥口令", "batch-passphrase", password=True)
        with Horizontal(classes="buttons"):
            yield Button("读取并检查", variant="primary", id="load")
            yield Button("发证（仅有效行）", variant="success", id="run", disabled=True)
            yield Button("取消", variant="error", id="cancel", disabled=True)
        yield ProgressBar(id="progress", show_eta=True)
        yield Static("", id="result")
        yield DataTable(id="rows", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("行", label("name"), label("id_number"), "职业", "等级", "状态")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "load":
            self.load()
        elif event.button.id == "run":
            self.start()
        elif event.button.id == "cancel":
            self.cancel_event.set()
            self.query_one("#result", Static).update("正在取消：当前这张证书完成后停止……")

    def load(self) -> None:
        roster = Path(self.query_one("#field-roster", Field).value.strip())
        photos_text = self.query_one("#field-photos", Field).value.strip()
        passphrase = Secret(self.query_one("#field-batch-passphrase", Field).value)
        self.query_one("#load", Button).disabled = True
        self.query_one("#result", Static).update(f"正在检查名册 {roster} ……")
        forms = FORMS_OF[str(self.query_one("#batch-form", Select).value)]
        self.load_worker(roster, Path(photos_text) if photos_text else None, passphrase, forms)

    @work(thread=True, exclusive=True, group="batch")
    def load_worker(self, roster: Path, photos: Path | None, passphrase: Secret, forms: tuple[str, ...]) -> None:
        """Reading and checking every row lays each certificate out: seconds for a large roster."""
        try:
            issuer = Issuer(self.station, passphrase, forms=forms)
            data = read_roster(roster)
            with self.station.register() as reg:
                plan = plan_batch(issuer, reg, data, photos)
        except Exception as exc:
            self.app.call_from_thread(self.load_failed, exc)
            return
        self.app.call_from_thread(self.show_plan, issuer, data, plan)

    def load_failed(self, exc: BaseException) -> None:
        self.query_one("#load", Button).disabled = False
        self.query_one("#result", Static).update("")
        self.fail(exc)

    def show_plan(self, issuer: Issuer, data: Roster, plan: BatchPlan) -> None:
        self.issuer, self.plan = issuer, plan
        self.query_one("#load", Button).disabled = False
        table = self.query_one(DataTable)
        table.clear()
        problems: dict[int, list[str]] = {}
        for p in plan.problems:
            problems.setdefault(p.row, []).append(p.message)
        planned = {p.row.row: p for p in plan.rows}
        for row in data.rows:
            f = row.fields
            if row.row in problems:
                state = "✗ " + "；".join(problems[row.row])
            elif row.row in planned and planned[row.row].key in plan.done:
                state = f"已发证（{plan.done[planned[row.row].key]}）"
            else:
                state = "✓ 待发证"
            table.add_row(str(row.row), str(f.get("name", "")), str(f.get("id_number", "")),
                          str(f.get("occupation", "")), str(f.get("level", "")), state)  # fmt: skip
        todo = len(plan.to_issue)
        done = len(plan.done)
        self.query_one("#result", Static).update(
            f"批次 {plan.batch_id}：{len(data.rows)} 行，待发 {todo}，有错误 {len(problems)} 行，已发 {done}"
        )
        self.query_one("#run", Button).disabled = todo == 0

    def start(self) -> None:
        if self.plan is None or self.issuer is None:
            return
        self.cancel_event.clear()
        self.query_one("#run", Button).disabled = True
        self.query_one("#cancel", Button).disabled = False
        self.query_one(ProgressBar).update(total=len(self.plan.to_issue), progress=0)
        self.issue_worker(self.issuer, self.plan)

    @work(thread=True, exclusive=True, group="batch")
    def issue_worker(self, issuer: Issuer, plan: BatchPlan) -> None:
        def progress(done: int, total: int, number: str) -> None:
            self.post_message(BatchProgress(done, total, number))
            if self.cancel_event.is_set() and done < total:
                raise BatchCancelled(f"已取消：发了 {done} 张，剩余 {total - done} 张；重新运行同一名册可继续")

        try:
            result = run_batch(issuer, plan, skip_invalid=True, progress=progress)
        except Exception as exc:
            self.app.call_from_thread(self.finished, None, exc)
            return
        self.app.call_from_thread(self.finished, result, None)

    def on_batch_progress(self, message: BatchProgress) -> None:
        self.query_one(ProgressBar).update(total=message.total, progress=message.done)

    def finished(self, result: BatchResult | None, error: BaseException | None) -> None:
        self.query_one("#cancel", Button).disabled = True
        if error is not None:
            said = str(error) if isinstance(error, BatchCancelled) else "发证中断，见通知。"
            notes = self.issuer.stop_notes() if self.issuer is not None else []
            self.query_one("#result", Static).update("\n".join([said, *notes]))
            if not isinstance(error, BatchCancelled):
                self.fail(error)
            return
        assert result is not None
        reports = "、".join(p.name for p in result.reports)
        lines = [
            f"本次发证 {result.issued} 张，跳过已发 {result.skipped} 张。",
            f"证书与报表：{result.folder}",
            reports,
        ]
        self.query_one("#result", Static).update("\n".join([*lines, *result.blank_notes()]))
        self.notify(f"批次 {result.batch_id} 完成：{result.issued} 张", title="完成")
