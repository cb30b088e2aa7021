"""Printing through a real CUPS server with a cups-pdf queue (set up by .ci/run).

A certificate printed with a calibration offset comes back from cups-pdf as an A4 landscape page
whose QR code still measures 30 mm (no scaling happened) and has moved by the offset.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pdfplumber
import pikepdf
import pypdfium2
import pytest
import zxingcpp

from certgen.exceptions import PrintError
from certgen.issuing.issuer import Issued, Issuer
from certgen.issuing.printing import print_files
from certgen.pdf.calibration import calibration_pdf
from certgen.station import Station
from certgen.station.printing import find_queue, list_queues, load_offsets, save_offset
from tests.conftest import PASSPHRASE, make_record

QUEUE, STOPPED = "CertPDF", "CertStopped"
OUTPUT = Path(os.path.expanduser("~")) / "PDF"  # cups-pdf's "Out ${HOME}/PDF" for the job's user


def _cups_ready() -> str | None:
    if shutil.which("lpstat") is None:
        return "CUPS is not installed"
    out = subprocess.run(["lpstat", "-p"], capture_output=True, text=True, env=dict(os.environ, LC_ALL="C")).stdout
    if f"printer {QUEUE} " not in out or f"printer {STOPPED} " not in out:
        return f"queues {QUEUE} and {STOPPED} are not set up (.ci/run creates them)"
    return None


missing = _cups_ready()
if missing and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI must run the printing tests against CUPS: {missing}")
pytestmark = pytest.mark.skipif(missing is not None, reason=missing or "")


def _completed(job_id: str) -> bool:
    done = subprocess.run(
        ["lpstat", "-W", "completed", "-o", job_id.rsplit("-", 1)[0]],
        capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"), check=False,
    )  # fmt: skip
    return any(line.split()[:1] == [job_id] for line in done.stdout.splitlines())


def wait_for_output(job_id: str, timeout: float = 90.0) -> Path:
    """The PDF cups-pdf wrote for ``job_id``, once CUPS reports the job completed (the spooler
    works on its own time, so this polls; cups-pdf writes the file in place while the job runs)."""
    suffix = f"-job_{job_id.rsplit('-', 1)[1]}.pdf"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _completed(job_id):
            found = list(OUTPUT.glob(f"*{suffix}"))
            if found:
                return found[0]
        time.sleep(0.2)
    raise AssertionError(f"CUPS did not complete job {job_id} with a cups-pdf file within {timeout:.0f} s")


def qr_geometry(pdf: Path) -> tuple[float, float, float, float, tuple[float, float]]:
    """(left, top, width, height) of the QR code in mm, and the displayed page size in pt."""
    doc = pypdfium2.PdfDocument(str(pdf))
    page = doc[0]
    size = page.get_size()
    dpi = 600
    found = zxingcpp.read_barcodes(page.render(scale=dpi / 72).to_pil())
    assert len(found) == 1
    p = found[0].position
    px = dpi / 25.4
    box = (
        p.top_left.x / px,
        p.top_left.y / px,
        (p.top_right.x - p.top_left.x) / px,
        (p.bottom_left.y - p.top_left.y) / px,
    )
    doc.close()
    return (*box, size)


@pytest.fixture
def certificate(keyed_station: tuple[Station, object], tmp_path: Path) -> tuple[Station, Issued]:
    station, _ = keyed_station
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        return station, issuer.issue(reg, make_record())


def test_queues_are_listed_with_their_state() -> None:
    queues = {q.name: q for q in list_queues()}
    assert queues[QUEUE].ready and queues[QUEUE].state in ("idle", "printing")
    assert queues[STOPPED].state == "disabled" and not queues[STOPPED].ready


def test_a_certificate_prints_at_true_scale_with_the_calibration_offset(certificate: tuple[Station, Issued]) -> None:
    station, cert = certificate
    before = hashlib.sha256(cert.path.read_bytes()).hexdigest()
    save_offset(station.home, QUEUE, 2.0, -1.5)  # 2 mm right, 1.5 mm down
    assert load_offsets(station.home)[QUEUE] == (2.0, -1.5)
    [job] = print_files(station.home, [cert.path], QUEUE)
    assert job.queue == QUEUE and job.job_id.startswith(f"{QUEUE}-") and job.offset_mm == (2.0, -1.5)
    printed = wait_for_output(job.job_id)
    left, top, width, height, (page_w, page_h) = qr_geometry(printed)
    assert (round(page_w), round(page_h)) == (842, 595)  # A4 landscape as displayed
    assert abs(width - 30.0) <= 0.2 and abs(height - 30.0) <= 0.2  # no scaling
    assert abs(left - (236.0 + 2.0)) <= 0.25 and abs(top - (36.0 + 1.5)) <= 0.25  # moved by the offset
    assert hashlib.sha256(cert.path.read_bytes()).hexdigest() == before  # the PDF on disk stays exact


def test_prints_and_reprints_are_logged_without_a_new_number(certificate: tuple[Station, Issued]) -> None:
    station, cert = certificate
    first = print_files(station.home, [cert.path], QUEUE)
    again = print_files(station.home, [cert.path], QUEUE, copies=2)
    with station.register() as reg:
        entries = [e for e in reg.audit_entries() if e.action == "certificate.print"]
        assert reg.counts() == {"pending": 0, "issued": 1, "void": 0}
        assert reg.check() == []
    assert [e.detail["job_id"] for e in entries] == [first[0].job_id, again[0].job_id]
    assert [e.detail["reprint"] for e in entries] == [False, True]
    assert entries[1].detail["copies"] == 2 and entries[1].detail["number"] == cert.record.number
    for job in (*first, *again):
        wait_for_output(job.job_id)


def test_unknown_or_stopped_queue_and_missing_cups_are_clear_errors(
    certificate: tuple[Station, Issued], monkeypatch: pytest.MonkeyPatch
) -> None:
    station, cert = certificate
    with pytest.raises(PrintError, match="打印机 NoSuchQueue 不存在"):
        print_files(station.home, [cert.path], "NoSuchQueue")
    with pytest.raises(PrintError, match=f"打印机 {STOPPED} 已停止"):
        find_queue(STOPPED)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PrintError, match="找不到 CUPS 命令"):
        print_files(station.home, [cert.path], QUEUE)
    with station.register() as reg:
        assert not [e for e in reg.audit_entries() if e.action == "certificate.print"]


def test_offsets_are_bounded(certificate: tuple[Station, Issued]) -> None:
    station, _ = certificate
    with pytest.raises(PrintError, match="±10mm 以内，收到 12mm"):
        save_offset(station.home, QUEUE, 12.0, 0.0)


def test_the_calibration_page_has_its_reference_marks(tmp_path: Path) -> None:
    path = tmp_path / "calibration.pdf"
    path.write_bytes(calibration_pdf())
    with pdfplumber.open(path) as pdf:
        page = pdf.pages[0]
        assert (round(page.width), round(page.height)) == (842, 595)
        mm = 72 / 25.4
        squares = sorted(round(r["width"] / mm, 1) for r in page.rects if abs(r["width"] - r["height"]) < 0.1)
        assert 100.0 in squares and 30.0 in squares
        assert "100mm × 100mm" in page.extract_text()
    with pikepdf.open(path) as pdf:
        assert len(pdf.pages) == 1


def test_the_issue_screen_prints_through_the_dialog(certificate: tuple[Station, Issued]) -> None:
    import asyncio

    from textual.widgets import Button, Select

    from kiosk.app import build_app
    from kiosk.widgets.print_dialog import PrintDialog

    station, cert = certificate
    app = build_app(station.home, "issue")

    async def run() -> None:
        async with app.run_test(size=(150, 60)) as pilot:
            await pilot.pause()
            app.screen.issued = cert  # type: ignore[attr-defined]  # as after signing on this screen
            app.push_screen(PrintDialog([cert.path]))
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, PrintDialog)
            dialog.query_one("#queue", Select).value = QUEUE
            dialog.query_one("#do-print", Button).press()
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()

    asyncio.run(run())
    with station.register() as reg:
        jobs = [e.detail for e in reg.audit_entries() if e.action == "certificate.print"]
    assert len(jobs) == 1 and jobs[0]["queue"] == QUEUE and jobs[0]["number"] == cert.record.number
    wait_for_output(str(jobs[0]["job_id"]))
    assert any("已提交打印" in (n.title or "") for n in app._notifications)


def certkiosk(home: Path, *args: str) -> tuple[int, str, str]:
    """Run ``certkiosk --home HOME ARGS`` as a user types it; (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from kiosk.cli import cli

    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_printers_and_print_list_show_every_queue_with_its_state(tmp_path: Path) -> None:
    code, out, err = certkiosk(tmp_path, "printers")
    assert code == 0, err
    lines = {line.split()[0].removesuffix("（默认）"): line.split()[1:] for line in out.splitlines()}
    assert lines[QUEUE][0] in ("空闲", "正在打印") and lines[QUEUE][1] == "接受任务"
    assert lines[STOPPED][0] == "已停止"
    code, listed, err = certkiosk(tmp_path, "print", "--list")
    assert code == 0, err
    assert listed == out  # the same queues, written the same way


def test_calibrate_prints_the_calibration_page(tmp_path: Path) -> None:
    saved = tmp_path / "calibration.pdf"
    code, out, err = certkiosk(tmp_path / "home", "calibrate", "--printer", QUEUE, "--save", str(saved))
    assert code == 0, err
    assert f"校准页已保存到 {saved}" in out
    [job_id] = re.findall(rf"校准页已提交 {QUEUE}，任务号 ({QUEUE}-[0-9]+)。", out)
    with pdfplumber.open(saved) as doc:
        assert "100mm × 100mm" in doc.pages[0].extract_text()
    ruler = " ".join(str(mm) for mm in range(10, 300, 10))  # the page's millimetre ruler
    with pdfplumber.open(wait_for_output(job_id)) as doc:  # what CUPS printed
        assert ruler in doc.pages[0].extract_text()
        assert (round(doc.pages[0].width), round(doc.pages[0].height)) in ((842, 595), (595, 842))


def test_offsets_stored_by_calibrate_move_a_later_print(certificate: tuple[Station, Issued]) -> None:
    station, cert = certificate
    home = station.home.root
    code, out, err = certkiosk(home, "calibrate", "--printer", QUEUE, "--offset-x", "2", "--offset-y", "-1.5")
    assert code == 0, err
    assert f"已保存打印机 {QUEUE} 的偏移：x +2mm，y -1.5mm" in out
    code, out, err = certkiosk(home, "calibrate", "--printer", QUEUE, "--offset-y", "1")  # x is kept
    assert code == 0, err
    assert load_offsets(station.home)[QUEUE] == (2.0, 1.0)
    code, out, err = certkiosk(home, "print", "--printer", QUEUE, str(cert.path))
    assert code == 0, err
    submitted = rf"已提交 {cert.path.name} → {QUEUE}，任务号 ({QUEUE}-[0-9]+)，1 份，校准偏移 x\+2mm y\+1mm"
    [job_id] = re.findall(submitted, out)
    left, top, width, _, _ = qr_geometry(wait_for_output(job_id))
    assert abs(width - 30.0) <= 0.2
    assert abs(left - (236.0 + 2.0)) <= 0.25 and abs(top - (36.0 - 1.0)) <= 0.25  # right 2 mm, up 1 mm


def test_a_stopped_queue_is_reported_by_each_printing_command(certificate: tuple[Station, Issued]) -> None:
    station, cert = certificate
    home = station.home.root
    for args in (
        ("calibrate", "--printer", STOPPED),
        ("calibrate", "--printer", STOPPED, "--offset-x", "1"),
        ("print", "--printer", STOPPED, str(cert.path)),
    ):
        code, out, err = certkiosk(home, *args)
        assert code == 2, (args, out)
        assert err.startswith(f"错误：打印机 {STOPPED} 已停止") and "请先在 CUPS 中启用" in err, args
        assert "任务号" not in out and "Traceback" not in err
    assert STOPPED not in load_offsets(station.home)
    with station.register() as reg:
        assert not [e for e in reg.audit_entries() if e.action == "certificate.print"]
