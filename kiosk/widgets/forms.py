"""The choice of certificate form (纸质 / 电子) shared by the issue and batch screens."""

from __future__ import annotations

FORM_CHOICES: list[tuple[str, str]] = [
    ("纸质证书", "paper"),
    ("电子证书（机构印章PDF签名）", "electronic"),
    ("纸质与电子证书（同一编号）", "both"),
]
FORMS_OF: dict[str, tuple[str, ...]] = {
    "paper": ("paper",),
    "electronic": ("electronic",),
    "both": ("paper", "electronic"),
}
FORM_TEXT: dict[str, str] = {"paper": "纸质证书PDF", "electronic": "电子证书PDF"}
