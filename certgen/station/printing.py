"""Printing at true scale through CUPS (``lp`` / ``lpstat``), with a per-queue calibration offset.

The layout's millimetres only hold at 100% scale, so every job asks for A4 and no fit-to-page
scaling. Each printer shifts the page a little: the station prints a calibration page, measures
it with a ruler, and stores an x/y offset per queue; the offset is applied to a temporary print
copy only (the PDF on disk stays exact). Nothing is recorded as printed unless CUPS accepted the
job, and every print (a reprint too) is written to the register's audit log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certgen.exceptions import PrintError
from certgen.files import write_bytes_atomic
from certgen.station.home import StationHome

LP_OPTIONS = ("-o", "media=A4", "-o", "print-scaling=none", "-o", "fit-to-page=false", "-o", "scaling=100")
MAX_OFFSET_MM = 10.0
JOB_ID = re.compile(r"request id is (\S+)")


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


def run_cups(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(args[0]) is None:
        raise PrintError(f"找不到 CUPS 命令 {args[0]}：本机未安装 CUPS（Debian: apt-get install cups）")
    try:
        return subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise PrintError(f"{what}超时：CUPS 60 秒内没有回应") from None


def list_queues() -> list[Queue]:
    """Every queue CUPS knows, with its state; PrintError if CUPS is not running."""
    done = run_cups(["lpstat", "-p", "-a", "-d"], "查询打印机")
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
    return home.printing_path


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
