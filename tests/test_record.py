"""The certificate record and its validation (004 附件4)."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certgen.exceptions import FieldError, RecordError
from certgen.idtypes import check_id_number, gb11643_check_char
from certgen.record import TEXT_LIMITS, CertificateRecord, check_field
from tests.conftest import VECTORS, make_record


def gb_vectors() -> list[tuple[str, str, str]]:
    rows = []
    for line in (VECTORS / "gb11643.tsv").read_text("utf-8").splitlines():
        if line.startswith("#") or line.startswith("id_number\t"):
            continue
        rows.append(tuple(line.split("\t")))
    return rows  # type: ignore[return-value]


def iso7064_mod11_2(digits: str) -> str:
    """Independent, iterative form of ISO 7064 MOD 11-2 (pure system, radix 2)."""
    p = 0
    for d in digits:
        p = (p + int(d)) * 2 % 11
    value = (12 - p) % 11
    return "X" if value == 10 else str(value)


@pytest.mark.parametrize(("number", "expected", "why"), gb_vectors())
def test_gb11643_vectors(number: str, expected: str, why: str) -> None:
    problem = check_id_number(201, number, dt.date(2026, 11, 21))
    assert (problem is None) == (expected == "valid"), (why, problem)
    if expected == "valid" or "check character right" in why:
        assert iso7064_mod11_2(number[:17]) == number[17]


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_matches_an_independent_iso7064(first17: str) -> None:
    assert gb11643_check_char(first17) == iso7064_mod11_2(first17)


def test_a_valid_record_and_its_printed_texts() -> None:
    record = make_record()
    assert record.level_text == "三级/高级工"
    assert record.id_type_name == "居民身份证"
    assert record.job_type_text == "——"
    assert make_record(level=1).level_text == "一级/高级技师"
    assert make_record(level=5).level_text == "五级/初级工"


def test_every_problem_is_listed_with_field_and_value() -> None:
    with pytest.raises(RecordError) as err:
        make_record(name="", id_number="110105194912310021", level=6, issue_date=dt.date(2099, 1, 1))
    fields = [e.field for e in err.value.errors]
    assert fields == ["name", "id_number", "level", "issue_date"]
    text = str(err.value)
    assert "证件号码(id_number)「110105194912310021」" in text
    assert "校验码错误：第18位应为X，实际为1" in text
    assert "职业技能等级(level)「6」" in text
    assert "晚于今天" in text


def test_names_keep_their_exact_code_points() -> None:
    compat = "\uf900"  # CJK COMPATIBILITY IDEOGRAPH-F900; NFC would turn it into U+8C48
    assert unicodedata.normalize("NFC", compat) != compat
    record = make_record(name=f"李{compat}")
    assert record.name == f"李{compat}"
    assert make_record(name="赵孟𫖯").name == "赵孟𫖯"  # U+2B5AF, outside the BMP
    assert make_record(name="阿卜杜热合曼·买买提").name.count("·") == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (" 张三", "首尾不能有空白字符"),
        ("张\t三", r"含控制字符 U\+0009"),
        ("张\ue000", "私用区字符"),
        ("张三3", "不应含数字"),
        ("张" * 31, "上限30个"),
        ("𫖯" * 16, "UTF-8编码64字节，上限60字节"),
    ],
)
def test_bad_names(name: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        make_record(name=name)


@pytest.mark.parametrize(
    ("id_type", "number", "ok"),
    [
        (227, "E12345678", True),
        (227, "E1234567", False),
        (210, "H12345678", True),
        (210, "H1234567890", True),
        (210, "A12345678", False),
        (237, "810000199001011232", None),  # check char computed below
        (213, "12345678", True),
        (238, "830000199001011234", None),
        (208, "X1234567", True),
        (208, "x1234567", False),
        (233, "USA123456789012", True),
        (239, "123456789", True),
        (299, "AB-12(3)", True),
        (299, "AB 123", False),
    ],
)
def test_other_document_types(id_type: int, number: str, ok: bool | None) -> None:
    if ok is None:  # a residence permit: make the check character right, then wrong
        number = number[:17] + gb11643_check_char(number[:17])
        assert check_id_number(id_type, number) is None
        wrong = number[:17] + ("0" if number[17] != "0" else "1")
        assert "校验码错误" in (check_id_number(id_type, wrong) or "")
        assert "开头" in (check_id_number(id_type, "110105194912310021") or "")
        return
    assert (check_id_number(id_type, number) is None) is ok


def test_twelve_document_types() -> None:
    accepted = [code for code in range(1000) if check_field("id_type", code) is None]
    assert accepted == [201, 208, 210, 213, 227, 233, 237, 238, 239, 240, 241, 299]  # 004 附件4
    assert "202」无效：应为201=居民身份证、227=中国护照" in (check_field("id_type", 202) or "")
    with pytest.raises(RecordError, match="证件类型"):
        make_record(id_type=202)


def test_number_must_agree_with_level_and_year() -> None:
    assert make_record(number="Y000021012001203000001").number == "Y000021012001203000001"
    with pytest.raises(RecordError, match="第16位等级代码为4，与职业技能等级3不一致"):
        make_record(number="Y000021012001204000001")
    with pytest.raises(RecordError, match="第14-15位年份代码为21，与发证日期2020年不一致"):
        make_record(number="Y000021012001213000001")
    with pytest.raises(RecordError, match="不符合编码规则"):
        make_record(number="Y000021012001203000000")


def test_issuer_must_be_the_evaluator() -> None:
    make_record(evaluator="甲公司", issuer="甲公司")
    with pytest.raises(RecordError, match="谁评价、谁发证"):
        make_record(evaluator="甲公司", issuer="乙公司")


def test_issue_date_rules() -> None:
    with pytest.raises(RecordError, match="早于2019年"):
        make_record(issue_date=dt.date(2018, 12, 31))
    with pytest.raises(RecordError, match="早于证件号码中的出生日期"):
        born_2020 = "11010520200101001"
        make_record(id_number=born_2020 + gb11643_check_char(born_2020), issue_date=dt.date(2019, 6, 1))


def test_from_fields_understands_what_users_type() -> None:
    record = CertificateRecord.from_fields(
        {
            "name": "王五", "id_type": "居民身份证", "id_number": " 11010519491231002x ",
            "occupation_code": "6-18-01-01", "occupation": "车工", "job_type": "——",
            "level": "三级/高级工", "issue_date": "2020-11-15", "number": "",
        }
    )  # fmt: skip
    assert record.id_type == 201
    assert record.id_number == "11010519491231002X"
    assert record.level == 3
    assert record.job_type is None
    assert record.number is None
    assert record.issue_date == dt.date(2020, 11, 15)


def test_from_fields_lists_every_bad_and_missing_field() -> None:
    with pytest.raises(RecordError) as err:
        CertificateRecord.from_fields({"name": "王五", "level": "特级", "issue_date": "2020/11/15", "colour": "x"})
    fields = {e.field for e in err.value.errors}
    assert {"colour", "level", "issue_date", "id_type", "id_number", "occupation", "occupation_code"} <= fields
    assert all(isinstance(e, FieldError) for e in err.value.errors)


def test_check_field_for_forms() -> None:
    assert check_field("name", "张三") is None
    assert "上限30个" in (check_field("name", "张" * 31) or "")
    assert check_field("level", "高级工") is None
    assert "无效" in (check_field("level", "9") or "")
    assert "格式不符" in (check_field("issue_date", "2020.1.1") or "")
    assert check_field("number", "Y000021012001203000001") is None
    assert "第16位" in (check_field("number", "Y000021012001209000001") or "")


def test_every_text_field_of_a_record_refuses_text_over_its_limit() -> None:
    import dataclasses
    import typing

    hints = typing.get_type_hints(CertificateRecord)
    text_fields = [f.name for f in dataclasses.fields(CertificateRecord) if hints[f.name] in (str, str | None)]
    assert "name" in text_fields and "issuer" in text_fields
    for field in text_fields:  # a field added later without a limit fails here
        with pytest.raises(RecordError, match=rf"\({field}\)"):
            make_record(**{field: "张" * 201})
    for field, limit in TEXT_LIMITS.items():  # the free-text fields: up to the stated limits
        make_record(**{field: "A" * limit.chars})
        with pytest.raises(RecordError, match=f"上限{limit.chars}个"):
            make_record(**{field: "A" * (limit.chars + 1)})
        hanzi = min(limit.chars, limit.utf8 // 3)  # 3 UTF-8 bytes each
        make_record(**{field: "张" * hanzi})
        bound = f"上限{limit.utf8}字节" if hanzi < limit.chars else f"上限{limit.chars}个"
        with pytest.raises(RecordError, match=bound):
            make_record(**{field: "张" * (hanzi + 1)})


def _permanent_residence_id(born: str, sequence: str = "001") -> str:
    """A new-format (2023) 18-character 外国人永久居留身份证 number: 9, region, nationality, birth, sequence."""
    first17 = "9" + "11" + "840" + born + sequence[:3]
    return first17[:17] + gb11643_check_char(first17[:17])


def test_a_new_format_permanent_residence_id_is_checked_like_a_resident_id() -> None:
    # type 233's 18-character numbers carry a birth date, a sex digit and the check character of GB 11643
    number = _permanent_residence_id("19900101")
    if not number.endswith("X"):  # find a sequence whose check character is X, to see it normalised
        number = next(
            n for n in (_permanent_residence_id("19900101", f"{i:03d}") for i in range(1000)) if n.endswith("X")
        )
    record = CertificateRecord.from_fields(
        {
            "name": "Anna Smith", "id_type": "233", "id_number": number.lower(), "occupation_code": "6-18-01-01",
            "occupation": "车工", "level": "3", "issue_date": "2020-11-15",
        }
    )  # fmt: skip
    assert record.id_number == number
    with pytest.raises(RecordError, match="早于证件号码中的出生日期"):
        make_record(id_type=233, name="Anna Smith", id_number=_permanent_residence_id("20200101"),
                    issue_date=dt.date(2019, 6, 1))  # fmt: skip


def test_the_public_notice_takes_sex_and_birth_from_every_gb11643_document_type() -> None:
    from pathlib import Path

    from certgen.issuing.reports import BatchEntry, public_rows

    number = _permanent_residence_id("19851231", "002")  # 17th digit 2: female
    record = make_record(id_type=233, name="Anna Smith", id_number=number)
    entry = BatchEntry(record=record, pdf=Path("x.pdf"), pdf_sha256="0" * 64)
    row = public_rows([entry])[0]
    assert row[2:4] == ["女", "1985.12"]
