"""The kiosk's verdict: a large headline (✓ 证书有效 / ✗ the reason) and the certificate's fields,
with the ID number masked (the screen faces the public)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from certgen.idtypes import mask_id
from certgen.levels import LEVELS
from verify.status import VerificationStatus

IDLE = "请出示证书二维码"


def headline(result: VerificationStatus) -> str:
    """The big line: ✓ 证书有效, or ✗ / ? with the first reason in Chinese."""
    if result.valid:
        return "✓ 证书有效"
    mark = "?" if result.status == "unreadable" else "✗"
    reason = result.findings[0].reason.text if result.findings else "证书无效"
    return f"{mark} {reason}"


def field_lines(result: VerificationStatus, trust_age: str) -> list[str]:
    """The certificate's fields (only what its signature vouches for) and every reason."""
    lines = []
    if result.claims is not None and result.intact:
        c = result.claims
        level = LEVELS[c.level].text if c.level in LEVELS else str(c.level)
        job = f"（{c.job_type}）" if c.job_type else ""
        lines += [
            f"姓　　名：{c.name}",
            f"证件号码：{mask_id(c.id_number, head=4)}",
            f"证书编号：{c.number}",
            f"职　　业：{c.occupation}{job}",
            f"等　　级：{level}",
            f"发证日期：{c.issue_date.isoformat()}",
        ]
    if result.key is not None:
        lines.append(f"评价机构：{result.key.institution}（{result.key.filing_number}）")
        if trust_age:
            lines.append(f"信任数据：{trust_age}")
    for finding in result.findings:
        lines.append(f"原因：{finding.reason.text}（{finding.reason.value}）：{finding.detail}")
    return lines


class KioskVerdict(Vertical):
    """Headline and fields; its CSS class is the verdict (none when idle)."""

    def compose(self) -> ComposeResult:
        yield Static(IDLE, id="headline", markup=False)
        yield Static("", id="fields", markup=False)

    def show(self, result: VerificationStatus, trust_age: str = "", more: list[str] | None = None) -> None:
        self.set_classes(result.status)
        self.query_one("#headline", Static).update(headline(result))
        lines = field_lines(result, trust_age)
        if more:
            lines += ["", *more]
        self.query_one("#fields", Static).update("\n".join(lines))

    def say(self, message: str) -> None:
        """A message in place of a verdict (working, or a scanner error)."""
        self.set_classes("")
        self.query_one("#headline", Static).update(message)
        self.query_one("#fields", Static).update("")

    def clear(self) -> None:
        self.say(IDLE)
