"""Shared set-up for the benchmarks: a demo station with a key, and issued certificates."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from certgen.issuing.issuer import Issued, Issuer  # noqa: E402
from certgen.record import CertificateRecord  # noqa: E402
from certgen.station.home import StationHome  # noqa: E402
from certgen.station.station import Station  # noqa: E402
from kiosk.demo import make_placeholder_photo  # noqa: E402
from tests.conftest import resident_id  # noqa: E402

PASSPHRASE = "bench passphrase"
NAMES = ["王秀英", "李强", "张伟", "刘洋", "陈静", "杨磊", "赵孟𫖯", "黄丽", "周杰", "吴娟", "欧阳明", "孙超"]


def station(folder: Path) -> Station:
    st = Station(StationHome(folder, "--home").ensure())
    st.new_key("Y000021012001", "示例职业技能等级认定中心（示例）", PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    return st


def record(i: int, photo: Path | None) -> CertificateRecord:
    return CertificateRecord(
        name=NAMES[i % len(NAMES)], id_type=201, id_number=resident_id(i), occupation_code="6-18-01-01",
        occupation="车工", job_type="数控车工" if i % 2 else None, level=3 + i % 3, issue_date=dt.date(2020, 11, 15),
        photo=photo,
    )  # fmt: skip


def issue_some(folder: Path, count: int) -> tuple[Station, list[Issued]]:
    st = station(folder / "station")
    photo = folder / "photo.jpg"
    make_placeholder_photo(photo, 3)
    issuer = Issuer(st, PASSPHRASE, out_dir=folder / "issued")
    with st.register() as reg:
        return st, [issuer.issue(reg, record(i, photo)) for i in range(count)]
