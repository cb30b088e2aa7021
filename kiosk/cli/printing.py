"""`certkiosk print`, `printers` and `calibrate`: CUPS printing."""

from __future__ import annotations

from pathlib import Path

import click

from kiosk.cli.base import cli, station_of


def echo_queues() -> None:
    """One line per CUPS queue: name, default mark, state, whether it accepts jobs (``printers``
    and ``print --list``)."""
    from certgen.station.printing import list_queues

    queues = list_queues()
    if not queues:
        click.echo("CUPS 中没有打印机")
    for q in queues:
        click.echo(
            f"{q.name}{'（默认）' if q.default else ''}  {q.state_text}  {'接受任务' if q.accepting else '不接受任务'}"
        )


@cli.command("print")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--printer", "queue", help="CUPS queue (default: the system default). / 打印机队列。")
@click.option("--copies", type=click.IntRange(1, 99), default=1, show_default=True, help="Copies. / 份数。")
@click.option("--list", "list_queues_flag", is_flag=True, help="List the queues and exit. / 列出打印机。")
@click.pass_context
def print_cmd(
    ctx: click.Context, files: tuple[Path, ...], queue: str | None, copies: int, list_queues_flag: bool
) -> None:
    """Print certificates at 100% on A4 through CUPS. / 通过 CUPS 按 100% 比例在 A4 上打印证书。"""
    if list_queues_flag:
        echo_queues()
        return
    if not files:
        raise click.UsageError("请给出要打印的PDF文件，或用 --list 列出打印机 / give the PDF files to print, or --list")
    from certgen.issuing.printing import print_files

    home = station_of(ctx).home.ensure()
    for job in print_files(home, list(files), queue, copies):
        shift = f"，校准偏移 x{job.offset_mm[0]:+g}mm y{job.offset_mm[1]:+g}mm" if job.offset_mm != (0.0, 0.0) else ""
        click.echo(f"已提交 {job.file.name} → {job.queue}，任务号 {job.job_id}，{job.copies} 份{shift}")


@cli.command("printers")
def printers_cmd() -> None:
    """List CUPS queues and their state. / 列出打印机及其状态。"""
    echo_queues()


@cli.command("calibrate")
@click.option("--printer", "queue", help="CUPS queue. / 打印机队列。")
@click.option("--offset-x", type=float, help="Store this x offset in mm (right is positive). / 保存x偏移（mm）。")
@click.option("--offset-y", type=float, help="Store this y offset in mm (up is positive). / 保存y偏移（mm）。")
@click.option(
    "--save",
    "save_to",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the page to a PDF. / 另存校准页。",
)
@click.pass_context
def calibrate_cmd(
    ctx: click.Context, queue: str | None, offset_x: float | None, offset_y: float | None, save_to: Path | None
) -> None:
    """Print a calibration page, or store the offset measured on it. / 打印校准页，或保存测得的偏移。"""
    from certgen.files import write_bytes_atomic
    from certgen.issuing.printing import submit
    from certgen.pdf.calibration import calibration_pdf
    from certgen.station.printing import find_queue, load_offsets, save_offset

    home = station_of(ctx).home.ensure()
    if offset_x is not None or offset_y is not None:
        chosen = find_queue(queue).name
        old = load_offsets(home).get(chosen, (0.0, 0.0))
        x = offset_x if offset_x is not None else old[0]
        y = offset_y if offset_y is not None else old[1]
        save_offset(home, chosen, x, y)
        click.echo(f"已保存打印机 {chosen} 的偏移：x {x:+g}mm，y {y:+g}mm（只作用于打印副本，PDF文件不变）")
        return
    data = calibration_pdf()
    if save_to is not None:
        write_bytes_atomic(save_to, data)
        click.echo(f"校准页已保存到 {save_to}")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calibration.pdf"
        path.write_bytes(data)
        target = find_queue(queue)
        job = submit(path, target, 1, (0.0, 0.0), "certkiosk 打印校准页")
    click.echo(
        f"校准页已提交 {job.queue}，任务号 {job.job_id}。按页面上的说明测量后，用 --offset-x/--offset-y 保存偏移。"
    )
