"""Batch issuance from rosters: encodings, bad rows, resuming, and the report tables."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from certgen.exceptions import BatchInvalid, RosterChanged, RosterError
from certgen.issuing.batch import plan_batch, run_batch
from certgen.issuing.issuer import Issuer
from certgen.issuing.reports import DATA_TABLE_COLUMNS, SUMMARY_COLUMNS
from certgen.issuing.roster import read_roster
from tests.conftest import resident_id

HEADER = [
    "姓名",
    "证件类型",
    "证件号码",
    "所在单位",
    "职业编码",
    "职业名称",
    "工种名称",
    "职业技能等级",
    "证书编号",
    "发证日期",
    "照片",
]
SURNAMES = "王李张刘陈杨赵黄周吴"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "霞",
    "平",
]
JOBS = [("6-18-01-01", "车工", "数控车工"), ("6-18-01-01", "车工", ""), ("6-31-01-03", "汽车维修工", "")]


def roster_rows(count: int, photo: str = "p0.jpg") -> list[list[str]]:
    rows = [HEADER]
    for i in range(count):
        code, occupation, job = JOBS[i % len(JOBS)]
        name = SURNAMES[i % 10] + GIVEN[i % 20]
        if i >= 200:  # longer rosters: distinct, valid names (a digit in a name is refused), e.g. 王伟芳伟
            name += GIVEN[(i // 20) % 20] + GIVEN[(i // 400) % 20]
        rows.append([
            name, "201", resident_id(i), "示例公司", code, occupation, job, str(3 + i % 3), "", "2020-11-15", photo,
        ])  # fmt: skip
    return rows


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


@pytest.fixture(scope="module")
def rosters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("rosters")
    rows = roster_rows(200)
    return {
        "utf-8": write_csv(folder / "utf8.csv", rows, "utf-8"),
        "utf-8-sig": write_csv(folder / "bom.csv", rows, "utf-8-sig"),
        "gb18030": write_csv(folder / "gbk.csv", rows, "gb18030"),
        "xlsx": write_xlsx(folder / "roster.xlsx", rows),
    }


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "xlsx"])
def test_a_200_row_roster_reads_the_same_in_every_encoding(
    issuer: Issuer, rosters: dict[str, Path], photo_dir: Path, encoding: str
) -> None:
    roster = read_roster(rosters[encoding])
    assert roster.encoding == encoding
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
        reference = plan_batch(issuer, reg, read_roster(rosters["utf-8"]), photo_dir)
    assert plan.problems == []
    assert len(plan.rows) == 200
    assert [p.record for p in plan.rows] == [p.record for p in reference.rows]


def test_issuing_a_200_row_batch_and_its_reports(issuer: Issuer, rosters: dict[str, Path], photo_dir: Path) -> None:
    roster = read_roster(rosters["utf-8"])
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    seen: list[int] = []
    result = run_batch(issuer, plan, progress=lambda done, total, number: seen.append(done))
    assert result.issued == 200 and seen == list(range(1, 201))
    pdfs = sorted(result.folder.glob("*.pdf"))
    assert len(pdfs) == 200
    # serials in order, per level, from 000001
    by_level: dict[str, list[int]] = {}
    for pdf in pdfs:
        by_level.setdefault(pdf.stem[15], []).append(int(pdf.stem[16:]))
    assert {lv: sorted(s) for lv, s in by_level.items()} == {
        lv: list(range(1, len(s) + 1)) for lv, s in by_level.items()
    }

    table = list(csv.reader(io.StringIO((result.folder / "证书数据表.csv").read_text("utf-8-sig"))))
    assert tuple(table[0]) == DATA_TABLE_COLUMNS
    assert len(table) == 201
    first = table[1]
    assert first[1] == "201" and first[8] == "2020-11-15" and len(first[7]) == 22
    assert first[9] == first[10] == "华晨汽车集团控股有限公司"

    book = load_workbook(result.folder / "结果汇总表.xlsx")
    sheet = book.active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    header_at = next(i for i, row in enumerate(values) if row[0] == SUMMARY_COLUMNS[0])
    total = values[-1]
    assert total[0] == "合  计" and total[-1] == 200
    body = values[header_at + 1 : -1]
    assert sum(row[-1] for row in body) == 200
    for row in body:
        assert sum(row[1:6]) == row[6]
    assert {row[0] for row in body} == {"车工（数控车工）", "车工", "汽车维修工"}

    manifest = json.loads((result.folder / "manifest.json").read_text("utf-8"))
    assert manifest["count"] == 200
    entry = manifest["certificates"][0]
    assert hashlib.sha256((result.folder / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]

    public = (result.folder / "公示名册.csv").read_text("utf-8-sig")
    assert resident_id(0) not in public and resident_id(0)[:6] + "********" in public


def test_bad_rows_are_all_listed_and_nothing_is_issued(issuer: Issuer, tmp_path: Path, photo_dir: Path) -> None:
    rows = roster_rows(6)
    rows[2][2] = rows[2][2][:-1] + ("0" if rows[2][2][-1] != "0" else "1")  # check character
    rows[3][7] = "7"  # level
    rows[4][10] = "missing.jpg"  # photo
    rows[5] = list(rows[1])  # the same person twice
    roster = read_roster(write_csv(tmp_path / "bad.csv", rows, "utf-8"))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    problems = {p.row: str(p) for p in plan.problems}
    assert set(problems) == {3, 4, 5, 6}
    assert "校验码错误" in problems[3] and "职业技能等级" in problems[4]
    assert "missing.jpg" in problems[5] and "与第2行是同一人" in problems[6]
    with pytest.raises(BatchInvalid, match="名册有4处错误，未发任何证书"):
        run_batch(issuer, plan)
    with issuer.station.register() as reg:
        assert reg.counts()["issued"] == 0
    result = run_batch(issuer, plan, skip_invalid=True)
    assert result.issued == 2  # rows 2 and 7; rows 3-6 are left out (row 6 repeats row 2)


def test_an_interrupted_batch_resumes_without_issuing_anyone_twice(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certgen.issuing.issuer

    roster = read_roster(write_csv(tmp_path / "r.csv", roster_rows(12), "utf-8"))
    real_finish = certgen.issuing.issuer.finish
    calls = {"n": 0}

    def crash_on_the_eighth(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt  # the operator pulls the plug mid-certificate
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(certgen.issuing.issuer, "finish", crash_on_the_eighth)
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    with pytest.raises(KeyboardInterrupt):
        run_batch(issuer, plan)
    with issuer.station.register() as reg:
        assert reg.counts() == {"pending": 0, "issued": 7, "void": 1}
        plan = plan_batch(issuer, reg, roster, photo_dir)
    assert len(plan.done) == 7
    result = run_batch(issuer, plan)
    assert (result.issued, result.skipped) == (5, 7)
    with issuer.station.register() as reg:
        certs = [c for c in reg.batch(plan.batch_id) if c.status == "issued"]
        assert len(certs) == 12 and len({c.row_key for c in certs}) == 12
        assert reg.check() == []


def test_two_worker_processes_issue_the_same_batch(issuer: Issuer, tmp_path: Path, photo_dir: Path) -> None:
    roster = read_roster(write_csv(tmp_path / "r.csv", roster_rows(8), "utf-8"))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    result = run_batch(issuer, plan, workers=2)
    assert result.issued == 8
    with issuer.station.register() as reg:
        assert reg.counts()["issued"] == 8 and reg.check() == []


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("姓名,证件类型\n张三,201\n", "a.csv", "缺少必需的列"),
        ("姓名,证件类型,证件号,职业名称\n", "b.csv", "无法识别的列：证件号"),
        ("", "c.csv", "是空的"),
        ("{}", "d.txt", "无法识别的列：\\{\\}"),
        ("not json", "e.json", "不是有效的 JSON"),
        ("x", "f.pdf", "不受支持"),
    ],
)
def test_unreadable_rosters(tmp_path: Path, content: str, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, "utf-8")
    with pytest.raises(RosterError, match=message):
        read_roster(path)


def test_excel_numbers_for_id_numbers_are_refused(tmp_path: Path) -> None:
    rows: list[list[object]] = [list(r) for r in roster_rows(1)]
    rows[1][2] = 210102198001010000
    with pytest.raises(RosterError, match="被 Excel 存成了数字"):
        read_roster(write_xlsx(tmp_path / "n.xlsx", rows))  # type: ignore[arg-type]


def test_a_json_record_is_a_roster_of_one(issuer: Issuer, tmp_path: Path, photo_dir: Path) -> None:
    record = dict(zip(["name", "id_type", "id_number", "employer", "occupation_code", "occupation", "job_type",
                       "level", "number", "issue_date", "photo"], roster_rows(1)[1], strict=True))  # fmt: skip
    path = tmp_path / "one.json"
    path.write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    roster = read_roster(path)
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    assert plan.problems == [] and len(plan.rows) == 1


def test_english_snake_case_headers_are_accepted(issuer: Issuer, tmp_path: Path, photo_dir: Path) -> None:
    english = ["name", "id_type", "id_number", "employer", "occupation_code", "occupation", "job_type", "level",
               "number", "issue_date", "photo"]  # fmt: skip
    rows = roster_rows(3)
    rows[0] = english
    roster = read_roster(write_csv(tmp_path / "english.csv", rows, "utf-8"))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    assert plan.problems == [] and [p.record.name for p in plan.rows] == [r[0] for r in rows[1:]]


def test_a_data_table_read_back_as_a_roster_gives_the_same_fields(tmp_path: Path) -> None:
    # roster headers and report columns come from one label table (certgen.labels), so they cannot drift;
    # 004 附件4's table has no 职业编码, so a re-imported table needs that one column added
    from certgen.issuing.reports import BatchEntry, data_table_rows
    from certgen.record import CertificateRecord
    from tests.conftest import make_record

    records = [make_record(name=f"王{c}", id_number=resident_id(i)) for i, c in enumerate("一二三", 1)]
    entries = [BatchEntry(record=r, pdf=Path(f"{i}.pdf"), pdf_sha256="0" * 64) for i, r in enumerate(records)]
    path = tmp_path / "证书数据表.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        rows = [[*row, r.occupation_code] for row, r in zip(data_table_rows(entries), records, strict=True)]
        csv.writer(fh).writerows([[*DATA_TABLE_COLUMNS, "职业编码"], *rows])
    roster = read_roster(path)
    assert [CertificateRecord.from_fields(row.fields) for row in roster.rows] == records


def test_reports_streamed_from_the_register_are_the_reports_of_the_whole_list(tmp_path: Path) -> None:
    """A batch's reports are written as certificates pass (an iterator in number order, never held
    whole): every file must be what the same certificates given as one list produce."""
    import json

    from certgen.issuing.reports import BatchEntry, write_batch_reports
    from tests.conftest import make_record

    records = [
        make_record(name=f"王{c}", id_number=resident_id(i), number=f"Y000021012001203{i:06d}")
        for i, c in enumerate("一二三四", 1)
    ]
    entries = [
        BatchEntry(
            record=r.replace(evaluator="示例中心", issuer="示例中心"),
            pdf=Path(f"{r.number}.pdf"),
            pdf_sha256=f"{i:064d}",
        )
        for i, r in enumerate(records)
    ]
    listed, streamed = tmp_path / "listed", tmp_path / "streamed"
    a = write_batch_reports(listed, "B1", "示例中心", list(reversed(entries)), checkpoint={"seq": 1})
    b = write_batch_reports(streamed, "B1", "示例中心", iter(entries), checkpoint={"seq": 1})
    assert [p.name for p in a] == [p.name for p in b]
    for path in a:
        if path.suffix == ".csv":
            assert path.read_bytes() == (streamed / path.name).read_bytes()
        elif path.suffix == ".xlsx":
            sheet = [[c.value for c in row] for row in load_workbook(path).active.iter_rows()]
            assert sheet == [[c.value for c in row] for row in load_workbook(streamed / path.name).active.iter_rows()]
    manifest = json.loads((streamed / "manifest.json").read_text("utf-8"))
    assert manifest["count"] == 4 and manifest["checkpoint"] == {"seq": 1}
    assert [c["number"] for c in manifest["certificates"]] == [r.number for r in records]
    assert manifest == json.loads((listed / "manifest.json").read_text("utf-8"))


def test_a_roster_edited_after_it_was_checked_is_refused_and_nothing_is_issued(
    issuer: Issuer, tmp_path: Path, photo_dir: Path
) -> None:
    """A clumsy operator fixes a name in the roster while the batch waits for confirmation: the
    rows are not held in memory but read again, so the edit must be noticed, never issued."""
    rows = roster_rows(5)
    path = write_csv(tmp_path / "r.csv", rows, "utf-8")
    roster = read_roster(path)
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    assert plan.problems == [] and len(plan.to_issue) == 5
    rows[3][0] = "李四"  # edited and saved after the check
    write_csv(path, rows, "utf-8")
    with pytest.raises(RosterChanged, match=r"名册 .*r\.csv 在读取和检查之后被修改过"):
        run_batch(issuer, plan)
    with issuer.station.register() as reg:
        assert reg.counts()["issued"] == 0 and reg.counts()["pending"] == 0
    assert not list((issuer.out_dir or tmp_path).rglob("*.pdf"))
    with issuer.station.register() as reg, pytest.raises(RosterChanged):
        plan_batch(issuer, reg, roster, photo_dir)  # the roster as read is gone: checked again from the file
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, read_roster(path), photo_dir)  # read again: the edited rows
    result = run_batch(issuer, plan)
    assert result.issued == 5
    with issuer.station.register() as reg:
        assert sorted(c.record.name for c in reg.batch(plan.batch_id) if c.status == "issued").count("李四") == 1


def test_the_batch_id_is_the_earlier_one_for_the_same_rows(tmp_path: Path) -> None:
    """Batch identity is kept across versions (a batch begun before still resumes): the SHA-256
    of the rows' normalised cells as one JSON list sorted by each row's JSON, as first defined."""
    from certgen.issuing.batch import _normal, batch_id_of

    rows = roster_rows(40)
    rows[0] = [*rows[0], "学历", "理论成绩"]  # a copy: the header list is shared
    for i, row in enumerate(rows[1:]):
        row += ["大学本科" if i % 3 else "", f"{60 + i}"]
    roster = read_roster(write_csv(tmp_path / "r.csv", [rows[0], *reversed(rows[1:])], "gb18030"))
    cells = [
        {k: v for k, v in ({k: _normal(v) for k, v in r.fields.items()} | {"extra:" + k: _normal(v) for k, v in
         r.extras.items()}).items() if v}
        for r in roster.rows
    ]  # fmt: skip
    text = json.dumps(sorted(cells, key=lambda r: json.dumps(r, sort_keys=True)), ensure_ascii=False, sort_keys=True)
    assert batch_id_of(roster) == "B" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def test_a_batch_larger_than_a_settling_page_leaves_no_publishing_entry(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certgen.issuing.recovery

    monkeypatch.setattr(certgen.issuing.recovery, "SETTLE_PAGE", 2)  # 5 rows: three pages
    roster = read_roster(write_csv(tmp_path / "r.csv", roster_rows(5), "utf-8"))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    assert run_batch(issuer, plan).issued == 5
    with issuer.station.register() as reg:
        assert reg.unpublished() == [] and reg.counts()["issued"] == 5
