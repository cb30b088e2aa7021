"""Rendering and issuing certificates: layout to spec, QR round trip, PDF/A, fonts, photos."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path

import pdfplumber
import pikepdf
import pypdfium2
import pytest
import zxingcpp
from PIL import Image

from certgen.exceptions import FontError, PhotoError, RecordError, RegisterError, TemplateError
from certgen.issuing.issuer import Issuer
from certgen.payload import decode
from certgen.pdf.finish import ATTACHMENT_NAME, read_attachment
from certgen.pdf.fonts import bundled_font, choose_font
from certgen.pdf.measure import measure
from certgen.pdf.photo import prepare_photo
from certgen.pdf.template import available_templates, load_template, parse_template, placeholders
from certgen.station import Station
from certgen.trust import PublicKeyInfo
from tests.conftest import PASSPHRASE, make_record, resident_id, tool


def qr_text_of(pdf: Path, dpi: int = 300) -> str:
    page = pypdfium2.PdfDocument(str(pdf))[0]
    found = zxingcpp.read_barcodes(page.render(scale=dpi / 72).to_pil())
    assert len(found) == 1
    return str(found[0].text)


@pytest.mark.parametrize("template_name", available_templates())
def test_every_template_renders_to_spec_and_round_trips(issuer: Issuer, photo_dir: Path, template_name: str) -> None:
    issuer.template = load_template(template_name)
    photo = photo_dir / ("small0.jpg" if issuer.template.photo.w < 30 else "p0.jpg")
    record = make_record(name="赵孟𫖯", job_type="数控车工", photo=photo)
    with issuer.station.register() as reg:
        issued = issuer.issue(reg, record)
    rows, problems = measure(issued.path, issuer.template)
    assert problems == []
    assert [m.item for m in rows if not m.ok] == []
    back = decode(qr_text_of(issued.path)).claims.record(institution=issued.record.evaluator)
    assert back == issued.record.replace(photo=None, employer="")
    assert decode(issued.qr_text).claims.template == template_name


def test_text_extraction_gives_back_characters_outside_the_bmp(issuer: Issuer) -> None:
    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record(name="赵孟𫖯"))
    with pdfplumber.open(issued.path) as pdf:
        assert "赵孟𫖯" in pdf.pages[0].extract_text()
    pdftotext = tool("pdftotext", "poppler-utils")
    text = subprocess.run([pdftotext, str(issued.path), "-"], capture_output=True, text=True, check=True).stdout
    assert "赵孟𫖯" in text


def test_the_pdf_is_archival_and_carries_its_record(issuer: Issuer) -> None:
    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record())
    check = subprocess.run([tool("qpdf", "qpdf"), "--check", str(issued.path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with pikepdf.open(issued.path) as pdf:
        meta = pdf.open_metadata()
        assert meta.pdfa_status == "3B"
        assert meta["dc:title"] == f"职业技能等级证书 {issued.record.number}"
        assert issued.record.number in meta["dc:subject"]
        intent = pdf.Root.OutputIntents[0]
        assert intent.S == "/GTS_PDFA1" and intent.DestOutputProfile.N == 3
        fonts = pdf.pages[0].Resources.Font
        assert len(fonts) >= 1
        for _, font in fonts.items():  # every font embedded
            assert "/FontFile2" in font.FontDescriptor
        spec = pdf.Root.AF[0]
        assert spec.AFRelationship == "/Data" and str(spec.UF) == ATTACHMENT_NAME
        assert "/ID" in pdf.trailer and not pdf.is_encrypted
    attached = read_attachment(issued.path.read_bytes())
    assert attached is not None
    assert attached["number"] == issued.record.number
    assert attached["qr_text"] == issued.qr_text
    assert attached["record"]["name"] == "张三"


def test_a_missing_glyph_refuses_the_record_before_a_number_is_used(issuer: Issuer) -> None:
    rare = "\U000323af"  # CJK Extension H: not in LXGW WenKai
    assert choose_font().missing(f"张{rare}") == [rare]
    with issuer.station.register() as reg, pytest.raises(FontError, match="U\\+323AF"):
        issuer.issue(reg, make_record(name=f"张{rare}"))
    with issuer.station.register() as reg:
        assert reg.counts() == {"pending": 0, "issued": 0, "void": 0}


def test_a_failure_after_allocation_voids_the_number(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    import certgen.issuing.issuer

    def broken(*args: object, **kwargs: object) -> bytes:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(certgen.issuing.issuer, "finish", broken)
    with issuer.station.register() as reg:
        with pytest.raises(OSError):
            issuer.issue(reg, make_record())
        assert reg.counts()["void"] == 1 and reg.counts()["pending"] == 0
        assert reg.check() == []
    assert not list((issuer.out_dir or Path()).rglob("*.pdf"))


def test_institution_is_filled_in_and_must_match(issuer: Issuer) -> None:
    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record())
        assert issued.record.evaluator == issued.record.issuer == "华晨汽车集团控股有限公司"
        with pytest.raises(RegisterError, match="评价机构「别的机构」与签名密钥的机构「华晨汽车集团控股有限公司」不符"):
            issuer.issue(reg, make_record(evaluator="别的机构", issuer="别的机构"))


def test_text_that_does_not_fit_its_block_is_refused(issuer: Issuer) -> None:
    import dataclasses

    from certgen.exceptions import LayoutError
    from certgen.pdf.render import layout_text

    body = issuer.template.body
    small = dataclasses.replace(body, box=dataclasses.replace(body.box, h=20.0))  # room for 2 lines
    text = body.text.format(**placeholders(make_record()))
    with pytest.raises(LayoutError, match=r"正文内容过长：需要[0-9]+行，版面只容得下2行"):
        layout_text(small, text, issuer.font, 210.0, "正文")
    with pytest.raises(RecordError):
        make_record(name="张" * 31)


# --- templates --------------------------------------------------------------------------------
def _template_data() -> dict[str, object]:
    import tomllib

    from certgen import assets

    data: dict[str, object] = tomllib.loads((assets.templates() / "liaoning-2020.toml").read_text("utf-8"))
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["title"].update(colour="red"), "未知的键 colour"),
        (lambda d: d.pop("qr"), "缺少 qr"),
        (lambda d: d["photo"].update(width_mm=-35.0), "width_mm 应为正数"),
        (lambda d: d["info"].update(size_pt="16"), "size_pt 应为数字"),
        (lambda d: d["photo"].update(x_mm=215.0), "侵入二维码"),
        (lambda d: d["body"].update(text="{nickname}"), "未知占位符 {nickname}"),
        (lambda d: d["border"].update(width_mm=300.0), "大于页面"),
        (lambda d: d["url"].update(y_mm=205.0), "超出边框"),
    ],
)
def test_bad_templates_are_refused_with_the_reason(change, message: str) -> None:  # type: ignore[no-untyped-def]
    data = _template_data()
    change(data)
    with pytest.raises(TemplateError, match=message.replace("{", "\\{").replace("}", "\\}")):
        parse_template(data, "test.toml")


def test_unknown_template_lists_the_available_ones() -> None:
    with pytest.raises(TemplateError, match="liaoning-2020"):
        load_template("no-such-template")


# --- photos -----------------------------------------------------------------------------------
def _jpeg(path: Path, size: tuple[int, int], colour: tuple[int, int, int] = (255, 255, 255), **kw: object) -> Path:
    Image.new("RGB", size, colour).save(path, "JPEG", **kw)
    return path


def test_photo_checks(tmp_path: Path) -> None:
    ok = prepare_photo(_jpeg(tmp_path / "ok.jpg", (827, 1158)), 35, 49)  # 600 dpi
    assert ok.width_px == 413 and ok.warnings == ()  # downsampled to 300 dpi
    low = prepare_photo(_jpeg(tmp_path / "low.jpg", (330, 462)), 35, 49)
    assert "低于建议的 300 dpi" in low.warnings[0]
    with pytest.raises(PhotoError, match="分辨率过低"):
        prepare_photo(_jpeg(tmp_path / "tiny.jpg", (200, 280)), 35, 49)
    with pytest.raises(PhotoError, match="宽高比"):
        prepare_photo(_jpeg(tmp_path / "wide.jpg", (600, 600)), 35, 49)
    with pytest.raises(PhotoError, match="背景不是白色"):
        prepare_photo(_jpeg(tmp_path / "blue.jpg", (413, 579), (60, 120, 220)), 35, 49)
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(PhotoError, match="不是可识别的图片"):
        prepare_photo(tmp_path / "notes.jpg", 35, 49)
    Image.new("RGB", (413, 579), (255, 255, 255)).save(tmp_path / "p.gif", "GIF")
    with pytest.raises(PhotoError, match="只接受 JPEG 或 PNG"):
        prepare_photo(tmp_path / "p.gif", 35, 49)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (579, 413), (255, 255, 255))  # stored landscape ...
    exif = image.getexif()
    exif[0x0112] = 6  # ... to be shown rotated 90 degrees: portrait
    image.save(tmp_path / "rotated.jpg", "JPEG", exif=exif)
    prepared = prepare_photo(tmp_path / "rotated.jpg", 35, 49)
    assert (prepared.width_px, prepared.height_px) == (413, 579)


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"restart_marker_blocks": 2}, {"subsampling": 0}])
def test_a_photo_at_300_dpi_is_embedded_as_its_pixels_without_its_metadata(
    tmp_path: Path, options: dict[str, object]
) -> None:
    # a JPEG that needs no downsampling or turning is not re-encoded: the same compressed pixels,
    # but not its camera, place, comment, or whatever was appended to the file
    image = Image.new("RGB", (413, 579), (255, 255, 255))
    image.paste((200, 40, 40), (100, 150, 300, 500))
    exif = image.getexif()
    exif[0x010F] = "CameraMakerX"  # Make
    exif[0x0131] = "SecretSoftwareY"  # Software
    path = tmp_path / "p.jpg"
    image.save(path, "JPEG", exif=exif, comment=b"COMMENT-Z", quality=95, **options)
    path.write_bytes(path.read_bytes() + b"APPENDED-ZIP-PK\x03\x04")
    prepared = prepare_photo(path, 35, 49)
    for secret in (b"CameraMakerX", b"SecretSoftwareY", b"COMMENT-Z", b"APPENDED", b"Exif"):
        assert secret not in prepared.jpeg
    assert prepared.jpeg.endswith(b"\xff\xd9") and (prepared.width_px, prepared.height_px) == (413, 579)
    with Image.open(path) as source, Image.open(io.BytesIO(prepared.jpeg)) as embedded:
        assert embedded.tobytes() == source.tobytes(), "the same pixels, not re-encoded"


@pytest.mark.parametrize("size", [(10_000, 14_000), (6_000, 7_000)], ids=["140Mpx", "42Mpx"])
def test_a_decompression_bomb_is_refused(tmp_path: Path, size: tuple[int, int]) -> None:
    # 42 Mpx is under Pillow's own limit and over the photo's; the limit is checked without changing
    # Pillow's process-wide Image.MAX_IMAGE_PIXELS (the UI prepares photos in worker threads)
    before = Image.MAX_IMAGE_PIXELS
    Image.new("1", size, 1).save(tmp_path / "bomb.png", "PNG")  # a small file
    assert (tmp_path / "bomb.png").stat().st_size < 1_000_000
    with pytest.raises(PhotoError, match="解压炸弹"):
        prepare_photo(tmp_path / "bomb.png", 35, 49)
    assert before == Image.MAX_IMAGE_PIXELS


def test_truncated_photo(tmp_path: Path) -> None:
    data = io.BytesIO()
    Image.new("RGB", (413, 579), (255, 255, 255)).save(data, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(data.getvalue()[:200])
    with pytest.raises(PhotoError, match="已损坏或不完整"):
        prepare_photo(tmp_path / "cut.jpg", 35, 49)


def test_issue_dates_before_the_key_are_refused(issuer: Issuer) -> None:
    with issuer.station.register() as reg, pytest.raises(RegisterError, match="没有在 2019-06-01 有效的签名密钥"):
        issuer.issue(reg, make_record(issue_date=dt.date(2019, 6, 1)))


def test_the_bundled_font_covers_every_gb2312_hanzi_and_rare_name_characters() -> None:
    font = bundled_font()
    assert font.family == "LXGW WenKai"
    hanzi = []
    for high in range(0xB0, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                hanzi.append(bytes([high, low]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    assert len(hanzi) == 6763
    assert font.missing("".join(hanzi)) == []
    assert font.missing("䶮堃喆𫖯") == []


def test_stkaiti_in_the_station_fonts_folder_comes_before_the_bundled_font(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, _ = keyed_station
    assert Issuer(station, PASSPHRASE).font.path == bundled_font().path
    own = station.home.root / "fonts" / "STKAITI.TTF"
    own.parent.mkdir()
    shutil.copyfile(bundled_font().path, own)  # any TrueType file will do as the station's STKaiti
    assert Issuer(station, PASSPHRASE).font.path == own.resolve()


def test_a_seal_is_placed_by_the_template(issuer: Issuer, tmp_path: Path, photo_dir: Path) -> None:
    seal = tmp_path / "seal.png"
    image = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    from PIL import ImageDraw

    ImageDraw.Draw(image).ellipse((10, 10, 390, 390), outline=(200, 0, 0, 255), width=18)
    image.save(seal)
    issuer = Issuer(issuer.station, PASSPHRASE, out_dir=issuer.out_dir, seal=seal)
    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record(photo=photo_dir / "p3.jpg"))
    with pdfplumber.open(issued.path) as pdf:
        images = pdf.pages[0].images
    mm = 72 / 25.4
    sizes = sorted((round(i["width"] / mm), round(i["height"] / mm)) for i in images)
    assert (40, 40) in sizes  # the template's seal box
    rows, problems = measure(issued.path, issuer.template)
    assert problems == [] and all(m.ok for m in rows)


def test_the_lines_laid_out_by_the_checks_are_the_lines_of_the_real_number(issuer: Issuer) -> None:
    """A certificate is laid out once, before its number exists: the page must print exactly what
    laying it out again with the real number gives (both forms, a long and a short name)."""
    from certgen.pdf.render import layout

    for i, name in enumerate(("张三", "欧阳娜娜")):
        record = make_record(name=name, id_number=resident_id(700 + i))
        with issuer.station.register() as reg:
            key = issuer.key_for(reg, record)
            record = issuer.complete_record(record, key)
            printable = issuer.prepare(record, key)
            issued = issuer.issue(reg, record)
        number = str(issued.record.number)
        assert printable.sample != number
        for form in issuer.forms:
            assert printable.laid_for(form, number, issuer.font) == layout(
                issued.record, issuer.template, issuer.font, form
            )
        # a number of another length is not patched in: it is laid out again
        assert printable.laid_for(issuer.forms[0], number + "1", issuer.font) is None
