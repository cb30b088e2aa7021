"""Shared fixtures: a station home in a temporary folder, a demo institution and its key."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from certgen.record import CertificateRecord
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.trust import PublicKeyInfo

VECTORS = Path(__file__).parent / "vectors"
FILING = "Y000021012001"  # 华晨汽车集团控股有限公司, 002 附件9
INSTITUTION = "华晨汽车集团控股有限公司"
PASSPHRASE = "test-only passphrase"
TODAY = dt.date(2024, 5, 20)
"""The frozen "today" of the UI tests: what a screen proposes never depends on the day the suite runs."""


def tool(name: str, package: str) -> str:
    """An external program a test runs; the test is skipped, naming the Debian package, on a machine
    without it (``.ci/run`` installs them all, so CI never skips)."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed: apt-get install {package}")
    return path


@pytest.fixture(autouse=True)
def no_system_fonts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees a machine without 华文楷体: layouts and glyph checks use the bundled font,
    whatever fonts the machine running the suite has (a test that wants STKaiti puts one in place)."""
    import certgen.pdf.fonts

    monkeypatch.setattr(certgen.pdf.fonts, "system_font_dirs", list)


@pytest.fixture
def home(tmp_path: Path) -> StationHome:
    return StationHome(tmp_path / "home", "--home").ensure()


@pytest.fixture
def station(home: StationHome) -> Station:
    return Station(home)


@pytest.fixture
def keyed_station(station: Station) -> tuple[Station, PublicKeyInfo]:
    info, _ = station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    return station, info


def make_record(**changes: object) -> CertificateRecord:
    fields: dict[str, object] = {
        "name": "张三",
        "id_type": 201,
        "id_number": "11010519491231002X",
        "occupation_code": "6-18-01-01",
        "occupation": "车工",
        "level": 3,
        "issue_date": dt.date(2020, 11, 15),
        "job_type": None,
        "employer": "华晨汽车集团控股有限公司",
    }
    fields.update(changes)
    return CertificateRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few generated white-background photos, 2-inch (413x579 px) and 1-inch (295x413 px)."""
    from kiosk.demo import make_placeholder_photo

    folder = tmp_path_factory.mktemp("photos")
    for i in range(5):
        make_placeholder_photo(folder / f"p{i}.jpg", i)
        make_placeholder_photo(folder / f"small{i}.jpg", i, 295, 413)
    return folder


@pytest.fixture
def issuer(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path):  # type: ignore[no-untyped-def]
    from certgen.issuing.issuer import Issuer

    station, _ = keyed_station
    return Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")


def resident_id(seed: int) -> str:
    """A valid 18-character resident ID number for test person ``seed``."""
    from certgen.idtypes import gb11643_check_char

    first = f"21010219{80 + seed % 20:02d}{seed % 12 + 1:02d}{seed % 28 + 1:02d}{seed % 1000:03d}"
    return first + gb11643_check_char(first)


def _test_signer() -> tuple[object, dict[str, bytes]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from certgen.station.register_proof import CheckpointSigner
    from certgen.trust import kid_of, raw_public

    private = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # a fixed test-only key
    public = raw_public(private.public_key())
    return CheckpointSigner(kid_of(public).hex(), private), {kid_of(public).hex(): public}


TEST_SIGNER, TEST_TRUSTED = _test_signer()
"""A checkpoint signer for register tests that use no key store, and the key that checks it."""


def _fast_kdf() -> object:
    from certgen.station.keys import ScryptParams

    return ScryptParams(n=2**11, r=8, p=1)


FAST_KDF = _fast_kdf()
"""The test suite's scrypt cost (used by ``fast_kdf`` and by the test helper processes)."""


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one place the key files' scrypt cost is lowered: tests unlock keys many times, and a
    strong KDF costs 128 MiB and about a second each. test_keyfile asserts the real default."""
    import certgen.station.keys

    monkeypatch.setattr(certgen.station.keys, "KDF", FAST_KDF)
