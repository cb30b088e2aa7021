"""The certificate number rule of 002 附件5 and the Liaoning profile."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from certgen.exceptions import NumberFormatError
from certgen.number import CertificateNumber, check_filing_number, check_number, format_number, parse_number
from tests.conftest import VECTORS

TODAY = dt.date(2026, 11, 21)


def seed_filing_numbers() -> list[tuple[str, str]]:
    rows = []
    for line in (VECTORS / "filing_numbers" / "seed-002.tsv").read_text("utf-8").splitlines():
        if line.startswith("#") or line.startswith("filing_number"):
            continue
        number, name, _annex, _line = line.split("\t")
        rows.append((number, name))
    return rows


def test_the_seed_lists_all_58_filing_numbers() -> None:
    rows = seed_filing_numbers()
    assert len(rows) == 58
    assert len({n for n, _ in rows}) == 58


@pytest.mark.parametrize(("filing", "name"), seed_filing_numbers())
def test_every_real_filing_number_is_a_valid_prefix(filing: str, name: str) -> None:
    check = check_filing_number(filing)
    assert check.valid, (name, check.errors)
    number = format_number(filing, 2020, 3, 1)
    assert check_number(number, today=TODAY).valid
    assert parse_number(number, today=TODAY).filing_number == filing


def test_a_valid_number_is_explained_segment_by_segment() -> None:
    check = check_number("Y001121011001203000042", today=TODAY)
    assert check.valid
    assert check.parts == {
        "kind": "Y", "route": "0011", "province": "21", "institution": "011001",
        "year": "20", "level": "3", "serial": "000042",
    }  # fmt: skip
    text = "\n".join(check.explain())
    assert "第1位 机构类别代码 Y：企业用人单位" in text
    assert "地市代码01（沈阳市）" in text
    assert "机构类型代码1（央企辽宁分公司）" in text
    assert "第16位 等级代码 3：三级/高级工" in text
    assert parse_number(check.text, today=TODAY) == CertificateNumber("Y001121011001", 2020, 3, 42)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("Y00002101200120300001", "长度为21位，应为22位"),
        ("Y0000210120012030000011", "长度为23位，应为22位"),
        ("", "长度为0位"),
        (" Y000021012001203000001", "首尾含空白字符"),
        ("y000021012001203000001", "第1位 机构类别代码 y 无效：应为大写字母Y"),
        ("X000021012001203000001", "第1位 机构类别代码 X 无效：应为Y（企业用人单位）或S（第三方评价机构）"),
        ("Ｙ000021012001203000001", "是全角字母"),
        ("Y０00021012001203000001", "第2-5位 备案途径代码 ０000 无效：含全角数字，应为半角数字0-9"),
        ("Y00A021012001203000001", "第2-5位 备案途径代码 00A0 无效：应全部为数字0-9"),
        ("Y000099012001203000001", "第6-7位 省级代码 99 无效：不是GB/T 2260省级行政区划代码"),
        ("Y000010012001203000001", "第6-7位 省级代码 10 无效"),
        ("Y000021012001200000001", "第16位 等级代码 0 无效：应为1-5"),
        ("Y000021012001206000001", "第16位 等级代码 6 无效：应为1-5"),
        ("Y000021012001207000001", "第16位 等级代码 7 无效：应为1-5"),
        ("Y000021012001203000000", "第17-22位 证书序列码 000000 无效：应为000001-999999"),
        ("Y000021152001203000001", "第8-9位 地市代码 15 无效：辽宁省规则应为01-14"),
        ("Y000021007001203000001", "第8-9位 地市代码 00 无效"),
        ("Y000021017001203000001", "第10位 机构类型代码 7 无效：辽宁省规则应为1-6"),
        ("Y000021012000203000001", "第11-13位 备案顺序码 000 无效：辽宁省规则应为001-999"),
        ("Y000021012001273000001", "第14-15位 年份代码 27 无效：表示2027年，晚于当前年份2026"),
    ],
)
def test_invalid_numbers_name_the_positions_and_the_rule(number: str, expected: str) -> None:
    check = check_number(number, today=TODAY)
    assert not check.valid
    assert any(expected in e for e in check.errors), check.errors
    with pytest.raises(NumberFormatError) as err:
        check.parsed()
    assert number in str(err.value)


def test_several_problems_are_all_reported() -> None:
    check = check_number("S000099012001206000000", today=TODAY)
    assert [p.segment for p in check.problems] == ["province", "level", "serial"]


def test_other_provinces_pass_the_national_rule_without_a_profile() -> None:
    check = check_number("S000043999999205000001", today=TODAY)  # Hunan: no bundled profile
    assert check.valid
    assert check.meanings["province"] == "湖南省"
    assert "未细查" in check.meanings["institution"]


def test_a_station_profile_file_adds_a_province(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from certgen.number import load_profiles

    (tmp_path / "hunan.toml").write_text(
        'id = "hunan"\nprovince = "43"\nname = "湖南省"\n'
        '[[part]]\nkey = "org"\nlabel = "机构代码"\nstart = 8\nend = 13\nmin = 1\nmax = 500\n',
        "utf-8",
    )
    profiles = load_profiles(tmp_path)
    assert check_number("S000043000500205000001", profiles=profiles, today=TODAY).valid
    bad = check_number("S000043000501205000001", profiles=profiles, today=TODAY)
    assert bad.errors == ["第8-13位 机构代码 000501 无效：湖南省规则应为000001-000500"]


def test_a_profile_that_does_not_cover_positions_8_to_13_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from certgen.number import load_profiles

    (tmp_path / "bad.toml").write_text(
        'id = "x"\nprovince = "43"\nname = "湖南省"\n'
        '[[part]]\nkey = "org"\nlabel = "机构代码"\nstart = 8\nend = 12\nmin = 1\nmax = 5\n',
        "utf-8",
    )
    with pytest.raises(ValueError, match="应恰好覆盖第8-13位"):
        load_profiles(tmp_path)


def test_format_number_states_the_limit_and_the_value() -> None:
    assert format_number("Y000021012001", 2020, 5, 7) == "Y000021012001205000007"
    with pytest.raises(ValueError, match="证书序列码应为1-999999，收到 1000000"):
        format_number("Y000021012001", 2020, 5, 1_000_000)
    with pytest.raises(ValueError, match="职业技能等级应为1-5，收到 0"):
        format_number("Y000021012001", 2020, 0, 1)
    with pytest.raises(NumberFormatError, match="地市代码 15"):
        format_number("Y000021152001", 2020, 3, 1)


def test_json_form_has_the_documented_keys() -> None:
    data = json.loads(json.dumps(check_number("Y000021012001203000001", today=TODAY).to_json()))
    assert {"number", "valid", "errors", "parts"} <= set(data)
    assert data["valid"] is True and data["errors"] == []
