"""Printing certificates: check each against the register, shift by the queue's offset, submit, log."""

from __future__ import annotations

import tempfile
from pathlib import Path

from certgen.exceptions import PrintError
from certgen.pdf.calibration import shifted_copy
from certgen.station.home import StationHome
from certgen.station.printing import JOB_ID, LP_OPTIONS, PrintJob, Queue, find_queue, load_offsets, run_cups
from certgen.station.register import Register


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
        done = run_cups(
            ["lp", "-d", queue.name, "-n", str(copies), "-t", title, *LP_OPTIONS, str(target)], "提交打印任务"
        )
    match = JOB_ID.search(done.stdout)
    if done.returncode != 0 or match is None:
        why = (done.stderr or done.stdout).strip() or f"lp 退出码 {done.returncode}"
        raise PrintError(f"打印机 {queue.name} 拒绝了任务：{why}")
    return PrintJob(match.group(1), queue.name, path, copies, offset)


def print_files(home: StationHome, paths: list[Path], queue_name: str | None, copies: int = 1) -> list[PrintJob]:
    """Print PDFs on a queue with its calibration offset, and log every accepted job.

    A certificate's number is taken from its file name when the register knows it; printing never
    allocates a number, so a reprint is simply another logged job.
    """
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
