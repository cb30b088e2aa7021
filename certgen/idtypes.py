"""Identity document types of the certificate data table (004 附件4) and their number checks."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from typing import NamedTuple

ID_TYPES: dict[int, str] = {
    201: "居民身份证",
    227: "中国护照",
    210: "港澳居民来往内地通行证",
    237: "港澳居民居住证",
    213: "台湾居民来往大陆通行证",
    238: "台湾居民居住证",
    208: "外国护照",
    233: "外国人永久居留身份证",
    239: "外国人工作许可证（A类）",
    240: "外国人工作许可证（B类）",
    241: "外国人工作许可证（C类）",
    299: "其他个人证件",
}

RESIDENT_ID = 201
ID_NUMBER_MAX = 18  # the longest number of any type: 18 characters

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK_CHARS = "10X98765432"


def gb11643_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits of an 18-character number."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError(f"应为17位数字，收到 {first17!r}")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def birth_date(id_number: str) -> _dt.date | None:
    """The birth date embedded in an 18-character GB 11643 number, or None when not a real date."""
    try:
        return _dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def _check_gb11643(number: str, today: _dt.date, prefixes: tuple[str, ...] = ()) -> str | None:
    """None when ``number`` is a valid 18-character GB 11643 number, else why not."""
    if len(number) != 18:
        return f"应为18位，实际{len(number)}位"
    if not (number[:17].isascii() and number[:17].isdigit()):
        return "前17位应为数字"
    last = number[17]
    if last == "x":
        return "校验码应为大写X"
    if not (last.isascii() and (last.isdigit() or last == "X")):
        return "第18位校验码应为数字或X"
    if prefixes and not number.startswith(prefixes):
        return "应以" + "或".join(prefixes) + "开头"
    born = birth_date(number)
    if born is None:
        return f"中的出生日期 {number[6:14]} 不是有效日期"
    if born > today:
        return f"中的出生日期 {born.isoformat()} 晚于今天"
    if born.year < 1900:
        return f"中的出生日期 {born.isoformat()} 早于1900年"
    expected = gb11643_check_char(number[:17])
    if last != expected:
        return f"校验码错误：第18位应为{expected}，实际为{last}"
    return None


def _pattern(regex: str, description: str) -> Callable[[str, _dt.date], str | None]:
    compiled = re.compile(regex)

    def check(number: str, today: _dt.date) -> str | None:
        return None if compiled.fullmatch(number) else f"格式不符：应为{description}"

    return check


class IdRule(NamedTuple):
    """How numbers of one document type are checked."""

    check: Callable[[str, _dt.date], str | None]
    """Returns None for a valid number, else the reason in Chinese."""


ID_RULES: dict[int, IdRule] = {
    201: IdRule(_check_gb11643),
    227: IdRule(_pattern(r"[EGDSP][A-Z0-9][0-9]{7}", "9位：E、G、D、S或P开头的字母加数字")),
    210: IdRule(_pattern(r"[HM][0-9]{8}([0-9]{2})?", "H或M加8位或10位数字")),
    237: IdRule(lambda n, t: _check_gb11643(n, t, ("810000", "820000"))),
    213: IdRule(_pattern(r"[0-9]{8}([0-9]{2})?", "8位或10位数字")),
    238: IdRule(lambda n, t: _check_gb11643(n, t, ("830000",))),
    208: IdRule(_pattern(r"[A-Z0-9]{5,17}", "5-17位大写字母或数字")),
    233: IdRule(
        lambda n, t: (
            _pattern(r"[A-Z]{3}[0-9]{12}", "15位（3位字母加12位数字）或18位（以9开头）")(n, t)
            if len(n) != 18
            else _check_gb11643(n, t, ("9",))
        )
    ),
    239: IdRule(_pattern(r"[A-Z0-9]{6,18}", "6-18位大写字母或数字")),
    240: IdRule(_pattern(r"[A-Z0-9]{6,18}", "6-18位大写字母或数字")),
    241: IdRule(_pattern(r"[A-Z0-9]{6,18}", "6-18位大写字母或数字")),
    299: IdRule(_pattern(r"[A-Z0-9()\-]{4,18}", "4-18位大写字母、数字、括号或连字符")),
}


GB11643_TYPES = frozenset({201, 233, 237, 238})
"""Document types whose 18-character numbers follow GB 11643 (birth date, sex digit, check character)."""


def follows_gb11643(id_type: int, number: str) -> bool:
    """Whether ``number`` is an 18-character GB 11643 number (it then carries a birth date and sex)."""
    return id_type in GB11643_TYPES and len(number) == 18


def normalise_id_number(id_type: int, number: str) -> str:
    """The number as stored: a GB 11643 check character ``x`` is written ``X``."""
    return number.upper() if id_type in GB11643_TYPES else number


def sex_of(id_type: int, number: str) -> str | None:
    """男 or 女 from a GB 11643 number's 17th digit; None for other numbers."""
    if not follows_gb11643(id_type, number) or not number[16].isdigit():
        return None
    return "男" if int(number[16]) % 2 else "女"


def check_id_number(id_type: int, number: str, today: _dt.date | None = None) -> str | None:
    """None when ``number`` is a valid number of document type ``id_type``, else why not."""
    rule = ID_RULES.get(id_type)
    if rule is None:
        return f"证件类型 {id_type} 未知"
    return rule.check(number, today or _dt.date.today())


def mask_id(number: str, head: int = 6) -> str:
    """Mask the middle of an ID number for publication: 110105********002X (``head=4`` for a public
    screen: 1101**********002X); numbers too short to keep anything hidden are masked whole."""
    if len(number) < head + 8:
        return "*" * len(number)
    return number[:head] + "*" * (len(number) - head - 4) + number[-4:]
