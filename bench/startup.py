"""Where a person waits: cold starts and the scan-to-verdict time, as ratios to baselines run alongside.

    python bench/startup.py [--runs 15] [--scans 30] [--root CHECKOUT]

- `certkiosk --help` and `certkiosk verify --text CODE` from a cold process, median of --runs,
  against `python -c pass` (targets: <= 120 ms and <= 150 ms);
- the station UI's first screen: a fresh process imports what `certkiosk ui` imports, builds the
  app, runs it headless (`run_test`) and notes when Textual posts Ready (the first frame has been
  drawn), in wall and CPU time since the process started; against a minimal Textual app (Header,
  Static, Footer) doing the same (target: <= 0.4 s); also when the home screen has read the station;
- in the UI, the time from the scanner's Enter key (a QR text in the verify screen's input) to the
  verdict panel showing the result, first scan and median of the others (target: <= 50 ms).

Every run is interleaved (pass, help, verify, ...), so a busy machine slows all of them alike.
--root measures another checkout of certkiosk (e.g. an older commit unpacked with `git archive`)
with this script, for before/after figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

FIRST_FRAME = """
import time
from textual import events

def timed(app_class):
    \"\"\"``app_class`` noting when Textual posts Ready: its first frame has been drawn.\"\"\"

    class Timed(app_class):
        drawn_at = None
        drawn_cpu = None

        def post_message(self, message):
            if isinstance(message, events.Ready) and self.drawn_at is None:
                self.drawn_at, self.drawn_cpu = time.time(), time.process_time()
            return super().post_message(message)

    return Timed
"""

UI_CHILD = (
    FIRST_FRAME
    + """
import asyncio, inspect, json, sys
start = float(sys.argv[1])
from pathlib import Path
import kiosk.cli  # what the certkiosk command imports before `certkiosk ui` builds the app
import kiosk.app
from certgen.station.home import StationHome
from kiosk.screens.home import HomeScreen

filled = []  # when the home screen had read the station (keys, trust data, register, backups)
refresh_info = HomeScreen.refresh_info

def timed_refresh_info(screen):
    refresh_info(screen)
    filled.append(time.time())

HomeScreen.refresh_info = timed_refresh_info

class App(timed(kiosk.app.StationApp)):
    CSS_PATH = str(Path(kiosk.app.__file__).parent / "app.tcss")

home = StationHome(Path(sys.argv[2]), "--home")
if "station" in inspect.signature(kiosk.app.StationApp.__init__).parameters:  # a checkout before issue 18
    from certgen.station import Station
    home = Station(home)
app = App(home, "home")  # as build_app does
text, scans = sys.argv[3], int(sys.argv[4])
drawn = []  # when the screen was next refreshed after the panel took a verdict

def time_verdicts():
    from kiosk.widgets.verdict import VerdictPanel  # after the first frame, as the verify screen imports it
    show = VerdictPanel.show

    def timed_show(panel, result):
        show(panel, result)
        panel.call_after_refresh(lambda: drawn.append(time.perf_counter()))

    VerdictPanel.show = timed_show

async def main():
    async with app.run_test(size=(120, 40)) as pilot:
        while not filled:
            await pilot.pause()
        settled = filled[0] - start
        time_verdicts()
        await pilot.press("f4")
        await pilot.pause()
        field = app.screen.query_one("#scan")
        latencies = []
        for i in range(scans):
            field.value = text
            t0 = time.perf_counter()
            await pilot.press("enter")  # Pilot then waits for idle (>= 40 ms): not counted
            while len(drawn) <= i:
                await pilot.pause()
            assert "valid" in app.screen.query_one("#verdict").classes
            latencies.append(drawn[i] - t0)
        print(json.dumps({
            "painted": app.drawn_at - start, "cpu": app.drawn_cpu, "settled": settled, "latencies": latencies
        }))

asyncio.run(main())
"""
)

MINIMAL_UI = (
    FIRST_FRAME
    + """
import asyncio, json, sys
start = float(sys.argv[1])
from textual.app import App
from textual.widgets import Footer, Header, Static

class Minimal(timed(App)):
    def compose(self):
        yield Header()
        yield Static("hello")
        yield Footer()

async def main():
    app = Minimal()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        print(json.dumps({"painted": app.drawn_at - start, "cpu": app.drawn_cpu}))

asyncio.run(main())
"""
)


def make_station(folder: Path, root: Path) -> str:
    """A station home with its own key, and a QR text it signed (as a scanner types it)."""
    code = """
import datetime as dt, sys
from pathlib import Path
from certgen.number import format_number
from certgen.payload import sign
from certgen.station import Station
from certgen.station.home import StationHome
from tests.conftest import FILING, INSTITUTION, PASSPHRASE, make_record
station = Station(StationHome(Path(sys.argv[1]), "--home").ensure())
info, _ = station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
record = make_record(issue_date=dt.date(2025, 6, 1)).with_number(format_number(FILING, 2025, 3, 1))
record = record.replace(evaluator=INSTITUTION, issuer=INSTITUTION)
print(sign(record, "liaoning-2020", station.keystore.load(info.kid, PASSPHRASE), info.kid).text)
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, cwd=root, check=True, env=ENV
    )
    return out.stdout.strip()


ENV = dict(os.environ)
"""Children cache bytecode (in a temporary folder), as an installed certkiosk does: compiling every
module from source on each start (PYTHONDONTWRITEBYTECODE) is not what a station pays."""


def wall(cmd: list[str], root: Path) -> tuple[float, float]:
    """Wall time of one cold run, and the CPU time it used (less disturbed by a busy machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=root, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def child_json(code: str, root: Path, *args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code, str(time.time()), *args], capture_output=True, text=True, cwd=root, check=True,
        env=ENV,
    )  # fmt: skip
    data: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="cold starts of each command")
    parser.add_argument("--scans", type=int, default=30, help="scans verified in the UI")
    parser.add_argument("--root", type=Path, default=ROOT, help="the certkiosk checkout to measure")
    args = parser.parse_args()
    root = args.root.resolve()
    load = os.getloadavg()[0]
    print(f"machine: {multiprocessing.cpu_count()} cores, load {load:.1f}, Python {sys.version.split()[0]}; {root}")
    with tempfile.TemporaryDirectory() as tmp:
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        ENV["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        home = Path(tmp) / "home"
        text = make_station(home, root)
        env_home = ["--home", str(home)]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "certkiosk --help": [sys.executable, "-m", "kiosk", *env_home, "--help"],
            "certkiosk verify --text": [sys.executable, "-m", "kiosk", *env_home, "verify", "--text", text],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():  # warm the file cache and the bytecode
            wall(cmd, root)
        for _ in range(args.runs):
            for name, cmd in commands.items():
                elapsed, used = wall(cmd, root)
                times[name].append(elapsed)
                cpu[name].append(used)
        base, base_cpu = statistics.median(times["python -c pass"]), statistics.median(cpu["python -c pass"])
        for name, target in (("python -c pass", None), ("certkiosk --help", 0.120), ("certkiosk verify --text", 0.150)):
            median, median_cpu = statistics.median(times[name]), statistics.median(cpu[name])
            goal = f" (target <= {ms(target)})" if target else ""
            print(
                f"{name:<24} cold, median of {args.runs}: {ms(median)} wall, {median / base:.2f}x python -c pass; "
                f"{ms(median_cpu)} CPU, {median_cpu / base_cpu:.2f}x{goal}"
            )

        ui: list[float] = []
        minimal: list[float] = []
        ui_cpu: list[float] = []
        minimal_cpu: list[float] = []
        settled: list[float] = []
        latencies: list[float] = []
        firsts: list[float] = []
        for _ in range(max(3, args.runs // 3)):
            base_data = child_json(MINIMAL_UI, root)
            minimal.append(float(base_data["painted"]))  # type: ignore[arg-type]
            minimal_cpu.append(float(base_data["cpu"]))  # type: ignore[arg-type]
            data = child_json(UI_CHILD, root, str(home), text, str(args.scans))
            ui.append(float(data["painted"]))  # type: ignore[arg-type]
            ui_cpu.append(float(data["cpu"]))  # type: ignore[arg-type]
            settled.append(float(data["settled"]))  # type: ignore[arg-type]
            lat = list(data["latencies"])  # type: ignore[call-overload]
            firsts.append(lat[0])
            latencies.extend(lat[1:])
        ui_m, min_m = statistics.median(ui), statistics.median(minimal)
        ui_c, min_c = statistics.median(ui_cpu), statistics.median(minimal_cpu)
        print(
            f"station UI, first frame of the home screen: {ui_m:.2f} s wall median of {len(ui)}, a minimal Textual "
            f"app {min_m:.2f} s: {ui_m / min_m:.2f}x; CPU {ui_c:.2f} s against {min_c:.2f} s: {ui_c / min_c:.2f}x "
            f"(target <= 0.4 s); station summary filled in at {statistics.median(settled):.2f} s"
        )
        print(
            f"UI scan to verdict drawn: first scan {ms(statistics.median(firsts))}, "
            f"then {ms(statistics.median(latencies))} median, {ms(max(latencies))} worst of {len(latencies)} "
            "(target <= 50 ms)"
        )
    print(f"measured {dt.date.today().isoformat()}; load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
