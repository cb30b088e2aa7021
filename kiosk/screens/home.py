"""首页: what this station is and where its files are."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from certgen.station.backup import last_backup_age
from certgen.trust import freshness_lines
from kiosk.screens.base import StationScreen

BACKUP_WARN_DAYS = 7
"""The home screen asks for a new backup when the last one is older than this."""


class HomeScreen(StationScreen):
    """The station home: institutions, keys, trust store and register at a glance."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("职业技能等级证书工作站", classes="title")
        yield Static("", id="station-info")
        yield Static(
            "按 F2 发证，F3 批量发证，F4 验证证书，F5 档案复核，F6 密钥与信任，F7 登记查询，Ctrl+Q 退出。",
            classes="hint",
        )
        yield Footer()

    def on_screen_resume(self) -> None:
        self.refresh_info()

    def on_mount(self) -> None:
        self.refresh_info()

    def refresh_info(self) -> None:
        home = self.station.home
        lines = [f"站点目录：{home.root}（{home.source}）"]
        try:
            keys = self.station.list_keys()
            own = [k for k in keys if k.has_private]
            lines.append(f"本站签名密钥：{len(own)} 个；信任的密钥：{len(self.station.trust.load().keys)} 个")
            for item in own:
                until = item.info.valid_until.isoformat() if item.info.valid_until else "长期"
                lines.append(f"  {item.info.filing_number} {item.info.institution}  {item.info.valid_from}~{until}")
            today = self.today()
            trust = self.station.trust.load()
            if trust.keys:
                lines.append("信任数据时效：")
                lines.extend(freshness_lines(trust, today))
            if home.register_path.exists():
                with self.station.register() as reg:
                    counts = reg.counts()
                    unsettled = reg.unsettled()
                lines.append(f"登记库：已发证 {counts['issued']}，作废 {counts['void']}，未完成 {counts['pending']}")
                if unsettled:
                    lines.append("[b]从备份恢复后尚未确认编号，暂停发证：请执行 certkiosk restore-settle[/b]")
                age = last_backup_age(home, today)
                if age is None:
                    lines.append("[b]警告：本站从未备份。请在“密钥”页（F6）备份到U盘或网络共享。[/b]")
                else:
                    lines.append(f"上次备份：{age} 天前" + ("（请尽快再备份）" if age > BACKUP_WARN_DAYS else ""))
            else:
                lines.append("登记库：尚未创建（第一次发证或创建密钥时创建）")
        except Exception as exc:  # a broken home must still show the screen
            self.fail(exc)
        self.query_one("#station-info", Static).update("\n".join(lines))
