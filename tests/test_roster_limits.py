"""Hostile rosters: deep JSON, huge numbers, too many rows (stopped while reading), wrong encodings."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from certgen.issuing.roster import RosterError, read_roster
from tests.test_batch import roster_rows, write_csv


def test_the_default_row_limit_is_100000_rows(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text("[" + ",".join(["{}"] * 100_001) + "]", "utf-8")  # counted before any row is read
    with pytest.raises(RosterError, match=r"huge\.json 超过100000行：请分批发证"):
        read_roster(path)


def test_json_nested_100000_deep_is_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, "utf-8")
    with pytest.raises(RosterError, match=r"deep\.json 不是有效的名册：JSON 嵌套层数过多"):
        read_roster(path)


def test_a_5000_digit_integer_is_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text('[{"姓名": ' + "9" * 5000 + "}]", "utf-8")
    with pytest.raises(RosterError, match=r"big\.json 不是有效的名册：JSON 中有位数过多的数字（超过4300位）"):
        read_roster(path)


def test_xlsx_row_limit_applies_while_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in roster_rows(3000):
        sheet.append(row)
    path = tmp_path / "big.xlsx"
    book.save(path)
    read = 0
    original = ReadOnlyWorksheet._cells_by_row

    def counting(self: ReadOnlyWorksheet, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        nonlocal read
        for row in original(self, *args, **kwargs):  # type: ignore[arg-type]
            read += 1
            yield row

    monkeypatch.setattr(ReadOnlyWorksheet, "_cells_by_row", counting)
    with pytest.raises(RosterError, match=r"big\.xlsx 超过50行：请分批发证"):
        read_roster(path, max_rows=50)
    assert read <= 52, f"{read} rows were read before the limit stopped it"
    assert len(read_roster(path, max_rows=3000).rows) == 3000


def test_csv_and_json_row_limits(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", roster_rows(51), "utf-8")
    with pytest.raises(RosterError, match="超过50行"):
        read_roster(path, max_rows=50)
    assert len(read_roster(path, max_rows=51).rows) == 51


def test_a_shift_jis_roster_is_named_as_such(tmp_path: Path) -> None:
    rows = [["姓名", "id_type", "id_number", "occupation", "occupation_code", "level", "issue_date"],
            ["山田太郎", "299", "TK1234567", "車工", "6-18-01-01", "3", "2020-11-15"]]  # fmt: skip
    path = tmp_path / "sjis.csv"
    with path.open("w", encoding="shift_jis", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(RosterError, match=r"sjis\.csv 的编码是 Shift-JIS（日文），不受支持"):
        read_roster(path)


def test_an_unrecognisable_encoding_is_said(tmp_path: Path) -> None:
    path = tmp_path / "noise.csv"
    path.write_bytes(bytes(range(0x81, 0xFF)) * 3 + b"\n" + b"\x81\x40" * 10 + b"\n")
    with pytest.raises(RosterError, match=r"noise\.csv 的编码无法识别"):
        read_roster(path)
