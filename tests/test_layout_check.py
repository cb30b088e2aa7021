"""`certkiosk layout check` as a station runs it: a genuine certificate passes, and a certificate
that is wrong in one way (QR code moved, border missing, title at the wrong size, a font not
embedded) fails with exit code 1 and a line naming what is wrong.

Each wrong PDF is a genuine issued certificate with one edit made by pikepdf, so the only
difference the check can see is the defect itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pikepdf
import pytest
from click.testing import CliRunner

from certgen.issuing.issuer import Issuer
from certgen.pdf.template import available_templates, load_template
from kiosk.cli import cli
from tests.conftest import PASSPHRASE, make_record

PT_PER_MM = 72 / 25.4
QR_PLACEMENT = re.compile(rb"^([0-9.]+) 0 0 -\1 ([0-9.]+) ([0-9.]+) cm$", re.MULTILINE)
"""The transform that places the QR code's modules (module size, left, top of the symbol)."""


@pytest.fixture(params=available_templates())
def genuine(request: pytest.FixtureRequest, issuer: Issuer, photo_dir: Path) -> tuple[Issuer, Path]:
    """A certificate issued on each template, with the photo size the template asks for."""
    template = load_template(request.param)
    issuer = Issuer(issuer.station, PASSPHRASE, template_name=template.id, out_dir=issuer.out_dir)
    photo = photo_dir / ("small0.jpg" if template.photo.w < 30 else "p0.jpg")
    with issuer.station.register() as reg:
        return issuer, issuer.issue(reg, make_record(photo=photo)).path


def check(issuer: Issuer, pdf: Path, *extra: str) -> tuple[int, str]:
    home = str(issuer.station.home.root)
    argv = ["--home", home, "layout", "check", str(pdf), "--template", issuer.template.id, *extra]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return result.exit_code, result.stdout


def edited(source: Path, target: Path, edit: Callable[[pikepdf.Pdf, bytes], bytes | None]) -> Path:
    """``source`` with its page content (and objects) changed by ``edit``; None keeps the content."""
    with pikepdf.open(source) as pdf:
        page = pdf.pages[0]
        content = page.Contents.read_bytes()
        changed = edit(pdf, content)
        if changed is not None:
            assert changed != content, "the edit did not change the page"
            page.Contents = pdf.make_stream(changed)
        pdf.save(target)
    return target


def row(output: str, item: str) -> str:
    """The report line for ``item``."""
    [line] = [line for line in output.splitlines() if line.startswith(item)]
    return line


def test_a_genuine_certificate_passes(genuine: tuple[Issuer, Path]) -> None:
    issuer, path = genuine
    code, out = check(issuer, path)
    assert code == 0, out
    assert out.splitlines()[-1] == "✓ 版式符合模板"
    assert "✗" not in out
    code, out = check(issuer, path, "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True and data["problems"] == []
    items = {m["item"] for m in data["measurements"]}
    assert {"二维码左边距", "二维码上边距", "边框宽度", "证书名称字号"} <= items


def test_a_moved_qr_code_is_reported(genuine: tuple[Issuer, Path], tmp_path: Path) -> None:
    issuer, path = genuine

    def move(_: pikepdf.Pdf, content: bytes) -> bytes:
        def shifted(m: re.Match[bytes]) -> bytes:
            left, top = float(m.group(2)) + 2 * PT_PER_MM, float(m.group(3)) - 1 * PT_PER_MM
            return b"%s 0 0 -%s %.4f %.4f cm" % (m.group(1), m.group(1), left, top)

        moved, count = QR_PLACEMENT.subn(shifted, content)
        assert count == 1
        return moved

    code, out = check(issuer, edited(path, tmp_path / "moved.pdf", move))
    assert code == 1, out
    assert "+2.00" in row(out, "二维码左边距") and row(out, "二维码左边距").endswith("✗ 超差")
    assert "+1.00" in row(out, "二维码上边距") and row(out, "二维码上边距").endswith("✗ 超差")
    assert row(out, "二维码宽度").endswith("✓")  # moved, not resized
    assert out.splitlines()[-1] == "✗ 版式与模板不符"


def test_a_missing_border_is_reported(genuine: tuple[Issuer, Path], tmp_path: Path) -> None:
    issuer, path = genuine

    def unstroke(_: pikepdf.Pdf, content: bytes) -> bytes:
        without, count = re.subn(rb"( re) S\n", rb"\1 n\n", content)  # the path stays, nothing is drawn
        assert count == 1
        return without

    code, out = check(issuer, edited(path, tmp_path / "borderless.pdf", unstroke))
    assert code == 1, out
    for item in ("边框宽度", "边框高度", "边框线宽"):
        assert "未找到" in row(out, item) and row(out, item).endswith("✗ 超差")
    data = json.loads(check(issuer, tmp_path / "borderless.pdf", "--json")[1])
    assert {m["item"]: m["actual"] for m in data["measurements"]}["边框宽度"] is None and not data["ok"]


def test_a_title_at_the_wrong_size_is_reported(genuine: tuple[Issuer, Path], tmp_path: Path) -> None:
    issuer, path = genuine
    size = issuer.template.title.size_pt

    def shrink(_: pikepdf.Pdf, content: bytes) -> bytes:
        smaller, count = re.subn(rb"(/\S+) %g Tf" % size, rb"\1 %g Tf" % (size - 2), content, count=1)
        assert count == 1
        return smaller

    code, out = check(issuer, edited(path, tmp_path / "small-title.pdf", shrink))
    assert code == 1, out
    assert f"{size - 2:.2f}" in row(out, "证书名称字号") and row(out, "证书名称字号").endswith("✗ 超差")
    assert row(out, "正文字号").endswith("✓")


def test_a_font_that_is_not_embedded_is_reported(genuine: tuple[Issuer, Path], tmp_path: Path) -> None:
    issuer, path = genuine
    names: list[str] = []

    def unembed(pdf: pikepdf.Pdf, _: bytes) -> None:
        for font in pdf.pages[0].Resources.Font.values():
            described = font.DescendantFonts[0] if font.Subtype == "/Type0" else font
            for key in ("/FontFile", "/FontFile2", "/FontFile3"):
                if key in described.FontDescriptor:
                    del described.FontDescriptor[key]
                    names.append(str(font.BaseFont).lstrip("/"))

    code, out = check(issuer, edited(path, tmp_path / "unembedded.pdf", unembed))
    assert names, "the genuine certificate embeds its font"
    assert code == 1, out
    for name in names:
        assert f"✗ 字体 {name} 没有嵌入PDF（打印时会被替换成别的字体）" in out.splitlines()
    assert [line for line in out.splitlines() if "超差" in line] == []  # only the font is wrong
    data = json.loads(check(issuer, tmp_path / "unembedded.pdf", "--json")[1])
    assert not data["ok"] and len(data["problems"]) == len(set(names))
