"""The certificate number rule (002 附件5): one letter and 21 digits, 22 characters.

=========  ==========  =========================================================
positions  segment     values
=========  ==========  =========================================================
1          kind        ``Y`` employer, ``S`` third-party evaluation organisation
2-5        route       ``0000`` ordinary; ``0001``-``9999`` central-enterprise branch
6-7        province    GB/T 2260 province-level code
8-13       institution sequence code assigned by the province (a profile checks it)
14-15      year        last two digits of the year of issue
16         level       ``1``-``5``
17-22      serial      ``000001``-``999999`` per institution, year and level
=========  ==========  =========================================================

Positions 1-13 are the institution's filing number (机构备案号). Everything here is pure: no I/O
but reading the bundled province profiles.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from certgen.exceptions import NumberFormatError, ProfileError
from certgen.levels import LEVELS
from certgen.provinces import PROVINCES

NUMBER_LENGTH = 22
FILING_LENGTH = 13
SERIAL_MAX = 999_999


class Segment(NamedTuple):
    """One segment of the number rule."""

    key: str
    """Machine name, used as the key in ``parts``."""
    start: int
    """First position, 1-based as in the rule's text."""
    end: int
    """Last position, inclusive."""
    label: str
    """The segment's Chinese name as the rule calls it."""

    def positions(self) -> str:
        """``第16位`` or ``第17-22位``."""
        return f"第{self.start}位" if self.start == self.end else f"第{self.start}-{self.end}位"

    def cut(self, text: str) -> str:
        """This segment's characters of ``text``."""
        return text[self.start - 1 : self.end]


SEGMENTS: tuple[Segment, ...] = (
    Segment("kind", 1, 1, "机构类别代码"),
    Segment("route", 2, 5, "备案途径代码"),
    Segment("province", 6, 7, "省级代码"),
    Segment("institution", 8, 13, "机构序列码"),
    Segment("year", 14, 15, "年份代码"),
    Segment("level", 16, 16, "等级代码"),
    Segment("serial", 17, 22, "证书序列码"),
)
FILING_SEGMENTS = SEGMENTS[:4]

KINDS = {"Y": "企业用人单位", "S": "第三方评价机构"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a number, tied to the positions it concerns."""

    segment: str
    """The segment's key (``"length"`` for a wrong length)."""
    start: int
    """First position concerned (1-based), 0 for the whole number."""
    end: int
    """Last position concerned."""
    message: str
    """The explanation in Chinese, e.g. ``第16位 等级代码 7 无效：应为1-5``."""

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ProfilePart:
    """One sub-field of the institution sequence code that a province profile defines."""

    key: str
    """Machine name, e.g. ``city``."""
    label: str
    """Chinese name, e.g. ``地市代码``."""
    start: int
    """First position in the whole number (1-based)."""
    end: int
    """Last position, inclusive."""
    min: int
    """Smallest allowed value."""
    max: int
    """Largest allowed value."""
    names: dict[str, str] = field(default_factory=dict)
    """Meaning of each value, where the rule names them."""


@dataclass(frozen=True)
class ProvinceProfile:
    """A province's own rule for positions 8-13, loaded from ``certgen/profiles/*.toml``."""

    id: str
    """Short name, e.g. ``liaoning``."""
    province: str
    """The GB/T 2260 code it applies to, e.g. ``21``."""
    name: str
    """The province's name."""
    parts: tuple[ProfilePart, ...]
    """The sub-fields of the institution code, in order."""
    query_url: str | None = None
    """The province's own certificate query site (人社鉴发〔2021〕1号's optional 省级查询网址), printed by
    templates that place it; None: the province's rule names none (no seed states one)."""

    @classmethod
    def from_toml(cls, data: dict[str, Any], source: str) -> ProvinceProfile:
        try:
            parts = tuple(
                ProfilePart(
                    key=str(p["key"]), label=str(p["label"]), start=int(p["start"]),
                    end=int(p["end"]), min=int(p["min"]), max=int(p["max"]),
                    names={str(k): str(v) for k, v in p.get("names", {}).items()},
                )
                for p in data["part"]
            )  # fmt: skip
            url = data.get("query_url")
            profile = cls(str(data["id"]), str(data["province"]), str(data["name"]), parts, url)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"省份规则文件 {source} 格式错误：{exc!r}") from None
        if url is not None and not (
            isinstance(url, str) and re.fullmatch(r"https?://[\x21-\x7e]{1,100}", url) and "{" not in url
        ):
            seen = f"{url[:60]!r}…（共{len(url)}个字符）" if isinstance(url, str) and len(url) > 60 else repr(url)
            raise ProfileError(f"省份规则文件 {source} 的 query_url 应为 http:// 或 https:// 开头的网址，实际为 {seen}")
        covered = sorted(pos for p in parts for pos in range(p.start, p.end + 1))
        if covered != list(range(8, 14)):
            raise ProfileError(f"省份规则文件 {source} 应恰好覆盖第8-13位，实际覆盖 {covered}")
        return profile


@functools.cache
def bundled_profiles() -> dict[str, ProvinceProfile]:
    """The profiles shipped with certkiosk, keyed by province code."""
    found: dict[str, ProvinceProfile] = {}
    for entry in resources.files("certgen.profiles").iterdir():
        if entry.name.endswith(".toml"):
            profile = ProvinceProfile.from_toml(tomllib.loads(entry.read_text("utf-8")), entry.name)
            found[profile.province] = profile
    return found


def load_profiles(extra_dir: Path | None = None) -> dict[str, ProvinceProfile]:
    """The bundled profiles plus any ``*.toml`` in ``extra_dir`` (a station's own, which win)."""
    profiles = dict(bundled_profiles())
    if extra_dir is not None and extra_dir.is_dir():
        for path in sorted(extra_dir.glob("*.toml")):
            try:
                data = tomllib.loads(path.read_text("utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ProfileError(f"省份规则文件 {path} 无法读取：{exc}") from None
            profile = ProvinceProfile.from_toml(data, str(path))
            profiles[profile.province] = profile
    return profiles


class CertificateNumber(NamedTuple):
    """A parsed, valid certificate number."""

    filing_number: str
    """Positions 1-13: the institution's filing number (机构备案号)."""
    year: int
    """The year of issue, four digits (2000 + positions 14-15)."""
    level: int
    """The level digit, 1-5."""
    serial: int
    """The serial, 1-999999."""

    def __str__(self) -> str:
        return format_number(self.filing_number, self.year, self.level, self.serial)


@dataclass(frozen=True)
class NumberCheck:
    """The outcome of checking one number against the rule: facts first, verdict derived."""

    text: str
    """The number exactly as given."""
    problems: tuple[Problem, ...]
    """Everything wrong, in position order; empty when valid."""
    parts: dict[str, str]
    """Each segment's characters (empty when the length is wrong)."""
    meanings: dict[str, str]
    """What each valid segment means, in Chinese."""

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def errors(self) -> list[str]:
        return [p.message for p in self.problems]

    def explain(self) -> list[str]:
        """One Chinese line per segment: its positions, value and meaning or problem."""
        lines = []
        by_segment = {p.segment: p for p in self.problems}
        for seg in SEGMENTS if len(self.text) == NUMBER_LENGTH else FILING_SEGMENTS:
            if seg.key not in self.parts:
                continue
            problem = by_segment.get(seg.key)
            meaning = problem.message if problem else self.meanings.get(seg.key, "")
            lines.append(f"{seg.positions()} {seg.label} {self.parts[seg.key]}：{meaning}")
        lines.extend(p.message for p in self.problems if p.segment == "length")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.text,
            "valid": self.valid,
            "errors": self.errors,
            "parts": dict(self.parts),
            "meanings": dict(self.meanings),
        }

    def parsed(self) -> CertificateNumber:
        """The parsed number; ``NumberFormatError`` listing every problem if it is not valid."""
        if self.problems or len(self.text) != NUMBER_LENGTH:
            raise NumberFormatError(self.text, self.errors or ["不是完整的22位证书编号"])
        p = self.parts
        return CertificateNumber(self.text[:FILING_LENGTH], 2000 + int(p["year"]), int(p["level"]), int(p["serial"]))


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _char_problem(seg: Segment, value: str) -> Problem | None:
    """A problem when a segment has characters other than what it must hold."""
    if seg.key == "kind":
        if value in KINDS:
            return None
        if value.upper() in KINDS:
            hint = f"应为大写字母{value.upper()}"
        elif value in ("Ｙ", "Ｓ"):
            hint = "是全角字母，应为半角大写字母Y或S"
        else:
            hint = "应为Y（企业用人单位）或S（第三方评价机构）"
        return Problem(seg.key, seg.start, seg.end, f"{seg.positions()} {seg.label} {value} 无效：{hint}")
    if _is_ascii_digits(value):
        return None
    bad = [c for c in value if not (c.isascii() and c.isdigit())]
    hint = "含全角数字，应为半角数字0-9" if all("０" <= c <= "９" for c in bad) else "应全部为数字0-9"
    return Problem(seg.key, seg.start, seg.end, f"{seg.positions()} {seg.label} {value} 无效：{hint}")


def _check_segments(
    text: str,
    segments: tuple[Segment, ...],
    profiles: dict[str, ProvinceProfile],
    today: _dt.date,
) -> tuple[list[Problem], dict[str, str], dict[str, str]]:
    problems: list[Problem] = []
    parts = {seg.key: seg.cut(text) for seg in segments}
    meanings: dict[str, str] = {}

    def bad(seg: Segment, value: str, why: str) -> None:
        problems.append(Problem(seg.key, seg.start, seg.end, f"{seg.positions()} {seg.label} {value} 无效：{why}"))

    for seg in segments:
        value = parts[seg.key]
        char_problem = _char_problem(seg, value)
        if char_problem:
            problems.append(char_problem)
            continue
        if seg.key == "kind":
            meanings[seg.key] = KINDS[value]
        elif seg.key == "route":
            meanings[seg.key] = "一般机构" if value == "0000" else "中央企业分支机构（总部备案赋码）"
        elif seg.key == "province":
            if value in PROVINCES:
                meanings[seg.key] = PROVINCES[value]
            else:
                bad(seg, value, "不是GB/T 2260省级行政区划代码")
        elif seg.key == "institution":
            profile = profiles.get(parts["province"])
            if profile is None:
                meanings[seg.key] = "由省级人社部门赋码（本站无该省规则，未细查）"
                continue
            described = []
            for part in profile.parts:
                sub = text[part.start - 1 : part.end]
                where = f"第{part.start}位" if part.start == part.end else f"第{part.start}-{part.end}位"
                if not part.min <= int(sub) <= part.max:
                    width = part.end - part.start + 1
                    allowed = f"{part.min:0{width}d}-{part.max:0{width}d}"
                    problems.append(Problem(
                        seg.key, part.start, part.end,
                        f"{where} {part.label} {sub} 无效：{profile.name}规则应为{allowed}",
                    ))  # fmt: skip
                else:
                    described.append(f"{part.label}{sub}" + (f"（{part.names[sub]}）" if sub in part.names else ""))
            meanings[seg.key] = f"{profile.name}：" + "，".join(described)
        elif seg.key == "year":
            year = 2000 + int(value)
            if year > today.year:
                bad(seg, value, f"表示{year}年，晚于当前年份{today.year}")
            else:
                meanings[seg.key] = f"{year}年发证"
        elif seg.key == "level":
            if int(value) in LEVELS:
                meanings[seg.key] = LEVELS[int(value)].text
            else:
                bad(seg, value, "应为1-5")
        elif seg.key == "serial":
            if int(value) == 0:
                bad(seg, value, "应为000001-999999")
            else:
                meanings[seg.key] = f"第{int(value)}号"
    return problems, parts, meanings


def _check(
    text: str,
    length: int,
    segments: tuple[Segment, ...],
    what: str,
    profiles: dict[str, ProvinceProfile] | None,
    today: _dt.date | None,
) -> NumberCheck:
    if not isinstance(text, str):
        raise TypeError(f"{what}应为字符串，收到 {type(text).__name__}")
    if len(text) != length:
        message = f"{what}长度为{len(text)}位，应为{length}位"
        if length == NUMBER_LENGTH:
            message += "（1位字母+21位数字）"
        if text != text.strip():
            message += "；首尾含空白字符"
        return NumberCheck(text, (Problem("length", 0, 0, message),), {}, {})
    problems, parts, meanings = _check_segments(
        text, segments, bundled_profiles() if profiles is None else profiles, today or _dt.date.today()
    )
    return NumberCheck(text, tuple(problems), parts, meanings)


def check_number(
    text: str,
    *,
    profiles: dict[str, ProvinceProfile] | None = None,
    today: _dt.date | None = None,
) -> NumberCheck:
    """Check a 22-character certificate number against the national rule and its province's profile."""
    return _check(text, NUMBER_LENGTH, SEGMENTS, "证书编号", profiles, today)


def check_filing_number(text: str, *, profiles: dict[str, ProvinceProfile] | None = None) -> NumberCheck:
    """Check a 13-character institution filing number (positions 1-13 of a certificate number)."""
    return _check(text, FILING_LENGTH, FILING_SEGMENTS, "机构备案号", profiles, None)


def filing_part(number: str) -> str:
    """Positions 1-13 of a certificate number: the issuing institution's filing number (机构备案号)."""
    return number[:FILING_LENGTH]


class Mismatch(NamedTuple):
    """A valid number that disagrees with what the certificate states elsewhere."""

    code: str
    """``NUMBER_KEY_MISMATCH``, ``NUMBER_LEVEL_MISMATCH`` or ``NUMBER_YEAR_MISMATCH`` (verify's reason codes)."""
    message: str
    """What disagrees, in Chinese."""


def cross_check(
    check: NumberCheck,
    *,
    level: int | None = None,
    issue_date: _dt.date | None = None,
    filing_number: str | None = None,
    institution: str = "",
) -> list[Mismatch]:
    """The number's own segments against the level, the issue year and the signing institution.

    The one rule for record validation, issuing and verification. ``check`` must be valid; an
    argument left None is not compared.
    """
    found = []
    if filing_number is not None and filing_part(check.text) != filing_number:
        who = f"（{institution}）" if institution else ""
        found.append(Mismatch(
            "NUMBER_KEY_MISMATCH",
            f"前13位为{filing_part(check.text)}，与签发机构备案号{filing_number}{who}不一致",
        ))  # fmt: skip
    if level is not None and check.parts["level"] != str(level):
        found.append(Mismatch(
            "NUMBER_LEVEL_MISMATCH", f"第16位等级代码为{check.parts['level']}，与职业技能等级{level}不一致"
        ))  # fmt: skip
    if issue_date is not None and check.parts["year"] != f"{issue_date.year % 100:02d}":
        found.append(Mismatch(
            "NUMBER_YEAR_MISMATCH",
            f"第14-15位年份代码为{check.parts['year']}，与发证日期{issue_date.year}年不一致",
        ))  # fmt: skip
    return found


def parse_number(text: str, *, today: _dt.date | None = None) -> CertificateNumber:
    """Parse a valid certificate number; ``NumberFormatError`` naming every problem otherwise."""
    return check_number(text, today=today).parsed()


def format_number(filing_number: str, year: int, level: int, serial: int) -> str:
    """Build a number from its parts; ``ValueError`` stating the limit and the value received."""
    check = check_filing_number(filing_number)
    if not check.valid:
        raise NumberFormatError(filing_number, check.errors)
    if not 2000 <= year <= 2099:
        raise ValueError(f"发证年份应为2000-2099，收到 {year}")
    if level not in LEVELS:
        raise ValueError(f"职业技能等级应为1-5，收到 {level}")
    if not 1 <= serial <= SERIAL_MAX:
        raise ValueError(f"证书序列码应为1-{SERIAL_MAX}，收到 {serial}")
    return f"{filing_number}{year % 100:02d}{level}{serial:06d}"
