"""Issue 11: a "valid" verdict is always true. Each test builds the hostile input itself and checks
what the user sees: the verdict, the summary's counts, the exit code, the report."""

from __future__ import annotations

import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import closing
from pathlib import Path

import pikepdf
import pytest
from click.testing import CliRunner
from PIL import Image

from certgen.exceptions import ArchiveStateError
from certgen.issuing.issuer import Issued, Issuer
from certgen.station import Station
from certgen.trust import PublicKeyInfo, Revocation
from kiosk.cli import cli
from kiosk.cli.stdin import scanned_lines
from tests.conftest import PASSPHRASE, make_record
from tests.helpers.hostile import forge_same_size_and_crc, pdf_with_mediabox, zip_with_member_of
from tests.test_verify import TODAY, base_claims, png, qr_image, signed_text, trust
from tests.vectors.payload import make_vectors as mv
from verify.archive import run_archive
from verify.files import verify_bytes
from verify.reasons import Reason
from verify.report import write_report

ROOT = Path(__file__).resolve().parent.parent
GOOD_NUMBER = "Y000021012001203000001"


def good_png(number: str = GOOD_NUMBER, pad: int = 0) -> bytes:
    return png(qr_image(signed_text(base_claims(number=number)))) + b"\0" * pad


def by_name(run_results: list, name: str):  # type: ignore[no-untyped-def]
    found = [r for r in run_results if r.source.endswith(name)]
    assert len(found) == 1, [r.source for r in run_results]
    return found[0]


# --- 1. trust changes between runs ---------------------------------------------------------------
def test_a_revocation_imported_between_two_runs_is_applied_to_reused_facts(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(1, 4):
        (folder / f"{i}.png").write_bytes(good_png(f"Y000021012001203{i:06d}"))
    with zipfile.ZipFile(folder / "more.zip", "w") as z:
        z.writestr("4.png", good_png("Y000021012001203000004"))
    state = tmp_path / "state.sqlite"
    first = run_archive([folder], trust(), state_path=state, workers=1, today=TODAY)
    assert first.totals() == {"valid": 4, "invalid": 0, "unreadable": 0}

    cert = Revocation("certificate", "Y000021012001203000002", "信息有误", "2026-02-01T00:00:00Z")
    second = run_archive([folder], trust().with_revocations([cert]), state_path=state, workers=2, today=TODAY)
    assert second.reused == 4  # nothing decoded again ...
    assert by_name(second.results, "2.png").reasons == (Reason.REVOKED,)  # ... and yet the revocation counts
    assert second.totals() == {"valid": 3, "invalid": 1, "unreadable": 0}
    assert not second.previous_interrupted
    summary = "\n".join(second.summary_lines())
    assert "4 个文件的解码结果沿用上次运行（内容未变），信任检查已重新执行" in summary and "中断" not in summary

    key = Revocation("key", mv.kid(mv.test_key()).hex(), "私钥泄露", "2026-03-01T00:00:00Z")
    third = run_archive([folder], trust().with_revocations([key]), state_path=state, workers=1, today=TODAY)
    assert third.totals() == {"valid": 0, "invalid": 4, "unreadable": 0}
    assert all(Reason.KEY_REVOKED in r.reasons for r in third.results)


def test_cli_rerun_after_revoking_says_invalid_and_exits_1(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, _ = keyed_station
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        a = issuer.issue(reg, make_record(), batch_id="B1", row_key="a")
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(qr_image(a.qr_text)))
    home = ["--home", str(station.home.root)]
    runner = CliRunner()
    assert runner.invoke(cli, [*home, "verify", str(folder)]).exit_code == 0
    station.revoke("batch", "B1", "考场违纪")
    again = runner.invoke(cli, [*home, "verify", str(folder), "--report", str(tmp_path / "r.json")])
    assert again.exit_code == 1 and "✗ 无效" in again.stdout and "✓ 有效" not in again.stdout
    assert "1 个文件的解码结果沿用上次运行（内容未变），信任检查已重新执行" in again.stdout
    assert "中断" not in again.stdout
    assert json.loads((tmp_path / "r.json").read_text("utf-8"))["totals"]["valid"] == 0


# --- 2. swapped content keeps nothing ----------------------------------------------------------
def test_a_file_swapped_with_equal_size_and_mtime_is_decoded_again(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    target = folder / "cert.png"
    original = good_png(pad=2000)
    target.write_bytes(original)
    state = tmp_path / "state.sqlite"
    assert run_archive([folder], trust(), state_path=state, workers=1, today=TODAY).all_valid
    before = target.stat()
    forged = forge_same_size_and_crc(original, png(qr_image(signed_text(base_claims(), mv.other_key()))))
    target.write_bytes(forged)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size and target.stat().st_mtime_ns == before.st_mtime_ns
    run = run_archive([folder], trust(), state_path=state, workers=1, today=TODAY)
    assert run.reused == 0 and not run.all_valid
    assert Reason.NUMBER_KEY_MISMATCH in run.results[0].reasons


def test_a_zip_member_swapped_with_equal_size_and_crc_is_decoded_again(tmp_path: Path) -> None:
    original = good_png(pad=2000)
    forged = forge_same_size_and_crc(original, png(qr_image(signed_text(base_claims(), mv.other_key()))))
    assert len(forged) == len(original) and forged != original
    archive = tmp_path / "certs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cert.png", original)
    state = tmp_path / "state.sqlite"
    assert run_archive([archive], trust(), state_path=state, workers=1, today=TODAY).all_valid
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cert.png", forged)
    with zipfile.ZipFile(archive) as z:
        info = z.infolist()[0]
    assert (info.file_size, info.CRC) == (len(original), zipfile.crc32(original))  # same size, same CRC-32
    run = run_archive([archive], trust(), state_path=state, workers=1, today=TODAY)
    assert run.reused == 0 and Reason.NUMBER_KEY_MISMATCH in run.results[0].reasons


# --- 3. repeated member names ------------------------------------------------------------------
def test_zip_members_with_the_same_name_are_each_read(tmp_path: Path) -> None:
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        forged = signed_text(base_claims(number="Y000021012001203000009"), mv.other_key())
        z.writestr("cert.png", png(qr_image(forged)))  # signed by another institution's key
        z.writestr("cert.png", b"\x89PNG broken")  # unreadable
        z.writestr("cert.png", good_png())  # genuine
    run = run_archive([archive], trust(), state_path=tmp_path / "s.sqlite", workers=1, today=TODAY)
    assert run.files == 3
    sources = [r.source for r in run.results]
    assert sources == [f"{archive}!cert.png", f"{archive}!cert.png#2", f"{archive}!cert.png#3"]
    assert [r.status for r in run.results] == ["invalid", "unreadable", "valid"]


# --- 4. a name drawn over a genuine PDF --------------------------------------------------------
@pytest.fixture
def issued(issuer: Issuer, photo_dir: Path) -> Issued:
    with issuer.station.register() as reg:
        return issuer.issue(reg, make_record(photo=photo_dir / "p1.jpg"))


def _draw_over_name(source: Path, out: Path, *, strip: bool, box: bool = True) -> None:
    """Append to the page: a white box over the name's value and another name on top, in the
    page's own font (glyph 1 of the subset)."""
    with pikepdf.open(source) as pdf:
        page = pdf.pages[0]
        font = next(iter(page.Resources.Font.keys()))
        cover = b"q 1 1 1 rg 530 297 60 20 re f Q " if box else b""
        page.contents_add(pdf.make_stream(cover + f"BT {font} 16 Tf 0 0 0 rg 531 302 Td <0001> Tj ET".encode()))
        if strip:
            del pdf.attachments["certificate.json"]  # and every other sign that certkiosk made it
            for key in ("/AF", "/Metadata"):
                if key in pdf.Root:
                    del pdf.Root[key]
            for key in list(pdf.docinfo.keys()):
                del pdf.docinfo[key]
        pdf.save(out)


@pytest.mark.parametrize("strip", [False, True], ids=["with-record", "record-removed"])
def test_a_name_drawn_over_a_genuine_pdf_is_not_valid(
    issuer: Issuer, issued: Issued, tmp_path: Path, strip: bool
) -> None:
    bundle = issuer.station.trust.load()
    assert [r.valid for r in verify_bytes(issued.path.read_bytes(), "cert.pdf", bundle)] == [True]
    forged = tmp_path / "forged.pdf"
    _draw_over_name(issued.path, forged, strip=strip)
    (result,) = verify_bytes(forged.read_bytes(), "forged.pdf", bundle)
    assert result.status == "invalid" and Reason.PDF_CONTENT_ALTERED in result.reasons
    assert "姓名" in result.findings[-1].detail
    text_only = tmp_path / "text-only.pdf"  # no box: the other name overprinted on the real one
    _draw_over_name(issued.path, text_only, strip=strip, box=False)
    assert not verify_bytes(text_only.read_bytes(), "t.pdf", bundle)[0].valid


def test_a_pdf_printing_another_name_is_not_valid(issuer: Issuer, issued: Issued, tmp_path: Path) -> None:
    """The printed name field is replaced (not covered): its text is no longer the QR's name."""
    with pikepdf.open(issued.path) as pdf:
        page = pdf.pages[0]
        ops = pikepdf.parse_content_stream(page)
        in_info = False
        for i, (operands, op) in enumerate(ops):
            if str(op) == "Tm":
                in_info = float(operands[4]) > 400  # the basic-information block on the right page
            if str(op) == "Tj" and in_info:  # its first line: 姓　　名：张三 (one byte per glyph)
                raw = bytes(operands[0])
                ops[i] = ([pikepdf.String(raw[:-1] + raw[-2:-1])], op)  # 张三 -> 张张
                break
        page.Contents = pdf.make_stream(pikepdf.unparse_content_stream(ops))
        pdf.save(tmp_path / "renamed.pdf")
    (result,) = verify_bytes((tmp_path / "renamed.pdf").read_bytes(), "r.pdf", issuer.station.trust.load())
    assert Reason.PDF_CONTENT_ALTERED in result.reasons
    assert "页面上印的姓名为「张张」，二维码中为「张三」" in result.findings[-1].detail


def _name_line_rect(path: Path) -> tuple[float, float, float, float]:
    import pypdfium2

    doc = pypdfium2.PdfDocument(path.read_bytes())
    try:
        textpage = doc[0].get_textpage()
        text = textpage.get_text_range()
        start = text.rindex("张三")  # the basic-information block, after the body text
        boxes = [textpage.get_charbox(start + i) for i in range(2)]
    finally:
        doc.close()
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


@pytest.mark.parametrize(("subtype", "over_name", "altered"), [
    ("/FreeText", False, True),  # any other annotation can overlay printed content: refused
    ("/Widget", True, True),  # a form field or seal over the name: refused
    ("/Widget", False, False),  # a form field elsewhere (as an electronic seal is): allowed
], ids=["free-text", "widget-over-name", "widget-elsewhere"])  # fmt: skip
def test_annotations_over_a_genuine_pdf(
    issuer: Issuer, issued: Issued, tmp_path: Path, subtype: str, over_name: bool, altered: bool
) -> None:
    x0, y0, x1, y1 = _name_line_rect(issued.path) if over_name else (20.0, 20.0, 60.0, 60.0)
    with pikepdf.open(issued.path) as pdf:
        annot = pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name(subtype), Rect=[x0 - 2, y0 - 2, x1 + 40, y1 + 2],
            Contents=pikepdf.String("李四"), F=4,
        ))  # fmt: skip
        pdf.pages[0].Annots = pdf.make_indirect(pikepdf.Array([annot]))
        pdf.save(tmp_path / "annotated.pdf")
    (result,) = verify_bytes((tmp_path / "annotated.pdf").read_bytes(), "a.pdf", issuer.station.trust.load())
    assert (Reason.PDF_CONTENT_ALTERED in result.reasons) is altered
    assert result.valid is not altered


# --- 5. nothing reaches the terminal raw --------------------------------------------------------
def test_file_names_and_signed_text_cannot_draw_a_fake_verdict_line(tmp_path: Path, station: Station) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    evil = "x\n✓ 有效  fake.png  王五\x1b[2K\r\u202e.png"
    (folder / evil).write_bytes(b"not an image")
    newline_name = signed_text(base_claims(name="张三\n✓ 有效  王五"))
    station.trust.save(trust())
    runner = CliRunner()
    home = ["--home", str(station.home.root)]
    result = runner.invoke(cli, [*home, "verify", str(folder), "--report", str(tmp_path / "r.csv")])
    text = runner.invoke(cli, [*home, "verify", "--text", newline_name])
    for output in (result.stdout, text.stdout):
        assert "\x1b" not in output and "\r" not in output and "\u202e" not in output
        assert not any(line.startswith("✓") for line in output.splitlines())
    assert "\\x1b[2K\\r\\u202e" in result.stdout and "\\n✓" in text.stdout
    csv = (tmp_path / "r.csv").read_text("utf-8-sig")
    assert "\x1b" not in csv and "\u202e" not in csv


def test_report_cells_never_become_formulas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("=HYPERLINK(evil).png").write_bytes(b"junk")
    Path("+1.png").write_bytes(b"junk")
    run = run_archive([Path("=HYPERLINK(evil).png"), Path("+1.png")], trust(), state_path=tmp_path / "s.sqlite")
    write_report(run, tmp_path / "r.csv")
    write_report(run, tmp_path / "r.html")
    cells = [c for line in (tmp_path / "r.csv").read_text("utf-8-sig").splitlines() for c in line.split(",")]
    assert not any(c.lstrip('"').startswith(("=", "+", "@")) for c in cells)
    assert any("'=HYPERLINK" in c for c in cells)
    assert "<td>" in (tmp_path / "r.html").read_text("utf-8")


# --- 6 and 7. hostile files are contained, nothing is left out -----------------------------------
def _hostile_folder(root: Path) -> Path:
    folder = root / "hostile"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.png").write_bytes(good_png())
    (folder / "huge-page.pdf").write_bytes(pdf_with_mediabox(200_000, 200_000))
    (folder / "tiny.pdf").write_bytes(pdf_with_mediabox(0.01, 0.01))
    os.mkfifo(folder / "pipe.png")
    os.symlink("/dev/zero", folder / "zero.png")
    os.symlink(folder / "missing-target.png", folder / "dangling.png")
    (folder / os.fsdecode(b"\xff\xfe-name.png")).write_bytes(good_png("Y000021012001203000002"))
    with (folder / "sub" / "sparse.png").open("wb") as f:
        f.truncate(600 * 1024 * 1024)  # bigger than the limit: refused before reading
    zip_with_member_of(folder / "big.zip", "big.png", 300 * 1024 * 1024)
    with zipfile.ZipFile(folder / "mac.zip", "w") as z:
        z.writestr("__MACOSX/._cert.png", b"\0\5\26\7")
        z.writestr(".hidden.png", good_png())
        z.writestr("cert.png", good_png("Y000021012001203000003"))
    with zipfile.ZipFile(folder / "only-skipped.zip", "w") as z:
        z.writestr("__MACOSX/cert.png", good_png())
    (folder / ".DS_Store").write_bytes(b"junk")
    return folder


def test_hostile_files_each_get_a_verdict_and_the_report_is_written(tmp_path: Path) -> None:
    folder = _hostile_folder(tmp_path)
    run = run_archive([folder], trust(), state_path=tmp_path / "s.sqlite", workers=2, today=TODAY)
    status = {r.source.removeprefix(str(folder) + "/"): r for r in run.results}
    assert status["good.png"].valid and status["\\xff\\xfe-name.png"].valid
    assert status["mac.zip!cert.png"].valid
    assert status["huge-page.pdf"].reasons == (Reason.NO_QR,)  # rendered at a capped scale
    assert status["sub/sparse.png"].status == "unreadable" and "过大" in status["sub/sparse.png"].findings[0].detail
    assert "ZIP成员过大" in status["big.zip!big.png"].findings[0].detail
    assert status["dangling.png"].status == "unreadable"
    only = status["only-skipped.zip"]
    assert only.reasons == (Reason.NO_QR,) and "均已跳过" in only.findings[0].detail  # not called empty
    skipped = {s.source.removeprefix(str(folder) + "/"): s.reason for s in run.skipped}
    assert "命名管道" in skipped["pipe.png"] and "字符设备" in skipped["zero.png"]
    assert "__MACOSX" in skipped["mac.zip!__MACOSX/._cert.png"] and "隐藏" in skipped["mac.zip!.hidden.png"]
    assert "隐藏" in skipped[".DS_Store"]
    write_report(run, tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert doc["totals"] == run.totals() and len(doc["skipped"]) == len(run.skipped) == 6


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder whatever its mode")
def test_an_unreadable_sub_folder_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    (folder / "locked").mkdir(parents=True)
    (folder / "locked" / "x.png").write_bytes(good_png())
    (folder / "locked").chmod(0)
    try:
        run = run_archive([folder], trust(), state_path=tmp_path / "s.sqlite", workers=1)
    finally:
        (folder / "locked").chmod(0o755)
    assert [r.reasons for r in run.results] == [(Reason.UNREADABLE_FILE,)]
    assert "无法读取文件夹" in run.results[0].findings[0].detail


def _station_with_trust(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    from certgen.station.home import StationHome
    from certgen.trust import TrustStore

    StationHome(home, "--home").ensure()
    TrustStore(home / "trust.json").save(trust())
    return home


def test_a_hostile_folder_under_a_memory_limit_finishes_with_a_report(tmp_path: Path) -> None:
    """The whole command in a child with `ulimit -v 2500000` (2.4 GiB): a 600 MiB file, a
    300 MiB ZIP member, /dev/zero, a FIFO and a 200,000 pt page neither exhaust it nor stop it."""
    from certgen.station.home import StationHome

    folder = _hostile_folder(tmp_path)
    home = tmp_path / "home"
    station = Station(StationHome(home, "--home").ensure())
    station.trust.save(trust())
    report = tmp_path / "report.html"
    command = (
        f"ulimit -v 2500000; exec {sys.executable} -m kiosk --home {home} verify {folder} --workers 2 --report {report}"
    )
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, timeout=600)
    out = proc.stdout.decode("utf-8")
    assert proc.returncode == 1, proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in proc.stderr.decode("utf-8", "replace")
    assert report.exists() and "证书核验报告" in report.read_text("utf-8")
    assert "跳过 6 项" in out and "有效 3" in out


def test_a_worker_that_dies_costs_only_its_own_file(tmp_path: Path) -> None:
    """A worker memory cap too small for one page: that file is unreadable, the others valid."""
    folder = tmp_path / "a"
    folder.mkdir()
    for i in range(1, 4):
        (folder / f"{i}.png").write_bytes(good_png(f"Y000021012001203{i:06d}"))
    big = Image.new("L", (9000, 9000), 255)
    out = io.BytesIO()
    big.save(out, "PNG")
    (folder / "big.png").write_bytes(out.getvalue())
    status = Path("/proc/self/status").read_text()
    footprint = int(next(x for x in status.splitlines() if x.startswith("VmSize:")).split()[1]) * 1024
    run = run_archive(
        [folder], trust(), state_path=tmp_path / "s.sqlite", workers=2, today=TODAY,
        worker_memory_bytes=footprint + 150 * 1024 * 1024,
    )  # fmt: skip
    assert by_name(run.results, "/big.png").status == "unreadable"
    assert sum(r.valid for r in run.results) == 3


# --- 8. standard input -------------------------------------------------------------------------
def _verify_process(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk", "--home", str(home), "verify"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "LC_ALL": "C", "PYTHONIOENCODING": "utf-8:strict"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("first_end", "second_start", "second_end"),
    [(b"\r\n", b"", b"\n"), (b"\r", b"\n", b"\r")],
    ids=["crlf-then-lf", "cr-alone"],
)
def test_stdin_is_answered_line_by_line(
    tmp_path: Path, first_end: bytes, second_start: bytes, second_end: bytes
) -> None:
    """Each scan is answered while standard input is still open, whether the scanner ends it with
    CRLF, LF or a lone CR (many do; the CR then reads as the end of the line, and an LF that
    arrives after it as the rest of a CRLF, not as a line of its own)."""
    home = _station_with_trust(tmp_path)
    proc = _verify_process(home)
    watchdog = threading.Timer(120, proc.kill)  # only a hang would reach it
    watchdog.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(signed_text(base_claims()).encode() + first_end)
        proc.stdin.flush()
        first = proc.stdout.readline().decode("utf-8")  # answered while stdin is still open
        assert first.startswith("✓ 有效")
        proc.stdin.write(second_start + b"ZJ1:\xff\xfe" + second_end)
        proc.stdin.flush()
        second = proc.stdout.readline().decode("utf-8")
        assert second.startswith("✗ 无效") and "stdin:2" in second
        proc.stdin.close()
        rest = proc.stdout.read().decode("utf-8")
        assert "UTF-8" in rest
        assert proc.wait() == 1
        assert b"Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        watchdog.cancel()
        proc.kill()


class _Reads(io.RawIOBase):
    """A stream that returns the given pieces, one per read (as a pipe delivers what was written)."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def read1(self, size: int = -1) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""


def test_scanned_lines_do_not_depend_on_how_the_input_arrives() -> None:
    """The lines (so the ``stdin:N`` each answer names) are the same whether the bytes come in one
    read or in pieces cut anywhere, a CRLF's two bytes included (helper-29: ``A\\r\\r\\nB`` was 2
    lines in one read, 3 when cut after the second CR)."""
    assert list(scanned_lines(io.BytesIO(b"A\r\r\nB\rC\nD\r\n"))) == [b"A", b"", b"B", b"C", b"D"]
    rng = random.Random(7)
    for _ in range(5000):
        data = bytes(rng.choice(b"ab\r\n") for _ in range(rng.randint(0, 12)))
        cuts = sorted(rng.sample(range(len(data) + 1), min(3, len(data) + 1)))
        pieces = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True) if data[i:j]]
        assert list(scanned_lines(_Reads(pieces))) == list(scanned_lines(io.BytesIO(data))), pieces


@pytest.mark.parametrize("data", [b"", b"\n  \n\t\n"], ids=["empty", "blank"])
def test_empty_stdin_says_nothing_was_read(tmp_path: Path, data: bytes) -> None:
    home = _station_with_trust(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk", "--home", str(home), "verify"], cwd=ROOT, input=data, capture_output=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and "没有读到任何二维码文本" in proc.stderr.decode("utf-8")


def test_a_closed_stdin_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    """``certkiosk verify <&-`` (a service or script that closed standard input): Python has no
    ``sys.stdin`` then; the command says what to give it instead of an AttributeError."""
    home = _station_with_trust(tmp_path)
    # a preloaded library (libfaketime, when the suite runs under faketime) opens a file at start,
    # and the lowest free descriptor it gets is the closed 0: the child would have a stdin again
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk", "--home", str(home), "verify"], cwd=ROOT, stdin=subprocess.DEVNULL,
        capture_output=True, timeout=120, preexec_fn=lambda: os.close(0), env=env,
    )  # fmt: skip
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2 and "标准输入已关闭" in err and "Traceback" not in err, err


def test_a_passphrase_is_not_prompted_for_on_a_closed_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    from certgen.exceptions import ConfigError
    from kiosk.cli.base import ENV_PASSPHRASE, read_passphrase

    monkeypatch.delenv(ENV_PASSPHRASE, raising=False)
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(ConfigError, match="需要私钥口令"):
        read_passphrase(None)


# --- 9. SIGTERM stops the workers ----------------------------------------------------------------
def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(x) for x in (task / "children").read_text().split()}
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_verify_workers_keeps_finished_files_and_says_how_to_resume(tmp_path: Path) -> None:
    import signal
    import sqlite3

    home = _station_with_trust(tmp_path)
    folder = tmp_path / "many"
    folder.mkdir()
    blank = io.BytesIO()
    Image.new("L", (2500, 2500), 255).save(blank, "PNG")  # no QR: the whole ladder runs
    for i in range(60):  # each its own bytes (trailing data after IEND), so none reuses another's facts
        (folder / f"{i:03d}.png").write_bytes(blank.getvalue() + i.to_bytes(4, "big"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "--home", str(home), "verify", str(folder), "--workers", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        states = home / "verify-runs"
        deadline = time.monotonic() + 120
        done = 0
        while done < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # polling for progress only; no assertion depends on timing
            for db in states.glob("*.sqlite"):
                try:
                    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                        done = con.execute("SELECT COUNT(*) FROM facts").fetchone()[0]
                except sqlite3.Error:
                    continue
        assert proc.poll() is None and done >= 2, "the run should still be going with two files finished"
        workers = _children(proc.pid)
        assert len(workers) >= 2
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "重新运行同一命令即可继续" in err.decode("utf-8")
    assert not any(_alive(pid) for pid in workers)
    rerun = subprocess.run(
        [sys.executable, "-m", "kiosk", "--home", str(home), "verify", str(folder), "--workers", "1"],
        cwd=ROOT, capture_output=True, timeout=600,
    )  # fmt: skip
    assert "个文件的解码结果沿用上次运行" in rerun.stdout.decode("utf-8")
    assert "上次对同一输入的核验曾被中断" in rerun.stdout.decode("utf-8")


def test_an_old_state_file_of_pickled_verdicts_is_never_read(tmp_path: Path) -> None:
    """An old (version 1, pickled verdicts) state file at the same place is never read."""
    state = tmp_path / "s.sqlite"
    import sqlite3

    with sqlite3.connect(state) as con:
        con.execute(
            "CREATE TABLE results (key TEXT PRIMARY KEY, size INTEGER, stamp TEXT, position INTEGER, data BLOB)"
        )
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "x.png").write_bytes(good_png())
    run = run_archive([folder], trust(), state_path=state, workers=1, today=TODAY)
    assert run.reused == 0 and run.all_valid


def _issue_run(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path, photo_dir: Path, rows: int, workers: int
) -> tuple[list[str], Path]:
    """The command that issues a ``rows``-row roster with ``workers`` processes, and its output folder."""
    from tests.test_batch import roster_rows, write_csv

    station, _ = keyed_station
    roster = write_csv(tmp_path / "r.csv", roster_rows(rows), "utf-8")
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE, "utf-8")
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "kiosk", "--home", str(station.home.root), "issue", str(roster), "--photos",
        str(photo_dir), "--out", str(out), "--passphrase-file", str(secret), "--workers", str(workers),
    ]  # fmt: skip
    return command, out


def _started_issuing(command: list[str], out: Path, pdfs: int) -> subprocess.Popen[bytes]:
    """The command started and running, with at least ``pdfs`` certificates written."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(list(out.glob("**/*.pdf"))) < pdfs and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # polling for progress only; no assertion depends on timing
    if proc.poll() is not None:
        proc.communicate()
        raise AssertionError("the batch should still be running")
    return proc


def test_sigterm_stops_issue_workers_and_says_how_to_resume(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path, photo_dir: Path
) -> None:
    import signal

    command, out = _issue_run(keyed_station, tmp_path, photo_dir, 80, 3)
    proc = _started_issuing(command, out, 2)
    try:
        workers = _children(proc.pid)
        assert len(workers) >= 2  # --workers 3: this process issues too, with two worker processes
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "重新运行同一命令即可续发" in err.decode("utf-8")
    assert not any(_alive(pid) for pid in workers)
    from certgen.issuing.recovery import temp_path
    from certgen.station.register import Register

    with Register(keyed_station[0].home.register_path) as reg:  # every issued number keeps its file
        for number, where in reg._db.execute("SELECT number, output_path FROM certificates WHERE status = 'issued'"):
            assert Path(where).exists() or temp_path(Path(where)).exists(), number
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr.decode("utf-8", "replace")
    said = rerun.stdout.decode("utf-8") + rerun.stderr.decode("utf-8")
    assert "跳过已发" in said and "PDF文件不存在" not in said


def test_an_issue_worker_killed_mid_batch_is_a_clear_error_and_the_rerun_finishes_the_batch(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path, photo_dir: Path
) -> None:
    """A worker process SIGKILLed mid-batch (the kernel's OOM killer, an operator): one clear line
    and exit 2, not a traceback; the re-run recovers the rows that were in flight (void, no file
    left for them) and issues every result exactly once."""
    import signal

    from certgen.station.register import Register

    station, _ = keyed_station
    command, out = _issue_run(keyed_station, tmp_path, photo_dir, 120, 2)
    proc = _started_issuing(command, out, 4)
    try:
        (worker,) = _children(proc.pid)
        os.kill(worker, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    message = err.decode("utf-8")
    assert proc.returncode == 2 and "发证子进程意外退出" in message and "重新运行同一命令即可续发" in message
    assert "Traceback" not in message
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr.decode("utf-8", "replace")
    with Register(station.home.register_path) as reg:
        rows = list(reg.iter_batch(next(p.name for p in out.iterdir())))
        issued = [c for c in rows if c.status == "issued"]
        assert sorted(c.row_key for c in issued) == sorted({c.row_key for c in issued})  # once per row
        assert len(issued) == 120 and all(c.status in ("issued", "void") for c in rows)
        # a void number whose signed form was on disk when its worker was killed is revoked, and a
        # note of it stays (certgen.issuing.recovery.revoke_unissued); never an issued one
        revoked = {r.target for r in reg.revocations()}
        assert revoked <= {c.number for c in rows if c.status == "void"}
        files = {p.name for p in out.glob("**/*.pdf")} | {p.name for p in out.glob("**/.*")}
        files -= {f".{n}.revoked" for n in revoked}
        assert files == {f"{c.number}.pdf" for c in issued}, "no file of a void number, none missing"


def test_reading_stops_at_the_limit_and_never_opens_a_fifo_or_device(tmp_path: Path) -> None:
    from certgen.bounded import read_stream
    from certgen.exceptions import InputRefused

    with open("/dev/zero", "rb") as endless, pytest.raises(InputRefused, match="过大"):
        read_stream(endless, 1024 * 1024, "/dev/zero")  # an endless stream: refused after 1 MiB + 1 byte
    fifo = tmp_path / "scan.png"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading would block forever
    run = run_archive([fifo, Path("/dev/zero")], trust(), state_path=tmp_path / "s.sqlite", workers=1)
    assert [r.status for r in run.results] == ["unreadable", "unreadable"]
    assert "命名管道" in run.results[0].findings[0].detail and "字符设备" in run.results[1].findings[0].detail


# --- 10. results kept in the state file count only for the run that wrote them -------------------
def _forged_and_genuine(folder: Path) -> None:
    folder.mkdir()
    forged = signed_text(base_claims(number="Y000021012001203000002"), mv.other_key())
    (folder / "forged.png").write_bytes(png(qr_image(forged)))  # listed first: position 0
    (folder / "genuine.png").write_bytes(good_png())  # position 1


def test_results_planted_in_the_state_file_between_runs_never_count(tmp_path: Path) -> None:
    """Whoever can write the state file between two runs copies the genuine scan's sealed row over
    the forged one, marks every row valid, and plants those rows, with every unit marked finished,
    under the id the next run will get: the next run still finds the forged scan invalid."""
    folder = tmp_path / "archive"
    _forged_and_genuine(folder)
    state = tmp_path / "state.sqlite"
    first = run_archive([folder], trust(), state_path=state, workers=1, today=TODAY)
    forged = by_name(first.results, "forged.png")
    assert forged.status == "invalid" and forged.reasons
    following = first.run + 1
    with closing(sqlite3.connect(state)) as db, db:
        genuine = db.execute("SELECT data, mac FROM results WHERE kind = 1 AND position = 1").fetchone()
        db.execute("UPDATE results SET data = ?, mac = ?, status = 'valid', reasons = '[]'", genuine)
        db.execute(
            "INSERT INTO results SELECT ?, kind, position, sub, status, reasons, noted, stale, number, content, "
            "payload, place, data, mac FROM results WHERE run = ?",
            (following, first.run),
        )
        db.execute("INSERT INTO units VALUES (?, 0), (?, 1)", (following, following))
    second = run_archive([folder], trust(), state_path=state, workers=1, today=TODAY)
    assert second.run == following and second.reused == 2  # the facts are reused, the verdicts are not
    assert by_name(second.results, "forged.png").reasons == forged.reasons
    assert second.totals() == {"valid": 1, "invalid": 1, "unreadable": 0} and not second.all_valid
    with pytest.raises(ArchiveStateError, match="取代"):  # the first run's handle reads nothing now
        list(first.results)


def test_a_result_altered_in_the_state_file_after_the_run_is_refused_not_reported(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    _forged_and_genuine(folder)
    state = tmp_path / "state.sqlite"
    run = run_archive([folder], trust(), state_path=state, workers=1, today=TODAY)
    with closing(sqlite3.connect(state)) as db, db:
        genuine = db.execute("SELECT data, mac FROM results WHERE kind = 1 AND position = 1").fetchone()
        db.execute("UPDATE results SET data = ?, mac = ?, status = 'valid', reasons = '[]' WHERE position = 0", genuine)
    with pytest.raises(ArchiveStateError, match="被改动"):
        list(run.results)
    with pytest.raises(ArchiveStateError, match="被改动"):
        write_report(run, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()  # no report rather than a wrong one
