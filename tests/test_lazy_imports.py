"""Where a person waits, certkiosk loads only what that step uses.

These guard behaviour (which modules a cold process loads), not speed: the timings are in
bench/startup.py and docs/performance.md. Each check runs a real, fresh interpreter.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from certgen.number import format_number
from certgen.payload import sign
from certgen.station import Station
from certgen.trust import PublicKeyInfo
from tests.conftest import FILING, PASSPHRASE, make_record

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {
    "rich", "textual", "PIL", "zxingcpp", "pypdfium2", "openpyxl", "xlsxwriter", "reportlab", "pikepdf", "numpy",
    "segno",
}  # fmt: skip
"""Libraries that cost tens of milliseconds each to import."""
FILE_MACHINERY = {"verify.archive", "verify.files", "verify.scan", "verify.report", "multiprocessing", "sqlite3"}
"""What verifying files needs and verifying a scanned text does not."""
KEY_MACHINERY = {
    "certgen.bundle",
    "cryptography.hazmat.primitives.ciphers.aead",
    "cryptography.hazmat.primitives.kdf.scrypt",
    "cryptography.x509",
    "certgen.docsign",
}
"""What opening, sealing or exchanging keys needs and checking a signature with a trusted public key does not
(X.509: the key's document-signing certificate is checked when a PDF signature or signing needs it)."""


def _cli(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``certkiosk ARGS`` in a fresh interpreter; its result and every module it had loaded."""
    code = (
        "import json, sys\n"
        "from kiosk.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('\\n' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=False)
    return result, set(json.loads(result.stderr.strip().splitlines()[-1]))


def _packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.fixture
def scanned(keyed_station: tuple[Station, PublicKeyInfo]) -> str:
    """A QR text signed by the station's own key, as a scanner types it."""
    station, info = keyed_station
    record = make_record(issue_date=dt.date(2025, 6, 1)).with_number(format_number(FILING, 2025, 3, 1))
    record = record.replace(evaluator=info.institution, issuer=info.institution)
    return sign(record, "liaoning-2020", station.keystore.load(info.kid, PASSPHRASE), info.kid).text


def test_help_loads_no_heavy_library_and_no_station(tmp_path: Path) -> None:
    result, loaded = _cli("--home", str(tmp_path / "home"), "--help")
    assert result.returncode == 0 and "verify" in result.stdout
    assert not _packages(loaded) & HEAVY, sorted(_packages(loaded) & HEAVY)
    assert not {m for m in loaded if m.startswith(("certgen.station", "verify", "cryptography"))}


def test_verify_text_loads_the_checks_but_no_file_machinery(
    keyed_station: tuple[Station, PublicKeyInfo], scanned: str
) -> None:
    station, _ = keyed_station
    result, loaded = _cli("--home", str(station.home.root), "verify", "--text", scanned)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("✓ 有效")
    assert "verify.check" in loaded  # the check really ran in this process
    assert not _packages(loaded) & HEAVY, sorted(_packages(loaded) & HEAVY)
    assert not loaded & FILE_MACHINERY, sorted(loaded & FILE_MACHINERY)
    assert not loaded & KEY_MACHINERY, sorted(loaded & KEY_MACHINERY)


UI_RUN = """
import asyncio, json, sys
from pathlib import Path
from textual import events
import kiosk.cli  # what certkiosk imports before `certkiosk ui`
import kiosk.app
from certgen.station.home import StationHome

seen = {}

class App(kiosk.app.StationApp):
    CSS_PATH = str(Path(kiosk.app.__file__).parent / "app.tcss")

    def post_message(self, message):
        if isinstance(message, events.Ready):  # posted once the first frame has been drawn
            seen.setdefault("first frame", sorted(sys.modules))
        return super().post_message(message)

app = App(StationHome(Path(sys.argv[1]), "--home"), "home")

async def main():
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        seen["home"] = [type(app.screen).__name__, sorted(sys.modules)]
        await pilot.press("f4")
        await pilot.pause()
        from kiosk.widgets.verdict import VerdictPanel

        app.screen.query_one("#scan").value = sys.argv[2]
        await pilot.press("enter")
        await pilot.pause()
        panel = app.screen.query_one("#verdict", VerdictPanel)
        seen["verify"] = [type(app.screen).__name__, sorted(sys.modules), sorted(panel.classes)]

asyncio.run(main())
print(json.dumps(seen))
"""


def test_the_ui_draws_and_verifies_a_scan_without_the_pdf_and_image_libraries(
    keyed_station: tuple[Station, PublicKeyInfo], scanned: str
) -> None:
    station, _ = keyed_station
    out = subprocess.run(
        [sys.executable, "-c", UI_RUN, str(station.home.root), scanned],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    seen = json.loads(out.stdout)
    heavy = HEAVY - {"rich", "textual"}
    first = set(seen["first frame"])  # the station (keys, cryptography, register) loads after it
    assert not {m for m in first if m.startswith(("certgen.station.station", "cryptography", "sqlite3"))}
    name, home_modules = seen["home"]
    assert name == "HomeScreen"
    assert not _packages(set(home_modules)) & heavy, sorted(_packages(set(home_modules)) & heavy)
    name, verify_modules, classes = seen["verify"]
    assert name == "VerifyScreen" and "valid" in classes  # the scan was verified, on the verify screen
    assert not _packages(set(verify_modules)) & heavy, sorted(_packages(set(verify_modules)) & heavy)
