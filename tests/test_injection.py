"""Formula injection: roster text that a spreadsheet would run is written as inert text everywhere."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from certgen.cells import neutralise_cell
from certgen.issuing.batch import plan_batch, run_batch
from certgen.issuing.issuer import Issuer
from certgen.issuing.reports import check_public_columns
from certgen.issuing.roster import read_roster
from tests.conftest import make_record, resident_id
from tests.test_batch import HEADER, write_csv

HYPERLINK = '=HYPERLINK("http://x","y")'
DDE = "cmd|'/C calc'!A0"
EXTRA = ["性别", "学历", "理论成绩", "技能成绩"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HYPERLINK, "'" + HYPERLINK), ("+SUM(A1)", "'+SUM(A1)"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("张三", "张三"), ("", ""), (DDE, DDE),
    ],
)  # fmt: skip
def test_neutralise_cell(text: str, expected: str) -> None:
    assert neutralise_cell(text) == expected


def test_roster_formulas_are_text_in_every_report(issuer: Issuer, tmp_path: Path, photo_dir: Path) -> None:
    rows = [
        HEADER + EXTRA,
        [HYPERLINK, "201", resident_id(1), "=" + DDE, "6-18-01-01", "车工", "@SUM", "3", "", "2020-11-15", "p0.jpg",
         "", "大学本科", "88", "90.5"],
        ["李四", "201", resident_id(2), "+" + DDE, "6-18-01-01", "车工", "-数控", "4", "", "2020-11-15", "p1.jpg",
         "", "", "", ""],
    ]  # fmt: skip
    roster = read_roster(write_csv(tmp_path / "r.csv", rows, "utf-8"))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    assert plan.problems == []
    result = run_batch(issuer, plan)
    user_text = {HYPERLINK, "=" + DDE, "+" + DDE, "@SUM", "-数控", "车工（@SUM）", "车工（-数控）"}
    xlsx = sorted(result.folder.glob("*.xlsx"))
    assert len(xlsx) == 4
    found: set[str] = set()
    for path in xlsx:
        for row in load_workbook(path).active.iter_rows():  # type: ignore[union-attr]
            for cell in row:
                assert cell.data_type != "f", f"{path.name} {cell.coordinate} is a formula: {cell.value!r}"
                if cell.value in user_text:
                    found.add(str(cell.value))
                    assert cell.quotePrefix == (str(cell.value)[0] in "=+-@"), f"{path.name} {cell.coordinate}"
    assert {HYPERLINK, "=" + DDE, "+" + DDE, "@SUM", "-数控"} <= found  # shown exactly as typed
    csv_cells = [
        cell
        for path in sorted(result.folder.glob("*.csv"))
        for row in csv.reader(io.StringIO(path.read_text("utf-8-sig")))
        for cell in row
    ]
    assert "'" + HYPERLINK in csv_cells and "'=" + DDE in csv_cells and "'+" + DDE in csv_cells
    assert "'-数控" in csv_cells and "'车工（@SUM）" not in csv_cells
    assert not [c for c in csv_cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_verify_csv_report_neutralises_file_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from certgen.trust import TrustBundle
    from verify.archive import run_archive
    from verify.report import to_csv

    monkeypatch.chdir(tmp_path)
    Path("=HYPERLINK(x).png").write_bytes(b"not an image")
    Path("@evil.pdf").write_bytes(b"not a pdf")
    files = [Path("=HYPERLINK(x).png"), Path("@evil.pdf")]
    run = run_archive(files, TrustBundle(), state_path=tmp_path / "s", workers=1)
    cells = [c for row in csv.reader(io.StringIO(to_csv(run).decode("utf-8-sig"))) for c in row]
    assert "'=HYPERLINK(x).png" in cells and "'@evil.pdf" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


@pytest.mark.parametrize(
    ("extras", "problem"),
    [
        ({"学历": "=HYPERLINK(1)"}, "学历「=HYPERLINK(1)」不在可选值中"),
        ({"理论成绩": "101"}, "理论成绩「101」应为0-100之间的数字"),
        ({"技能成绩": "-1+1"}, "技能成绩「-1+1」应为0-100之间的数字"),
        ({"业绩评审成绩": "nan"}, "业绩评审成绩「nan」应为0-100之间的数字"),
        ({"性别": "@男"}, "性别「@男」应为“男”或“女”"),
        ({"性别": "女"}, "性别「女」与证件号码第17位（男）不符"),
        ({"专业工龄": "99"}, "专业工龄「99」应为0-60之间的数字"),
    ],
)
def test_public_notice_columns_are_validated(extras: dict[str, str], problem: str) -> None:
    record = make_record(id_number=resident_id(1))  # 17th digit 1: male
    found = check_public_columns(extras, record)
    assert len(found) == 1 and found[0].startswith(problem), found
    assert check_public_columns({"学历": "大专", "理论成绩": "60", "性别": "男", "专业工龄": "5"}, record) == []
