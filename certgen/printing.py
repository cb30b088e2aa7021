"""Printing at true scale through CUPS (``lp`` / ``lpstat``), with a per-queue calibration offset.

The layout's millimetres only hold at 100% scale, so every job asks for A4 and no fit-to-page
scaling. Each printer shifts the page a little: the station prints a calibration page, measures
it with a ruler, and stores an x/y offset per queue; the offset is applied to a temporary print
copy only (the PDF on disk stays exact). Nothing is recorded as printed unless CUPS accepted the
job, and every print (a reprint too) is written to the register's audit log.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certgen.exceptions import CertkioskError
from certgen.home import StationHome, write_bytes_atomic

LP_OPTIONS = ("-o", "media=A4", "-o", "print-scaling=none", "-o", "fit-to-page=false", "-o", "scaling=100")
MAX_OFFSET_MM = 10.0
_JOB_ID = re.compile(r"request id is (\S+)")


class PrintError(CertkioskError):
    """CUPS is missing, the queue is unknown or stopped, or the job was refused."""


@dataclass(frozen=True)
class Queue:
    """A CUPS print queue."""

    name: str
    """The queue's name."""
    state: str
    """``idle``, ``printing`` or ``disabled`` (stopped), as lpstat says."""
    accepting: bool
    """Whether the queue accepts jobs."""
    default: bool
    """Whether it is the system's default queue."""
    detail: str
    """lpstat's line about it."""

    @property
    def ready(self) -> bool:
        return self.state != "disabled" and self.accepting

    @property
    def state_text(self) -> str:
        return {"idle": "空闲", "printing": "正在打印", "disabled": "已停止"}.get(self.state, self.state)


@dataclass(frozen=True)
class PrintJob:
    """A job CUPS accepted."""

    job_id: str
    """CUPS's request id, e.g. ``CertPDF-12``."""
    queue: str
    """The queue it went to."""
    file: Path
    """The PDF printed (the file on disk, not the shifted print copy)."""
    copies: int
    """Copies asked for."""
    offset_mm: tuple[float, float]
    """The calibration offset applied to the print copy."""


def _env() -> dict[str, str]:
    return dict(os.environ, LC_ALL="C", LANG="C")


def _run(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(args[0]) is None:
        raise PrintError(f"找不到 CUPS 命令 {args[0]}：本机未安装 CUPS（Debian: apt-get install cups）")
    try:
        return subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise PrintError(f"{what}超时：CUPS 60 秒内没有回应") from None


def list_queues() -> list[Queue]:
    """Every queue CUPS knows, with its state; PrintError if CUPS is not running."""
    done = _run(["lpstat", "-p", "-a", "-d"], "查询打印机")
    out = done.stdout + done.stderr
    if "scheduler is not running" in out or "Unable to connect" in out:
        raise PrintError("CUPS 打印服务没有运行（请启动 cupsd）")
    default = ""
    states: dict[str, tuple[str, str]] = {}
    accepting: dict[str, bool] = {}
    for line in out.splitlines():
        if m := re.match(r"printer (\S+) (?:is )?(idle|now printing|disabled)", line):
            states[m.group(1)] = ("printing" if m.group(2) == "now printing" else m.group(2), line.strip())
        elif m := re.match(r"(\S+) (accepting|not accepting) requests", line):
            accepting[m.group(1)] = m.group(2) == "accepting"
        elif m := re.match(r"system default destination: (\S+)", line):
            default = m.group(1)
    return [Queue(n, s, accepting.get(n, True), n == default, d) for n, (s, d) in sorted(states.items())]


def find_queue(name: str | None) -> Queue:
    """The named queue (or the default one), ready to print; PrintError naming what is wrong."""
    queues = list_queues()
    if not queues:
        raise PrintError("CUPS 中没有任何打印机：请先添加打印机")
    if name is None:
        chosen = next((q for q in queues if q.default), None)
        if chosen is None:
            raise PrintError("没有默认打印机：请用 --printer 指定，可用：" + "、".join(q.name for q in queues))
    else:
        chosen = next((q for q in queues if q.name == name), None)
        if chosen is None:
            raise PrintError(f"打印机 {name} 不存在，可用：" + "、".join(q.name for q in queues))
    if chosen.state == "disabled":
        raise PrintError(f"打印机 {chosen.name} 已停止（{chosen.detail}）：请先在 CUPS 中启用")
    if not chosen.accepting:
        raise PrintError(f"打印机 {chosen.name} 不接受新任务：请先在 CUPS 中设为接受任务")
    return chosen


# --- calibration offsets ---------------------------------------------------------------------------
def _offsets_path(home: StationHome) -> Path:
    return home.root / "printing.json"


def load_offsets(home: StationHome) -> dict[str, tuple[float, float]]:
    """The stored x/y offsets (mm) per queue."""
    path = _offsets_path(home)
    if not path.is_file():
        return {}
    try:
        data: dict[str, Any] = json.loads(path.read_text("utf-8"))
        return {q: (float(v["x_mm"]), float(v["y_mm"])) for q, v in data.get("offsets", {}).items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise PrintError(f"打印偏移配置 {path} 损坏：{exc}") from None


def save_offset(home: StationHome, queue: str, x_mm: float, y_mm: float) -> None:
    """Store the offset for ``queue``; ValueError stating the limit when it is implausible."""
    for axis, value in (("x", x_mm), ("y", y_mm)):
        if abs(value) > MAX_OFFSET_MM:
            raise PrintError(f"{axis} 方向偏移应在 ±{MAX_OFFSET_MM:g}mm 以内，收到 {value:g}mm")
    offsets = load_offsets(home)
    offsets[queue] = (x_mm, y_mm)
    doc = {"offsets": {q: {"x_mm": x, "y_mm": y} for q, (x, y) in sorted(offsets.items())}}
    write_bytes_atomic(_offsets_path(home), (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


def shifted_copy(pdf: bytes, x_mm: float, y_mm: float) -> bytes:
    """The PDF with every page's content moved right by ``x_mm`` and up by ``y_mm``."""
    import pikepdf

    pt = 72 / 25.4
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for page in doc.pages:
            page.contents_add(doc.make_stream(f"q 1 0 0 1 {x_mm * pt:.4f} {y_mm * pt:.4f} cm\n".encode()), prepend=True)
            page.contents_add(doc.make_stream(b"\nQ\n"), prepend=False)
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()


# --- printing ---------------------------------------------------------------------------------
def submit(path: Path, queue: Queue, copies: int, offset: tuple[float, float], title: str) -> PrintJob:
    """Send one PDF to CUPS at 100% on A4; PrintJob only when CUPS accepted it."""
    if not 1 <= copies <= 99:
        raise PrintError(f"份数应为1-99，收到 {copies}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PrintError(f"无法读取 {path}：{exc.strerror}") from None
    if not data.startswith(b"%PDF-"):
        raise PrintError(f"{path} 不是PDF文件")
    with tempfile.TemporaryDirectory(prefix="certkiosk-print-") as tmp:
        target = path
        if offset != (0.0, 0.0):
            target = Path(tmp) / path.name
            target.write_bytes(shifted_copy(data, *offset))
        done = _run(["lp", "-d", queue.name, "-n", str(copies), "-t", title, *LP_OPTIONS, str(target)], "提交打印任务")
    match = _JOB_ID.search(done.stdout)
    if done.returncode != 0 or match is None:
        why = (done.stderr or done.stdout).strip() or f"lp 退出码 {done.returncode}"
        raise PrintError(f"打印机 {queue.name} 拒绝了任务：{why}")
    return PrintJob(match.group(1), queue.name, path, copies, offset)


def print_files(home: StationHome, paths: list[Path], queue_name: str | None, copies: int = 1) -> list[PrintJob]:
    """Print PDFs on a queue with its calibration offset, and log every accepted job.

    A certificate's number is taken from its file name when the register knows it; printing never
    allocates a number, so a reprint is simply another logged job.
    """
    from certgen.register import Register

    if not paths:
        raise PrintError("没有要打印的文件")
    queue = find_queue(queue_name)
    offset = load_offsets(home).get(queue.name, (0.0, 0.0))
    jobs = []
    with Register(home.register_path) as reg:
        for path in paths:
            known = reg.get(path.stem)
            if known is not None and known.status != "issued":
                raise PrintError(f"证书 {path.stem} 在登记库中的状态不是已发证，不能打印")
            reprint = reg.printed_before(str(path))
            job = submit(path, queue, copies, offset, f"职业技能等级证书 {path.stem}")
            reg.log(
                "certificate.print",
                {
                    "number": known.number if known else None, "file": str(path), "queue": job.queue,
                    "job_id": job.job_id, "copies": copies, "offset_mm": list(offset), "reprint": reprint,
                },
            )  # fmt: skip
            jobs.append(job)
    return jobs


def calibration_pdf(
    border_w: float = 269.0, border_h: float = 188.0, qr_xy: tuple[float, float] = (236.0, 36.0)
) -> bytes:
    """An A4 landscape page to measure a printer: mm rulers along every edge, a 100 mm square, the
    certificate border's corners and a 30 mm square where the QR code goes."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    from certgen.fonts import choose_font

    font = choose_font()
    w, h = 297.0, 210.0
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(w * mm, h * mm), initialFontName=font.name, initialFontSize=8)
    c.setLineWidth(0.2)
    for i in range(0, 298):  # top and bottom rulers
        length = 6 if i % 10 == 0 else 4 if i % 5 == 0 else 2
        c.line(i * mm, 0, i * mm, length * mm)
        c.line(i * mm, h * mm, i * mm, (h - length) * mm)
        if i % 10 == 0 and 0 < i < 297:
            c.setFont(font.name, 6)
            c.drawCentredString(i * mm, 7 * mm, str(i))
            c.drawCentredString(i * mm, (h - 9) * mm, str(i))
    for i in range(0, 211):  # left and right rulers
        length = 6 if i % 10 == 0 else 4 if i % 5 == 0 else 2
        c.line(0, i * mm, length * mm, i * mm)
        c.line(w * mm, i * mm, (w - length) * mm, i * mm)
        if i % 10 == 0 and 0 < i < 210:
            c.drawString(7 * mm, i * mm - 2, str(i))
            c.drawRightString((w - 7) * mm, i * mm - 2, str(i))
    c.setLineWidth(0.3)
    c.rect((w - 100) / 2 * mm, (h - 100) / 2 * mm, 100 * mm, 100 * mm)  # the 100 mm reference square
    bx, by = (w - border_w) / 2, (h - border_h) / 2
    for x, y, dx, dy in (
        (bx, by, 1, 1),
        (bx + border_w, by, -1, 1),
        (bx, by + border_h, 1, -1),
        (bx + border_w, by + border_h, -1, -1),
    ):
        c.setLineWidth(2.25)
        c.line(x * mm, y * mm, (x + 10 * dx) * mm, y * mm)
        c.line(x * mm, y * mm, x * mm, (y + 10 * dy) * mm)
    qx, qy = qr_xy
    c.setLineWidth(0.3)
    c.rect(qx * mm, (h - qy - 30) * mm, 30 * mm, 30 * mm)
    c.setFont(font.name, 10)
    c.drawCentredString((qx + 15) * mm, (h - qy - 17) * mm, "二维码 30mm")
    c.drawCentredString(w / 2 * mm, (h / 2 + 2) * mm, "100mm × 100mm")
    lines = [
        "certkiosk 打印校准页：请以100%比例、A4横向打印，用直尺测量。",
        "1. 中间方框应为100mm×100mm；右侧小方框应为30mm×30mm。若不符，请关闭打印机的“适合页面/缩放”。",
        "2. 量出边框左下角到纸张左边、下边的距离：应为14.0mm、11.0mm。",
        "   实际偏右/偏上了多少，就把偏移设为负的多少，例如偏右0.8mm、偏下0.5mm：",
        "   certkiosk calibrate --printer 打印机 --offset-x -0.8 --offset-y 0.5",
    ]
    for i, text in enumerate(lines):
        c.drawString(30 * mm, (h - 30 - 6 * i) * mm, text)
    c.showPage()
    c.save()
    return buf.getvalue()
