"""``certkiosk demo``: the main job end to end on an embedded default, offline.

Creates (or reuses) a demo station home with a clearly fictional institution, issues the bundled
sample roster's certificates, renders one of them to a PNG scan, verifies everything and reports
what it did. Only orchestration: every step is a certgen or verify call.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import platformdirs
from PIL import Image, ImageDraw

from certgen.exceptions import ConfigError
from certgen.issuing.batch import BatchResult, plan_batch, run_batch
from certgen.issuing.issuer import Issuer
from certgen.issuing.roster import read_roster
from certgen.station import Station
from certgen.station.home import StationHome

DEMO_FILING = "Y000021146999"
"""Valid in form (Liaoning, 葫芦岛市, kind 6 其他, order 999) and in no real register."""
DEMO_INSTITUTION = "示例职业技能等级评价中心（示例）"
DEMO_PASSPHRASE = "certkiosk-demo-only"
"""Printed on purpose: the demo key protects nothing real."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo did, for the command to print."""

    home: Path
    created_key: bool
    batch: BatchResult
    folders: tuple[Path, ...]
    """Where the roster's certificates are: this batch's folder, and those of the batch ids an
    earlier version gave the same roster."""
    scan: Path
    verified: int
    valid: int
    problems: tuple[str, ...]


def demo_home(explicit: StationHome | None) -> StationHome:
    """The demo's own home: ``--home`` when given explicitly, else a separate folder (never a real station's)."""
    if explicit is not None and explicit.source == "--home":
        return explicit
    return StationHome(Path(platformdirs.user_data_dir("certkiosk-demo", appauthor=False)), "demo")


def run_demo(home: StationHome, say: Callable[[str], None] = print) -> DemoResult:
    from verify.archive import default_state_path, run_archive

    station = Station(home.ensure())
    created = False
    with station.register() as reg:
        has_key = any(k.filing_number == DEMO_FILING for k in reg.institution_keys())
    if not has_key:
        say(f"创建示例机构 {DEMO_FILING} {DEMO_INSTITUTION} 的签名密钥（示例口令：{DEMO_PASSPHRASE}）")
        station.new_key(DEMO_FILING, DEMO_INSTITUTION, DEMO_PASSPHRASE, valid_from=_dt.date(2025, 1, 1))
        created = True
    station.add_x509(DEMO_PASSPHRASE)  # a demo home from before electronic certificates
    work = home.root / "demo-input"
    roster_path = work / "示例名册.csv"
    work.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("kiosk") / "demo_roster.csv") as bundled:
        if not roster_path.exists() or roster_path.read_bytes() != bundled.read_bytes():
            shutil.copyfile(bundled, roster_path)
    roster = read_roster(roster_path)
    for i, row in enumerate(roster.rows):
        photo = work / "photos" / str(row.fields.get("photo"))
        if not photo.exists():
            make_placeholder_photo(photo, i)
    say(f"名册 {roster_path}：{len(roster.rows)} 人；照片为程序生成的示例头像")
    issuer = Issuer(
        station, DEMO_PASSPHRASE, DEMO_FILING, "liaoning-2020", home.output_dir,
        forms=("paper", "electronic"), sample_seal=True,
    )  # fmt: skip
    with station.register() as reg:
        plan = plan_batch(issuer, reg, roster, work / "photos")
    batch = run_batch(issuer, plan, progress=lambda done, total, number: None)
    with station.register() as reg:  # people issued before may be filed under an earlier version's batch id
        earlier = (reg.get(number) for _, _, number in batch.already)
        filed = {Path(c.output_path).parent for c in earlier if c is not None and c.output_path}
    folders = sorted(filed | ({batch.folder} if batch.folder.is_dir() else set()))
    say(f"发证：本次 {batch.issued} 张，此前已发 {batch.skipped} 张 → {'、'.join(map(str, folders))}")
    say("每张证书有纸质版和电子证书（加盖示例印章的PDF签名，文件名以 -e.pdf 结尾）")

    import pypdfium2

    papers = sorted(pdf for folder in folders for pdf in folder.glob("*[0-9].pdf"))
    if not papers:
        raise ConfigError(f"演示目录 {home.root} 中找不到已发证书的 PDF 文件：请删除该目录后重新运行 certkiosk demo")
    first = papers[0]  # a paper certificate
    scan = home.root / "demo-scan.png"
    pdf = pypdfium2.PdfDocument(str(first))
    try:
        pdf[0].render(scale=200 / 72).to_pil().convert("RGB").save(scan, "PNG")
    finally:
        pdf.close()
    say(f"把证书 {first.name} 渲染为 200 dpi 扫描图 {scan}")

    run = run_archive(
        [*folders, scan], station.trust.load(),
        state_path=default_state_path(home.verify_runs_dir, [*folders, scan]), force=True,
    )  # fmt: skip
    valid = sum(r.valid for r in run.results)
    problems = tuple(r.line() for r in run.results if not r.valid)
    return DemoResult(home.root, created, batch, tuple(folders), scan, len(run.results), valid, problems)


def make_placeholder_photo(path: Path, seed: int, width_px: int = 413, height_px: int = 579) -> None:
    """A generated, clearly synthetic portrait on white (for the demo and tests)."""
    palette = [(70, 90, 140), (120, 70, 60), (60, 110, 90), (110, 90, 140), (150, 110, 60)]
    colour = palette[seed % len(palette)]
    img = Image.new("RGB", (width_px, height_px), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    cx = width_px // 2
    head = width_px // 4
    draw.ellipse((cx - head, height_px // 5, cx + head, height_px // 5 + 2 * head + head // 3), fill=(236, 200, 170))
    draw.ellipse((cx - head, height_px // 5 - head // 6, cx + head, height_px // 5 + head), fill=(30, 30, 30))
    draw.rounded_rectangle((width_px // 8, height_px * 3 // 5, width_px * 7 // 8, height_px + 40), 60, fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=92, dpi=(300, 300))
