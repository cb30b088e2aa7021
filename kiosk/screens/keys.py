"""密钥: create an institution key (passphrase twice, never shown), list keys, export / import trust."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, DataTable, Footer, Header, Static

from certgen.bundle import import_lines, signer_standing
from certgen.number import check_filing_number
from certgen.secret import Secret
from certgen.station.backup import check_backup, create_backup, restore_backup
from certgen.trust import PublicKeyInfo, grouped_fingerprint, key_fingerprint
from kiosk.screens.base import StationScreen
from kiosk.widgets.confirm import ConfirmDialog
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
            yield Field("签名口令", "sign-passphrase", password=True, placeholder="导出信任包、备份时用本机构私钥签名")
            with Horizontal(classes="buttons"):
                yield Button("导出信任包", id="export")
                yield Button("导入信任包", id="import")
            yield Static(
                "站点备份：登记库、加密私钥、信任库与设置，清单由本机构私钥签名（需上面的签名口令）", classes="hint"
            )
            yield Field("备份文件", "backup-file", placeholder="如 /media/usb/certkiosk-备份.zip")
            with Horizontal(classes="buttons"):
                yield Button("备份", id="backup")
                yield Button("校验备份", id="backup-check")
                yield Button("从备份恢复", variant="error", id="restore")
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
                done = self.station.export_trust(path, Secret(value("sign-passphrase")))
                result.update(
                    f"已导出 {path}（第{done.sequence}号，密钥 {done.keys} 个，吊销 {done.revocations} 条）\n"
                    f"文件 SHA-256：{grouped_fingerprint(done.fingerprint)}\n"
                    "接收方首次导入时，请通过电话或书面与其核对签名密钥指纹。"
                )
            elif event.button.id == "import":
                self.import_bundle(Path(value("bundle").strip()))
            elif event.button.id == "backup":
                event.button.disabled = True
                self.backup_worker(Path(value("backup-file").strip()), Secret(value("sign-passphrase")))
            elif event.button.id == "backup-check":
                check = check_backup(Path(value("backup-file").strip()))
                result.update(
                    f"✓ 备份完整：创建于 {check.created_at}，审计日志 {check.audit_seq} 条，"
                    f"{len(check.manifest['files'])} 个文件与清单一致"
                )
            elif event.button.id == "restore":
                self.ask_restore(Path(value("backup-file").strip()))
        except Exception as exc:
            self.fail(exc)

    @work(thread=True, exclusive=True, group="backup")
    def backup_worker(self, path: Path, passphrase: Secret) -> None:
        try:
            done = create_backup(self.station.home, path, passphrase)
        except Exception as exc:
            self.app.call_from_thread(self.backed_up, None, exc)
            return
        self.app.call_from_thread(self.backed_up, f"已备份到 {path}：{len(done.manifest['files'])} 个文件", None)

    def backed_up(self, text: str | None, error: BaseException | None) -> None:
        self.query_one("#backup", Button).disabled = False
        if error is not None:
            self.fail(error)
        elif text:
            self.query_one("#keys-result", Static).update(text + "\n请把备份存放在本机以外。")

    def ask_restore(self, path: Path) -> None:
        """Check first, then ask: restoring replaces the station home (the old one is kept aside)."""
        check = check_backup(path)
        question = (
            f"用 {check.created_at} 的备份（审计日志 {check.audit_seq} 条）替换当前站点目录？\n"
            "当前目录会改名保留；如当前登记库比备份新，将拒绝恢复。\n"
            "恢复后须确认备份之后发出的证书编号（certkiosk restore-settle）才能继续发证。"
        )

        def answer(confirmed: bool | None) -> None:
            if not confirmed:
                return
            try:
                done = restore_backup(path, self.station.home)
            except Exception as exc:
                self.fail(exc)
                return
            lines = [f"已恢复；原目录保留在 {done.replaced}" if done.replaced else "已恢复", *done.raised]
            if not done.settled:
                lines.append("暂停发证：请执行 certkiosk restore-settle --scan <证书输出目录> 确认编号")
            self.query_one("#keys-result", Static).update("\n".join(lines))
            self.refresh_keys()

        self.app.push_screen(ConfirmDialog(question, "恢复"), answer)

    def import_bundle(self, path: Path) -> None:
        """Import; a new key for a known institution is imported only after the operator compares
        the old and new fingerprints in a dialog (the dialog's answer is the confirmation)."""
        signed = self.station.read_bundle(path)
        store = self.station.trust.load()
        if signer_standing(store, signed) is not None:
            self.imported(path, None)
            return
        signer, old = signed.signer, store.keys_of(signed.body.filing_number)
        question = (
            f"机构 {signed.body.filing_number}（{old[-1].institution}）的信任包由一个新密钥签名，"
            "且没有原密钥的轮换签名。\n\n已信任的密钥指纹：\n"
            + "\n".join(f"  {k.kid_hex}  {grouped_fingerprint(key_fingerprint(k))}" for k in old)
            + f"\n\n新密钥指纹：\n  {signer.kid_hex}  {grouped_fingerprint(key_fingerprint(signer))}\n\n"
            "只有在通过电话或书面与该机构核实了新指纹后才可接受。接受此新密钥？"
        )

        def answer(confirmed: bool | None) -> None:
            if confirmed:
                self.imported(path, key_fingerprint(signer))
            else:
                self.query_one("#keys-result", Static).update("未导入：新密钥未被确认")

        self.app.push_screen(ConfirmDialog(question, "已核实，接受新密钥"), answer)

    def imported(self, path: Path, fingerprint: str | None) -> None:
        try:
            result = self.station.import_trust(path, accept_fingerprint=fingerprint)
        except Exception as exc:
            self.fail(exc)
            return
        self.query_one("#keys-result", Static).update(f"已导入 {path}\n" + "\n".join(import_lines(result)))
        self.refresh_keys()

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
