"""The Chinese label of every record field: one table for roster headers, forms, reports and messages."""

from __future__ import annotations

FIELD_LABELS: dict[str, str] = {
    "name": "姓名",
    "id_type": "证件类型",
    "id_number": "证件号码",
    "employer": "所在单位",
    "occupation_code": "职业编码",
    "occupation": "职业名称",
    "job_type": "工种名称",
    "level": "职业技能等级",
    "number": "证书编号",
    "issue_date": "发证日期",
    "evaluator": "评价机构",
    "issuer": "发证机构",
    "photo": "照片",
    "template": "模板",
}
"""Field name → the label printed in rosters, forms, reports and messages (004 附件4's column names)."""

HEADER_ALIASES: dict[str, str] = {"工种": "job_type"}
"""Other headers rosters use for a field."""

DATA_TABLE_FIELDS = (
    "name", "id_type", "id_number", "employer", "occupation", "job_type", "level", "number", "issue_date",
    "evaluator", "issuer",
)  # fmt: skip
"""The columns of the certificate data table (证书数据表, 004 附件4), in order."""


def label(field: str) -> str:
    """The Chinese label of a record field (the field name itself when it has none)."""
    return FIELD_LABELS.get(field, field)
