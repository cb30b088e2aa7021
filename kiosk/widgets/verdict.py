"""The big verdict panel of the verify screen: green for valid, red otherwise."""

from __future__ import annotations

from rich.markup import escape
from textual.widgets import Static

from verify.status import VerificationStatus

HEADLINE = {"valid": "✓ 证书有效", "invalid": "✗ 证书无效", "unreadable": "? 无法读取"}


class VerdictPanel(Static):
    """Shows one verification result; its CSS class is the verdict."""

    def show(self, result: VerificationStatus) -> None:
        """The result's :meth:`~verify.status.VerificationStatus.summary_fields`, the verdict large.

        Every value is escaped for Rich markup: a file name or signed text with ``[b]…[/b]`` or
        ``[green]`` is shown as typed, never as markup that could draw a verdict of its own.
        """
        self.set_classes(result.status)
        fields = result.summary_fields()
        head = dict(fields)
        lines = [f"[b]{HEADLINE[result.status]}[/b]    {escape(head['来源'])}"]
        for label, value in fields[2:]:
            if label == "原因":
                code, _, rest = value.partition(" ")
                lines.append(f"[b]{escape(code)}[/b] {escape(rest)}")
            elif label == "吊销数据" and result.trust_stale:
                lines.append(f"[b]注意：{escape(result.stale_text)}，可能不含最近的吊销[/b]")
            else:
                lines.append(f"{label}：{escape(value)}")
        self.update("\n".join(lines))

    def clear(self, message: str = "") -> None:
        self.set_classes("")
        self.update(message)
