"""发证: issue one certificate from a form, validated as the user types."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Footer, Header, Label, Select, Static

from certgen.exceptions import RecordError
from certgen.idtypes import ID_TYPES
from certgen.issuing.issuer import Issued, Issuer
from certgen.labels import label
from certgen.levels import LEVELS
from certgen.pdf.template import available_templates
from certgen.printserial import normal_print_serial
from certgen.record import CertificateRecord, check_field
from certgen.secret import Secret
from kiosk.screens.base import StationScreen
from kiosk.widgets.field import Field
from kiosk.widgets.forms import FORM_CHOICES, FORM_TEXT, FORMS_OF

HINTS = {
    "name": "",
    "id_number": "18位身份证号码",
    "employer": "可留空",
    "occupation_code": "如 6-18-01-01",
    "occupation": "如 车工",
    "job_type": "无工种留空，证书上印——",
    "issue_date": "YYYY-MM-DD",
    "number": "留空则由登记库按序分配",
    "photo": "JPEG/PNG 文件路径",
}
TEXT_FIELDS = [(label(key), key, hint) for key, hint in HINTS.items()]


def print_serial_problem(value: str) -> str | None:
    """The as-you-type check of the 印制流水码 field (certgen.printserial)."""
    try:
        normal_print_serial(value)
    except ValueError as exc:
        return str(exc)
    return None


class IssueScreen(StationScreen):
    """A form for every field of the record, a summary to confirm, then sign and write the PDF."""

    def __init__(self) -> None:
        super().__init__()
        self.record: CertificateRecord | None = None
        self.print_serial: str | None = None
        self.issued: Issued | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("签发一张证书", classes="title")
            yield Field(label("name"), "name", check=self.checker("name"))
            with Horizontal(classes="row"):
                yield Label(label("id_type"), classes="label")
                yield Select([(f"{k} {v}", k) for k, v in ID_TYPES.items()], value=201, allow_blank=False, id="id_type")
            for text, key, hint in TEXT_FIELDS[1:]:
                default = self.today().isoformat() if key == "issue_date" else ""
                yield Field(
                    text,
                    key,
                    check=self.checker(key),
                    value=default,
                    placeholder=hint,
                )
            with Horizontal(classes="row"):
                yield Label(label("level"), classes="label")
                yield Select(
                    [(lv.text, d) for d, lv in sorted(LEVELS.items(), reverse=True)],
                    value=3,
                    allow_blank=False,
                    id="level",
                )
            with Horizontal(classes="row"):
                yield Label("模板", classes="label")
                names = available_templates(self.station.home.templates_dir)
                yield Select([(n, n) for n in names], value="liaoning-2020", allow_blank=False, id="template")
            with Horizontal(classes="row"):
                yield Label("证书形式", classes="label")
                yield Select(FORM_CHOICES, value="paper", allow_blank=False, id="form")
            yield Field(
                "印制流水码", "print_serial", check=print_serial_problem, placeholder="纸质证书用纸上的流水码，可留空"
            )
            yield Field("私钥口令", "passphrase", password=True, placeholder="不会显示，也不会记录")
            with Horizontal(classes="buttons"):
                yield Button("检查", variant="primary", id="check")
                yield Button("签发", variant="success", id="sign", disabled=True)
                yield Button("打开PDF", id="open", disabled=True)
                yield Button("打印", id="print", disabled=True)
            yield Static("填写后按“检查”核对摘要，再按“签发”。", id="summary")
            yield Static("", id="result")
        yield Footer()

    def checker(self, key: str) -> Callable[[str], str | None]:
        """The as-you-type check of one field (ID numbers by the selected document type)."""

        def check(value: str) -> str | None:
            return check_field(key, value, id_type=self.id_type)

        return check

    @property
    def id_type(self) -> int:
        value = self.query_one("#id_type", Select).value
        return value if isinstance(value, int) else 201

    def values(self) -> dict[str, object]:
        fields: dict[str, object] = {key: self.query_one(f"#field-{key}", Field).value for _, key, _ in TEXT_FIELDS}
        fields["id_type"] = self.query_one("#id_type", Select).value
        fields["level"] = self.query_one("#level", Select).value
        return fields

    def on_button_pressed(self, event: Button.Pressed) -> None:
        handlers = {"check": self.check_record, "sign": self.sign, "open": self.open_pdf, "print": self.print_pdf}
        handler = handlers.get(event.button.id or "")
        if handler is not None:
            handler()

    def check_record(self) -> None:
        self.query_one("#sign", Button).disabled = True
        try:
            record = CertificateRecord.from_fields(self.values())
        except RecordError as exc:
            for error in exc.errors:
                if self.query(f"#field-{error.field}"):
                    self.query_one(f"#field-{error.field}", Field).show_error(str(error))
            self.notify(f"有{len(exc.errors)}个字段需要修改", title="请检查", severity="warning")
            return
        serial_field = self.query_one("#field-print_serial", Field)
        try:
            self.print_serial = normal_print_serial(serial_field.value)
        except ValueError as exc:
            serial_field.show_error(str(exc))
            self.notify("印制流水码需要修改", title="请检查", severity="warning")
            return
        self.record = record
        summary = [
            f"姓名：{record.name}    {record.id_type_name}：{record.id_number}",
            f"职业：{record.occupation}（{record.job_type_text}） {record.occupation_code}",
            f"等级：{record.level_text}",
            f"发证日期：{record.issue_date}    证书编号：{record.number or '由登记库按序分配'}",
            f"照片：{record.photo or '无'}",
            *([f"印制流水码：{self.print_serial}（记入登记库，只印在纸质证书上）"] if self.print_serial else []),
            "确认无误后按“签发”。",
        ]
        self.query_one("#summary", Static).update("\n".join(summary))
        self.query_one("#sign", Button).disabled = False

    def sign(self) -> None:
        if self.record is None:
            return
        passphrase = Secret(self.query_one("#field-passphrase", Field).value)
        template = str(self.query_one("#template", Select).value)
        forms = FORMS_OF[str(self.query_one("#form", Select).value)]
        self.query_one("#sign", Button).disabled = True
        self.query_one("#result", Static).update("正在签发……")
        self.issue_worker(self.record, passphrase, template, forms, self.print_serial)

    @work(thread=True, exclusive=True, group="issue")
    def issue_worker(
        self,
        record: CertificateRecord,
        passphrase: Secret,
        template: str,
        forms: tuple[str, ...] = ("paper",),
        print_serial: str | None = None,
    ) -> None:
        issuer: Issuer | None = None
        try:
            issuer = Issuer(self.station, passphrase, template_name=template, forms=forms)
            with self.station.register() as reg:
                issued = issuer.issue(reg, record, print_serial=print_serial)
        except Exception as exc:
            self.app.call_from_thread(self.issue_failed, exc, issuer.stop_notes() if issuer is not None else [])
            return
        self.app.call_from_thread(self.issue_done, issued)

    def issue_failed(self, exc: BaseException, notes: list[str] | None = None) -> None:
        self.query_one("#result", Static).update("\n".join(["签发失败，见通知。", *(notes or [])]))
        self.query_one("#sign", Button).disabled = False
        self.fail(exc)

    def issue_done(self, issued: Issued) -> None:
        self.issued = issued
        files = [f"{FORM_TEXT[form]}：{path}" for form, path in issued.files.items()] or [f"PDF：{issued.path}"]
        lines = [f"已签发：{issued.record.number}", *files, *issued.warnings]
        self.query_one("#result", Static).update("\n".join(lines))
        self.query_one("#open", Button).disabled = False
        self.query_one("#print", Button).disabled = False
        self.notify(f"证书 {issued.record.number} 已签发", title="完成")

    def open_pdf(self) -> None:
        if self.issued is not None:
            self.app.open_url(Path(self.issued.path).as_uri())

    def print_pdf(self) -> None:
        if self.issued is None:
            return
        from kiosk.widgets.print_dialog import PrintDialog

        self.app.push_screen(PrintDialog([self.issued.path]))
