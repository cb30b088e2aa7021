"""The national template to 人社鉴发〔2021〕1号: every required item, in order, 12 pt filled text,
the two national query URLs, "--" for an absent 工种, and hanging indents for long values."""

from __future__ import annotations

from pathlib import Path

import pdfplumber
import pytest
from click.testing import CliRunner

from certgen.issuing.issuer import Issuer
from certgen.pdf.measure import font_note, measure
from certgen.pdf.render import layout_text
from certgen.pdf.template import load_template, placeholders
from tests.conftest import PASSPHRASE, make_record

MM = 72 / 25.4


@pytest.fixture
def national(issuer: Issuer, photo_dir: Path) -> tuple[Issuer, Path]:
    issuer = Issuer(issuer.station, PASSPHRASE, template_name="national-2021", out_dir=issuer.out_dir)
    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record(photo=photo_dir / "small0.jpg", level=1, occupation="车工"))
    return issuer, issued.path


def _reading_order(path: Path) -> tuple[str, list[tuple[float, float, str]]]:
    """The page's text in reading order: the left page top to bottom, then the right page; and the
    images as (page half, top, kind)."""
    with pdfplumber.open(path) as pdf:
        page = pdf.pages[0]
        middle = float(page.width) / 2
        lines = page.extract_text_lines()
        ordered = sorted(lines, key=lambda line: (line["x0"] >= middle, round(line["top"], 1), line["x0"]))
        text = "\n".join(line["text"].replace(" ", "") for line in ordered)
        images = [(float(i["x0"] >= middle), float(i["top"]), "photo") for i in page.images]
        modules = [r for r in page.rects if r.get("fill") and r["height"] < 3 * MM]
        images.append((1.0, min(r["top"] for r in modules), "qr"))
    return text, images


def test_the_national_template_has_every_required_item_in_order(national: tuple[Issuer, Path]) -> None:
    _, path = national
    text, images = _reading_order(path)
    required = [
        "职业技能等级证书", "经评价，持证人张三", "评价机构名称：华晨汽车集团控股有限公司", "发证日期：2020年11月15日",
        "姓名：张三", "证件类型：居民身份证", "证件号码：11010519491231002X", "职业名称：车工", "工种/职业方向：--",
        "职业技能等级：一级/高级技师", "证书编号：Y000021012001201000001", "证书查询网址：http://jndj.osta.org.cn",
        "评价机构查询网址：http://pjjg.osta.org.cn",
    ]  # fmt: skip
    positions = [text.find(item) for item in required]
    assert -1 not in positions, [item for item, at in zip(required, positions, strict=True) if at < 0]
    assert positions == sorted(positions)
    assert text.splitlines()[0] == "职业技能等级证书"  # exactly the title, first
    # photo and QR code on the right page between 证书编号 and the URLs (top to bottom)
    with pdfplumber.open(path) as pdf:
        lines = pdf.pages[0].extract_text_lines()
    number_top = next(line["top"] for line in lines if "证书编号" in line["text"].replace(" ", ""))
    url_top = next(line["top"] for line in lines if "jndj" in line["text"])
    for half, top, kind in images:
        assert half == 1.0 and number_top < top < url_top, kind
    assert {kind for _, _, kind in images} == {"photo", "qr"}


def test_the_national_template_is_measured_to_spec(national: tuple[Issuer, Path]) -> None:
    issuer, path = national
    rows, problems = measure(path, issuer.template)
    assert problems == [] and [m.item for m in rows if not m.ok] == []
    sizes = {m.item: m.actual for m in rows}
    assert sizes["基本信息字号"] == sizes["正文字号"] == sizes["网址字号"] == 12.0  # 小四号
    assert (sizes["照片宽度"], sizes["照片高度"]) == pytest.approx((25.0, 35.0), abs=0.2)  # 1 inch


def test_layout_check_says_which_font_stood_in_for_fangsong(national: tuple[Issuer, Path]) -> None:
    from kiosk.cli import cli

    issuer, path = national
    assert issuer.template.font == "fangsong"
    note = font_note(path, issuer.template)
    if "LXGW" in issuer.font.family:  # the machine has no 仿宋: the bundled Kai font stood in
        assert note == "字体：模板要求仿宋，本PDF使用 LXGWWenKai-Regular 代替"
    else:
        assert note.startswith("字体：") and "模板要求仿宋）" in note
    home = str(issuer.station.home.root)
    result = CliRunner().invoke(cli, ["--home", home, "layout", "check", str(path), "--template", "national-2021"])
    assert result.exit_code == 0, result.output
    assert note in result.output


def test_each_template_writes_an_absent_job_type_its_own_way(issuer: Issuer) -> None:
    with issuer.station.register() as reg:
        liaoning = issuer.issue(reg, make_record(job_type=None))
    with pdfplumber.open(liaoning.path) as pdf:
        assert "工种：——" in pdf.pages[0].extract_text().replace(" ", "").replace("\u3000", "")
    assert load_template("national-2021").absent == "--" and load_template("liaoning-2020").absent == "——"


@pytest.mark.parametrize("template_name", ["liaoning-2020", "national-2021"])
def test_a_long_institution_name_hangs_under_its_value(issuer: Issuer, template_name: str) -> None:
    template = load_template(template_name)
    long_name = "辽宁省沈阳市某某区职业技能等级认定与人才评价服务中心有限责任公司"
    values = placeholders(make_record().replace(evaluator=long_name))
    text = template.body.text.format_map(values)
    lines = layout_text(template.body, text, issuer.font, template.page_h, "正文")
    first = next(i for i, line in enumerate(lines) if "评价机构" in line.text)
    label = lines[first].text.split("：")[0] + "："
    assert lines[first + 1].text and long_name.startswith(lines[first].text.split("：")[1])
    value_x = lines[first].x_pt + issuer.font.width(label, template.body.size_pt)
    assert lines[first + 1].x_pt == pytest.approx(value_x)  # under the value, not under the label
    assert long_name[len(lines[first].text.split("：")[1]) :].startswith(lines[first + 1].text)


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parents[1] / "templates").glob("*.toml"))
    + sorted((Path(__file__).parents[1] / "certgen" / "profiles").glob("*.toml")),
    ids=lambda p: p.name,
)
def test_shipped_data_files_cite_their_sources_in_words_not_by_paths(path: Path) -> None:
    """A station's copy of a template or profile travels without this repository: a source is cited
    by its document (number, annex, article), never by a path of a repository file."""
    import re
    import tomllib

    text = path.read_text("utf-8")
    assert re.search(r"[\w.]*/[\w.-]+\.(txt|md|py|pdf)\b|\.\./|seeds/", text) is None
    assert re.search(r"附件\d|〔20\d\d〕", text), "names its source document"
    if path.parent.name == "templates":
        assert re.search(r"附件\d|〔20\d\d〕", tomllib.loads(text)["source"])
