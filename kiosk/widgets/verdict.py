"""The big verdict panel of the verify screen: green for valid, red otherwise."""

from __future__ import annotations

from textual.widgets import Static

from certgen.levels import LEVELS
from verify.status import VerificationStatus

HEADLINE = {"valid": "✓ 证书有效", "invalid": "✗ 证书无效", "unreadable": "? 无法读取"}


class VerdictPanel(Static):
    """Shows one verification result; its CSS class is the verdict."""

    def show(self, result: VerificationStatus) -> None:
        self.set_classes(result.status)
        lines = [
            f"[b]{HEADLINE[result.status]}[/b]    {result.source}" + (f" 第{result.page}页" if result.page else "")
        ]
        if result.claims is not None and result.intact:
            c = result.claims
            level = LEVELS[c.level].text if c.level in LEVELS else str(c.level)
            lines.append(f"持证人：{c.name}    证书编号：{c.number}")
            job = f"（{c.job_type}）" if c.job_type else ""
            lines.append(f"职业：{c.occupation}{job}    等级：{level}    发证日期：{c.issue_date}")
        if result.key is not None:
            lines.append(f"评价机构：{result.key.institution}（{result.key.filing_number}）")
            stale = f"[b]注意：{result.stale_text}，可能不含最近的吊销[/b]" if result.trust_stale else ""
            lines.append(stale or result.trust_text)
        if result.pdf_signature is not None:
            lines.append(f"PDF签名：{result.pdf_signature.describe()}")
        for finding in result.findings:
            lines.append(f"[b]{finding.reason.value}[/b] {finding.reason.text}：{finding.detail}")
        for note in result.notes:
            lines.append(f"注：{note}")
        self.update("\n".join(lines))

    def clear(self, message: str = "") -> None:
        self.set_classes("")
        self.update(message)
