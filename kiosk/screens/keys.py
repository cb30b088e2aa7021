"""密钥: create an institution key (passphrase twice, never shown), list keys, export / import trust."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, DataTable, Footer, Header, Static

from certgen.number import check_filing_number
from certgen.secret import Secret
from certgen.trust import PublicKeyInfo, grouped_fingerprint
from kiosk.screens.base import StationScreen
from kiosk.widgets.field import Field


def _check_filing(value: str) -> str | None:
    check = check_filing_number(value.strip())
    return None if check.valid else "；".join(check.errors)


class KeysScreen(StationScreen):
    """Keys and trust."""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("密钥与信任", classes="title")
            yield DataTable(id="keys-table", zebra_stripes=True)
            yield Static("创建机构签名密钥（已有密钥时为轮换，原密钥保留用于核验）", classes="hint")
            yield Field("机构备案号", "filing", check=_check_filing, placeholder="13位，如 Y000021012001")
            yield Field("机构名称", "institution", placeholder="与备案一致")
            yield Field("口令", "new-passphrase", password=True, placeholder="至少8个字符")
            yield Field("再次输入口令", "new-passphrase-again", password=True)
            with Horizontal(classes="buttons"):
                yield Button("创建密钥", variant="primary", id="create")
            yield Field("信任包文件", "bundle", placeholder="导出或导入的 JSON 文件路径")
            with Horizontal(classes="buttons"):
                yield Button("导出信任包", id="export")
                yield Button("导入信任包", id="import")
            yield Static("", id="keys-result")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("密钥标识", "机构备案号", "机构名称", "有效期", "私钥", "状态")
        self.refresh_keys()

    def refresh_keys(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        try:
            listings = self.station.list_keys()
        except Exception as exc:
            self.fail(exc)
            return
        for item in listings:
            k = item.info
            until = k.valid_until.isoformat() if k.valid_until else "长期"
            table.add_row(k.kid_hex, k.filing_number, k.institution, f"{k.valid_from}~{until}",
                          "本站" if item.has_private else "—", "已吊销" if item.revoked else "有效")  # fmt: skip

    def on_button_pressed(self, event: Button.Pressed) -> None:
        def value(key: str) -> str:
            return self.query_one(f"#field-{key}", Field).value

        result = self.query_one("#keys-result", Static)
        try:
            if event.button.id == "create":
                first, second = Secret(value("new-passphrase")), Secret(value("new-passphrase-again"))
                if first != second:
                    self.query_one("#field-new-passphrase-again", Field).show_error("两次输入的口令不一致")
                    return
                event.button.disabled = True
                self.create_worker(value("filing").strip(), value("institution").strip(), first)
            elif event.button.id == "export":
                path = Path(value("bundle").strip())
                fingerprint = grouped_fingerprint(self.station.export_trust(path))
                result.update(f"已导出 {path}\nSHA-256 指纹：{fingerprint}\n请通过电话或书面与接收方核对此指纹。")
            elif event.button.id == "import":
                path = Path(value("bundle").strip())
                merged, fingerprint = self.station.import_trust(path)
                added, updated = len(merged.added_keys), len(merged.updated_keys)
                result.update(
                    f"已导入 {path}\nSHA-256 指纹：{grouped_fingerprint(fingerprint)}（请与发送方核对）\n"
                    f"新增密钥 {added}，更新 {updated}，新增吊销 {merged.added_revocations}"
                )
                self.refresh_keys()
        except Exception as exc:
            self.fail(exc)

    @work(thread=True, exclusive=True, group="keys")
    def create_worker(self, filing: str, institution: str, passphrase: Secret) -> None:
        try:
            info, previous = self.station.new_key(filing, institution, passphrase)
        except Exception as exc:
            self.app.call_from_thread(self.created, None, None, exc)
            return
        self.app.call_from_thread(self.created, info, previous, None)

    def created(self, info: PublicKeyInfo | None, previous: PublicKeyInfo | None, error: BaseException | None) -> None:
        self.query_one("#create", Button).disabled = False
        for key in ("new-passphrase", "new-passphrase-again"):
            self.query_one(f"#field-{key}", Field).value = ""
        if error is not None or info is None:
            if error is not None:
                self.fail(error)
            return
        text = f"已创建密钥 {info.kid_hex}：{info.filing_number} {info.institution}"
        if previous is not None:
            text += f"\n原密钥 {previous.kid_hex} 已轮换，有效期截至 {previous.valid_until}"
        self.query_one("#keys-result", Static).update(text)
        self.refresh_keys()
