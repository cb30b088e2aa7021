"""登记: search issued certificates, revoke a certificate or a whole batch, check the audit chain."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Footer, Header, Input, Static

from certgen.labels import label
from certgen.secret import Secret
from certgen.station.register import STATUS_TEXT
from certgen.trust import SCOPE_TEXT
from kiosk.screens.base import StationScreen
from kiosk.widgets.confirm import ConfirmDialog
from kiosk.widgets.field import Field


class RegisterScreen(StationScreen):
    """The issuance register."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("登记查询：按证书编号、姓名或证件号码查找", classes="title")
        yield Input(placeholder="输入后按回车查找", id="search")
        yield DataTable(id="certs", zebra_stripes=True, cursor_type="row")
        yield Field("吊销原因", "reason", placeholder="吊销必须填写原因（记入审计日志）")
        yield Field("私钥口令", "revoke-passphrase", password=True, placeholder="吊销记录用机构密钥签名")
        with Horizontal(classes="buttons"):
            yield Button("吊销所选证书", variant="error", id="revoke-one")
            yield Button("吊销所选证书的整个批次", variant="error", id="revoke-batch")
            yield Button("校验审计链", id="audit")
        yield Static("", id="register-result")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(
            label("number"), label("name"), "等级", "状态", "批次", "吊销", "印制流水码"
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search(event.value.strip())

    def search(self, text: str) -> None:
        table = self.query_one(DataTable)
        table.clear()
        if not self.station.home.register_path.exists():
            self.query_one("#register-result", Static).update("本站还没有登记库")
            return
        try:
            found = self.station.find_certificates(text)
            with self.station.register() as reg:
                blanks = {s.certificate.number: "、".join(reg.print_serials(s.certificate.number)) for s in found}
        except Exception as exc:
            self.fail(exc)
            return
        for state in found:
            item = state.certificate
            mark = f"已吊销（{SCOPE_TEXT[state.revocation.scope]}）" if state.revocation else ""
            table.add_row(item.number, item.record.name, item.record.level_text, STATUS_TEXT[item.status],
                          item.batch_id or "", mark, blanks[item.number], key=item.number)  # fmt: skip
        self.query_one("#register-result", Static).update(f"找到 {len(found)} 张证书")

    def selected(self) -> tuple[str, str] | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            self.notify("请先查找并选择一张证书", severity="warning")
            return None
        row = table.get_row_at(table.cursor_row)
        return str(row[0]), str(row[4])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "audit":
            self.check_audit()
            return
        chosen = self.selected()
        if chosen is None:
            return
        number, batch = chosen
        reason = self.query_one("#field-reason", Field).value.strip()
        if not reason:
            self.query_one("#field-reason", Field).show_error("吊销必须填写原因")
            return
        passphrase = Secret(self.query_one("#field-revoke-passphrase", Field).value)
        if not passphrase:
            self.query_one("#field-revoke-passphrase", Field).show_error("吊销需要私钥口令：登记库用机构密钥签名")
            return
        if event.button.id == "revoke-one":
            scope, target, question = (
                "certificate",
                number,
                f"确认吊销证书 {number}？\n原因：{reason}\n此操作不可撤销。",
            )
        else:
            if not batch:
                self.notify("这张证书不属于任何批次", severity="warning")
                return
            scope, target, question = (
                "batch",
                batch,
                f"确认吊销批次 {batch} 的全部证书？\n原因：{reason}\n此操作不可撤销。",
            )

        def done(confirmed: bool | None) -> None:
            if not confirmed:
                return
            try:
                revocation = self.station.revoke(scope, target, reason, passphrase)  # type: ignore[arg-type]
            except Exception as exc:
                self.fail(exc)
                return
            self.search(self.query_one("#search", Input).value.strip())  # show the new state first
            extra = f"（{len(revocation.numbers)} 张）" if revocation.numbers else ""
            note = f"\n{self.station.last_backup_note}" if self.station.last_backup_note else ""
            self.query_one("#register-result", Static).update(
                f"已吊销 {target}{extra}。请在“密钥”页导出信任包并分发给核验方。{note}"
            )

        self.app.push_screen(ConfirmDialog(question, "吊销"), done)

    def check_audit(self) -> None:
        try:
            problems = self.station.check_register()
            with self.station.register() as reg:
                entries = len(reg.audit_entries())
        except Exception as exc:
            self.fail(exc)
            return
        text = f"审计日志 {entries} 条：" + (
            "✓ 完整，未被篡改" if not problems else "\n".join(["✗ 发现问题：", *problems])
        )
        self.query_one("#register-result", Static).update(text)
