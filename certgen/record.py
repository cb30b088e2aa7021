"""The certificate record: one frozen value with the fields of the data table (004 附件4).

Pure: imports nothing that draws, renders or touches the network. Text is kept exactly as
entered: no Unicode normalisation (NFC/NFKC would rewrite CJK compatibility ideographs in names).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from certgen.exceptions import FieldError, RecordError
from certgen.idtypes import ID_TYPES, RESIDENT_ID, birth_date, check_id_number, follows_gb11643, normalise_id_number
from certgen.levels import LEVELS
from certgen.number import check_number, cross_check

ABSENT_JOB_TYPE = "——"
"""What a certificate prints for a job type (工种) that does not exist (002 附件9 notes)."""


class TextLimit(NamedTuple):
    """Length limits of a text field: characters for the layout, UTF-8 bytes for the QR budget."""

    chars: int
    """At most this many characters (code points)."""
    utf8: int
    """At most this many bytes when encoded as UTF-8 (what the signed payload carries)."""


# The byte limits of the signed fields are chosen so that the largest valid record still fits a
# version-14 QR code at error correction M (see docs/payload.md; tests/test_payload.py checks it).
TEXT_LIMITS: dict[str, TextLimit] = {
    "name": TextLimit(30, 60),
    "occupation": TextLimit(20, 60),
    "job_type": TextLimit(15, 45),
    "employer": TextLimit(50, 200),
    "evaluator": TextLimit(50, 200),
    "issuer": TextLimit(50, 200),
}

OCCUPATION_CODE = re.compile(r"[1-8]-[0-9]{2}-[0-9]{2}-[0-9]{2}(-[0-9]{2})?")
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
EARLIEST_ISSUE = _dt.date(2019, 1, 1)  # skill level certificates exist since the 2019 reform


def _text_problem(field: str, value: str) -> str | None:
    limit = TEXT_LIMITS[field]
    if not value:
        return "不能为空"
    if value != value.strip():
        return "首尾不能有空白字符"
    for ch in value:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs"):
            return f"含控制字符 U+{ord(ch):04X}"
        if category == "Co":
            return f"含私用区字符 U+{ord(ch):04X}，无法可靠打印和核验，请改用标准汉字"
    if len(value) > limit.chars:
        return f"过长：{len(value)}个字符，上限{limit.chars}个"
    size = len(value.encode("utf-8"))
    if size > limit.utf8:
        return f"过长：UTF-8编码{size}字节，上限{limit.utf8}字节（约{limit.utf8 // 3}个汉字）"
    if field == "name" and any(ch.isascii() and ch.isdigit() for ch in value):
        return "不应含数字"
    return None


@dataclass(frozen=True)
class CertificateRecord:
    """One certificate: the data table's fields plus what the certificate prints.

    Construction validates every field and raises :class:`RecordError` listing each problem.
    Use :meth:`from_fields` to build one from text (a roster row, a form).
    """

    name: str
    """姓名, exactly as on the identity document."""
    id_type: int
    """证件类型: one of the 12 codes of 附件4 (201 居民身份证 ...)."""
    id_number: str
    """证件号码."""
    occupation_code: str
    """职业编码 of 《中华人民共和国职业分类大典》, e.g. ``6-18-01-01``."""
    occupation: str
    """职业名称."""
    level: int
    """职业技能等级: 1 (一级/高级技师) to 5 (五级/初级工)."""
    issue_date: _dt.date
    """发证日期."""
    job_type: str | None = None
    """工种名称; None where the occupation has no job types (printed as ``——``)."""
    number: str | None = None
    """证书编号 (22 characters); None until the register allocates one."""
    employer: str = ""
    """所在单位; may be empty."""
    evaluator: str = ""
    """评价机构; empty means the issuing institution's name is filled in at issue."""
    issuer: str = ""
    """发证机构; must equal the evaluator (谁评价、谁发证)."""
    photo: Path | None = None
    """Path of the holder's photo, if any."""

    def __post_init__(self) -> None:
        errors = list(self._problems())
        if errors:
            raise RecordError(errors)

    def _problems(self, today: _dt.date | None = None) -> list[FieldError]:
        today = today or _dt.date.today()
        errors: list[FieldError] = []

        def bad(field: str, value: object, message: str) -> None:
            errors.append(FieldError(field, value, message))

        for field in ("name", "occupation"):
            value = getattr(self, field)
            problem = _text_problem(field, value) if isinstance(value, str) else "应为文本"
            if problem:
                bad(field, value, problem)

        if not isinstance(self.id_type, int) or isinstance(self.id_type, bool) or self.id_type not in ID_TYPES:
            bad("id_type", self.id_type, "无效：应为" + "、".join(f"{k}={v}" for k, v in ID_TYPES.items()))
        elif not isinstance(self.id_number, str):
            bad("id_number", self.id_number, "应为文本")
        else:
            problem = check_id_number(self.id_type, self.id_number, today)
            if problem:
                bad("id_number", self.id_number, f"不是有效的{ID_TYPES[self.id_type]}号码：{problem}")

        if not isinstance(self.occupation_code, str) or not OCCUPATION_CODE.fullmatch(self.occupation_code):
            bad(
                "occupation_code", self.occupation_code, "格式不符：应如 6-18-01-01（职业分类大典编码，工种可再加 -01）"
            )

        level_ok = isinstance(self.level, int) and not isinstance(self.level, bool) and self.level in LEVELS
        if not level_ok:
            bad("level", self.level, "无效：应为1-5（1=一级/高级技师 … 5=五级/初级工）")

        date_ok = isinstance(self.issue_date, _dt.date) and not isinstance(self.issue_date, _dt.datetime)
        if not date_ok:
            bad("issue_date", self.issue_date, "应为日期 YYYY-MM-DD")
        elif self.issue_date > today:
            bad("issue_date", self.issue_date.isoformat(), "晚于今天，发证日期不能在将来")
        elif self.issue_date < EARLIEST_ISSUE:
            bad("issue_date", self.issue_date.isoformat(), "早于2019年，职业技能等级证书尚未实行")
        elif isinstance(self.id_number, str) and follows_gb11643(self.id_type, self.id_number):
            born = birth_date(self.id_number)
            if born is not None and born > self.issue_date:
                bad("issue_date", self.issue_date.isoformat(), f"早于证件号码中的出生日期 {born.isoformat()}")

        if self.job_type is not None:
            problem = _text_problem("job_type", self.job_type) if isinstance(self.job_type, str) else "应为文本"
            if self.job_type == ABSENT_JOB_TYPE:
                problem = "无工种时应留空，证书上自动打印为——"
            if problem:
                bad("job_type", self.job_type, problem)

        for field in ("employer", "evaluator", "issuer"):
            value = getattr(self, field)
            if not isinstance(value, str):
                bad(field, value, "应为文本")
            elif value:
                problem = _text_problem(field, value)
                if problem:
                    bad(field, value, problem)
        if self.evaluator and self.issuer and self.evaluator != self.issuer:
            bad("issuer", self.issuer, f"应与评价机构「{self.evaluator}」一致（谁评价、谁发证）")

        if self.number is not None:
            if not isinstance(self.number, str):
                bad("number", self.number, "应为文本")
            else:
                check = check_number(self.number, today=today)
                if not check.valid:
                    bad("number", self.number, "不符合编码规则：" + "；".join(check.errors))
                else:
                    mismatches = cross_check(
                        check, level=self.level if level_ok else None, issue_date=self.issue_date if date_ok else None
                    )
                    for mismatch in mismatches:
                        bad("number", self.number, mismatch.message)

        if self.photo is not None and not isinstance(self.photo, Path):
            bad("photo", self.photo, "应为文件路径")
        return errors

    # --- derived values -------------------------------------------------------------------
    @property
    def level_text(self) -> str:
        """The printed level, e.g. ``三级/高级工``."""
        return LEVELS[self.level].text

    @property
    def id_type_name(self) -> str:
        """The document type's Chinese name, e.g. ``居民身份证``."""
        return ID_TYPES[self.id_type]

    @property
    def job_type_text(self) -> str:
        """The job type as printed: ``——`` when absent."""
        return self.job_type or ABSENT_JOB_TYPE

    def with_number(self, number: str) -> CertificateRecord:
        """A copy with the allocated certificate number (validated like any record)."""
        return dataclasses.replace(self, number=number)

    def replace(self, **changes: Any) -> CertificateRecord:
        """A copy with some fields changed (validated like any record)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly fields (date as ``YYYY-MM-DD``, photo as a string or None)."""
        return {
            "name": self.name,
            "id_type": self.id_type,
            "id_number": self.id_number,
            "employer": self.employer,
            "occupation_code": self.occupation_code,
            "occupation": self.occupation,
            "job_type": self.job_type,
            "level": self.level,
            "number": self.number,
            "issue_date": self.issue_date.isoformat(),
            "evaluator": self.evaluator,
            "issuer": self.issuer,
            "photo": str(self.photo) if self.photo is not None else None,
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, object]) -> CertificateRecord:
        """Build a record from loosely typed values (text from a roster, a form or JSON).

        Converts what a user would expect to be understood (``"201"`` or ``"居民身份证"``,
        ``"3"`` or ``"三级/高级工"``, a lower-case ``x`` check character, ``——`` for no job type)
        and raises :class:`RecordError` listing every field that is still wrong.
        """
        values: dict[str, Any] = {}
        errors: list[FieldError] = []
        unknown = sorted(set(fields) - set(FIELD_NAMES))
        for key in unknown:
            errors.append(FieldError(key, fields[key], "不是证书记录的字段"))
        for key, convert in _CONVERTERS.items():
            if key not in fields:
                continue
            try:
                values[key] = convert(fields[key])
            except FieldError as exc:
                errors.append(exc)
        for key in REQUIRED_FIELDS:
            if key not in fields:
                errors.append(FieldError(key, "", "缺少此字段"))
        if isinstance(values.get("id_type"), int) and isinstance(values.get("id_number"), str):
            values["id_number"] = normalise_id_number(values["id_type"], values["id_number"])
        if errors:
            raise RecordError(errors)
        return cls(**values)


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(CertificateRecord))

RECORD_FORMAT = 1
"""Version of the stored form of a record (:meth:`CertificateRecord.to_dict`), kept with every
register row so that a later version can read old rows as they were written."""


def stored_record(data: Mapping[str, Any], record_format: int = RECORD_FORMAT) -> CertificateRecord:
    """A record as it was stored (``to_dict`` of format ``record_format``), NOT re-validated.

    Records are validated when written; reading one back must not apply today's rules (a
    tightened limit, a later "today") to something that was valid when it was issued.
    ``ValueError`` names the format when it is not one this version can read.
    """
    if record_format != 1:
        raise ValueError(f"record format {record_format} is not supported (this version reads format 1)")
    values: dict[str, Any] = {
        "name": data["name"],
        "id_type": int(data["id_type"]),
        "id_number": data["id_number"],
        "occupation_code": data["occupation_code"],
        "occupation": data["occupation"],
        "level": int(data["level"]),
        "issue_date": _dt.date.fromisoformat(data["issue_date"]),
        "job_type": data.get("job_type"),
        "number": data.get("number"),
        "employer": data.get("employer") or "",
        "evaluator": data.get("evaluator") or "",
        "issuer": data.get("issuer") or "",
        "photo": Path(data["photo"]) if data.get("photo") else None,
    }
    record = object.__new__(CertificateRecord)
    for key, value in values.items():
        object.__setattr__(record, key, value)
    return record


def result_key(record: CertificateRecord) -> str:
    """The identity of a result: identity document, occupation (code, job type) and level.

    One person holds at most one live certificate per result, whatever roster, batch or file
    it came from; a deliberate re-issue is its own operation (docs/record.md).
    """
    return f"{id_key(record)}:{record.occupation_code}:{record.job_type or ''}:{record.level}"


def id_key(record: CertificateRecord) -> str:
    """The identity of a person: document type and number."""
    return f"{record.id_type}:{record.id_number}"


REQUIRED_FIELDS = ("name", "id_type", "id_number", "occupation_code", "occupation", "level", "issue_date")


def _as_text(field: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise FieldError(field, value, "应为文本")
        return value

    return convert


def _strip_text(field: str) -> Callable[[object], str]:
    base = _as_text(field)
    return lambda value: base(value).strip()


def parse_id_type(value: object) -> int:
    """``201``, ``"201"`` or ``"居民身份证"`` -> 201."""
    if isinstance(value, int) and not isinstance(value, bool):
        code = value
    elif isinstance(value, str):
        text = value.strip()
        by_name = {name: code for code, name in ID_TYPES.items()}
        if text in by_name:
            return by_name[text]
        if not (text.isascii() and text.isdigit()):
            raise FieldError("id_type", value, "无效：应为证件类型代码（如201）或名称（如居民身份证）")
        code = int(text)
    else:
        raise FieldError("id_type", value, "应为证件类型代码")
    if code not in ID_TYPES:
        raise FieldError("id_type", value, "无效：应为" + "、".join(f"{k}={v}" for k, v in ID_TYPES.items()))
    return code


def parse_level(value: object) -> int:
    """``3``, ``"3"``, ``"三级"``, ``"高级工"`` or ``"三级/高级工"`` -> 3."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return int(text)
        for level in LEVELS.values():
            if text in (
                level.grade,
                level.title,
                level.text,
                f"{level.title}（{level.grade}）",
                f"{level.title}({level.grade})",
            ):
                return level.digit
    raise FieldError("level", value, "无效：应为1-5或等级名称（如 三级/高级工）")


def parse_date(value: object, field: str = "issue_date") -> _dt.date:
    """``"2020-05-01"`` or a date -> date; anything else is a FieldError."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str) and DATE_PATTERN.fullmatch(value.strip()):
        try:
            return _dt.date.fromisoformat(value.strip())
        except ValueError:
            raise FieldError(field, value, "不是有效日期") from None
    raise FieldError(field, value, "格式不符：应为 YYYY-MM-DD")


def _job_type(value: object) -> str | None:
    text = _as_text("job_type")(value).strip()
    return None if text in ("", ABSENT_JOB_TYPE, "—", "-", "无") else text


def _optional_text(field: str) -> Callable[[object], str | None]:
    base = _as_text(field)
    return lambda value: base(value).strip() or None


def _photo(value: object) -> Path | None:
    if isinstance(value, Path):
        return value
    text = _as_text("photo")(value).strip()
    return Path(text) if text else None


_CONVERTERS: dict[str, Callable[[object], Any]] = {
    "name": _as_text("name"),  # kept exactly: a stray space is an error, not silently removed
    "id_type": parse_id_type,
    "id_number": _strip_text("id_number"),
    "occupation_code": _strip_text("occupation_code"),
    "occupation": _strip_text("occupation"),
    "level": parse_level,
    "issue_date": parse_date,
    "job_type": _job_type,
    "number": _optional_text("number"),
    "employer": _strip_text("employer"),
    "evaluator": _strip_text("evaluator"),
    "issuer": _strip_text("issuer"),
    "photo": _photo,
}


def check_field(field: str, value: object, *, id_type: int = RESIDENT_ID) -> str | None:
    """Validate one field on its own (for a form as the user types): None or the message.

    ``id_number`` is checked as a number of document type ``id_type``. Cross-field rules (number
    vs. level and date) are checked when the whole record is built.
    """
    convert = _CONVERTERS.get(field)
    if convert is None:
        return f"{field} 不是证书记录的字段"
    try:
        converted = convert(value)
    except FieldError as exc:
        return str(exc)
    if field in TEXT_LIMITS and converted:
        problem = _text_problem(field, converted)
        return str(FieldError(field, converted, problem)) if problem else None
    if field == "level" and converted not in LEVELS:
        return str(FieldError(field, value, "无效：应为1-5"))
    if field == "number" and converted:
        check = check_number(converted)
        return None if check.valid else str(FieldError(field, converted, "；".join(check.errors)))
    if field == "id_number" and converted:
        number = normalise_id_number(id_type, converted)
        problem = check_id_number(id_type, number)
        return str(FieldError(field, converted, f"不是有效的{ID_TYPES[id_type]}号码：{problem}")) if problem else None
    if field == "occupation_code" and not OCCUPATION_CODE.fullmatch(converted):
        return str(FieldError(field, converted, "格式不符：应如 6-18-01-01"))
    return None
