"""`certkiosk verify --scheduler`: a real Dask scheduler and real workers on 127.0.0.1.

The module starts `dask scheduler` and two `dask worker` processes (no nanny, one thread each);
tests that need more workers start and kill their own. Every wait is on a condition (a file
appearing, a worker count), never on a fixed sleep.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from certgen.exceptions import ClusterError, VersionMismatch
from certgen.station import Station
from certgen.trust import PublicKeyInfo
from kiosk.cli import cli
from tests.conftest import PASSPHRASE, make_record
from tests.test_verify import TODAY, _archive, png, qr_image, signed_text, trust
from verify.archive import ArchiveRun, discover, run_archive
from verify.cluster import CRASHED, DaskExecutor, parse_scheduler
from verify.executors import LocalExecutor
from verify.files import DEFAULT_LIMITS
from verify.report import to_csv, to_json
from verify.units import Unit, make_context, make_units

distributed = pytest.importorskip("distributed", reason="the cluster extra: pip install 'certkiosk[cluster]'")

ROOT = Path(__file__).resolve().parent.parent
WAIT = 60.0  # an upper bound for processes to come up on a busy machine, not a timing assumption


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*extra.pop("PREPEND", "").split(os.pathsep), str(ROOT)]).strip(os.pathsep)
    env.update(extra)
    return env


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


class Cluster:
    """A scheduler process and worker processes started by the test."""

    def __init__(self, folder: Path, prepend: str = "", **env: str) -> None:
        self.folder = folder
        file = folder / "scheduler.json"
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(file)],
            cwd=folder, env=_env(PREPEND=prepend, **env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _until(lambda: file.exists() and file.stat().st_size > 0, "the scheduler file")
        _until(lambda: "address" in file.read_text(), "the scheduler's address")
        self.address: str = json.loads(file.read_text())["address"]
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def start_worker(self, name: str, prepend: str = "") -> subprocess.Popen[bytes]:
        worker = subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1", "--no-nanny",
             "--no-dashboard", "--host", "127.0.0.1", "--name", name],
            cwd=self.folder, env=_env(PREPEND=prepend), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.workers[name] = worker
        return worker

    def names(self, client: distributed.Client) -> dict[str, str]:
        """Worker name -> address, as the scheduler sees them now."""
        return {str(w["name"]): a for a, w in client.scheduler_info()["workers"].items()}

    def stop_worker(self, name: str, client: distributed.Client) -> None:
        worker = self.workers.pop(name)
        worker.kill()
        worker.wait()
        _until(lambda: name not in self.names(client), f"the scheduler to drop worker {name}")

    def close(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.start_worker("w1")
        c.start_worker("w2")
        with distributed.Client(c.address, timeout=WAIT) as client:
            client.wait_for_workers(2, timeout=WAIT)
        yield c
    finally:
        c.close()


def _bigger_archive(folder: Path) -> Path:
    """The archive of test_verify (duplicates, copies, a broken ZIP member) plus more plain scans."""
    _archive(folder)
    for i in range(10, 16):
        (folder / f"extra-{i}.png").write_bytes(png(qr_image(signed_text(_claims(i)))))
    return folder


def _claims(i: int) -> dict[int, object]:
    from tests.test_verify import base_claims

    return base_claims(number=f"Y000021012001203{i:06d}")


def _same(a: ArchiveRun, b: ArchiveRun) -> None:
    assert [r.summary() for r in a.results] == [r.summary() for r in b.results]
    assert (a.files, list(a.skipped)) == (b.files, list(b.skipped))
    assert to_json(a) == to_json(b) and to_csv(a) == to_csv(b)


def test_the_cluster_gives_the_same_results_and_report_as_a_local_run(cluster: Cluster, tmp_path: Path) -> None:
    folder = _bigger_archive(tmp_path / "archive")
    local = run_archive([folder], trust(), state_path=tmp_path / "local.sqlite", workers=1, today=TODAY)
    seen: list[tuple[int, int, int]] = []
    with DaskExecutor(cluster.address, unit_size=2) as executor:
        remote = run_archive(
            [folder], trust(), state_path=tmp_path / "remote.sqlite", executor=executor, today=TODAY,
            progress=lambda done, total: seen.append((done, total, executor.workers)),
        )  # fmt: skip
    _same(local, remote)
    assert remote.files == 16 and remote.totals() == {"valid": 12, "invalid": 3, "unreadable": 1}
    assert seen[-1] == (16, 16, 2)  # the progress bar's figures: done, total and the workers
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)


def test_a_worker_killed_mid_run_loses_nothing_and_counts_nothing_twice(cluster: Cluster, tmp_path: Path) -> None:
    folder = _bigger_archive(tmp_path / "archive")
    local = run_archive([folder], trust(), state_path=tmp_path / "local.sqlite", workers=1, today=TODAY)
    victim = cluster.start_worker("victim")
    killed: list[int] = []
    with DaskExecutor(cluster.address, unit_size=1, in_flight=3) as executor:
        client = executor.client
        client.wait_for_workers(3, timeout=WAIT)

        def kill_while_it_works(done: int, total: int) -> None:
            assert done <= total  # nothing counted twice, even after the kill
            if killed or done == 0:
                return
            address = cluster.names(client).get("victim")
            if address and client.processing(workers=[address])[address]:  # it holds units right now
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait()
                killed.append(done)

        run = run_archive(
            [folder], trust(), state_path=tmp_path / "remote.sqlite", executor=executor, today=TODAY,
            progress=kill_while_it_works,
        )  # fmt: skip
        _until(lambda: "victim" not in cluster.names(client), "the scheduler to drop the killed worker")
    cluster.workers.pop("victim")
    assert killed and killed[0] < run.files  # killed while work was still in flight on it
    assert Counter(r.source for r in run.results) == Counter(r.source for r in local.results)
    _same(local, run)


@pytest.mark.parametrize("where", ["local:2", "tcp"])
def test_an_interrupted_client_resumes_from_its_state(where: str, cluster: Cluster, tmp_path: Path) -> None:
    """``local:2``: workers read this station's state file; ``tcp``: they are told which contents it
    holds facts for, skip decoding those, and the client reads the facts."""
    folder = _bigger_archive(tmp_path / "archive")
    state = tmp_path / "state.sqlite"

    def stop_after_some(done: int, total: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    with DaskExecutor(cluster.address if where == "tcp" else where, unit_size=2) as executor:
        with pytest.raises(KeyboardInterrupt):
            run_archive([folder], trust(), state_path=state, executor=executor, today=TODAY, progress=stop_after_some)
        seen: list[int] = []
        run = run_archive(
            [folder], trust(), state_path=state, executor=executor, today=TODAY, progress=lambda d, t: seen.append(d)
        )
    assert run.previous_interrupted and run.reused >= 3  # what was decoded before the interruption is reused
    assert seen[-1] == 16
    local = run_archive([folder], trust(), state_path=tmp_path / "local.sqlite", workers=1, today=TODAY)
    _same(local, dataclasses.replace(run, reused=0, previous_interrupted=False))  # the rest is the same


def test_an_unreachable_scheduler_is_named(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(ClusterError) as caught, DaskExecutor(address, timeout=2):
        pass
    assert address in str(caught.value) and "无法连接调度器" in str(caught.value)


def _other_version(folder: Path) -> tuple[Path, str]:
    """Another installed certkiosk version: what a worker reads as the version number."""
    info = folder / "certkiosk-9.9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: certkiosk\nVersion: 9.9.9\n")
    return folder, "9.9.9"


def _other_code(folder: Path) -> tuple[Path, str]:
    """Another checkout with the same version number and one changed module."""
    for package in ("certgen", "verify"):
        shutil.copytree(ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    with (folder / "verify" / "files.py").open("a") as changed:
        changed.write("\n# a local change\n")
    return folder, "代码"


@pytest.mark.parametrize("install", [_other_version, _other_code], ids=["version-number", "same-number-other-code"])
def test_a_worker_running_other_certkiosk_code_is_refused(
    cluster: Cluster, tmp_path: Path, install: Callable[[Path], tuple[Path, str]]
) -> None:
    prepend, shown = install(tmp_path / "other-install")
    cluster.start_worker("other", prepend=str(prepend))
    with distributed.Client(cluster.address, timeout=WAIT) as client:
        try:
            _until(lambda: "other" in cluster.names(client), "the mismatched worker")
            with pytest.raises(VersionMismatch) as caught, DaskExecutor(cluster.address):
                pass
            message = str(caught.value)
            assert shown in message and cluster.names(client)["other"] in message, message
        finally:
            cluster.stop_worker("other", client)


def test_a_scheduler_running_other_certkiosk_code_is_refused(tmp_path: Path) -> None:
    other, _ = _other_code(tmp_path / "other-install")
    elsewhere = Cluster(tmp_path, prepend=str(other))
    try:
        with pytest.raises(VersionMismatch) as caught, DaskExecutor(elsewhere.address):
            pass
        assert f"调度器 {elsewhere.address}" in str(caught.value) and "代码" in str(caught.value)
    finally:
        elsewhere.close()


def test_scheduler_addresses() -> None:
    assert parse_scheduler("local:3").workers == 3
    assert parse_scheduler("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    for bad in ("local:0", "local:x", "10.0.0.5:8786"):
        with pytest.raises(ClusterError, match="--scheduler"):
            parse_scheduler(bad)


# --- the command -------------------------------------------------------------------------------
@pytest.fixture
def issued_folder(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path) -> tuple[Station, Path]:
    from certgen.issuing.issuer import Issuer

    station, _ = keyed_station
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        for level in (3, 4):
            issuer.issue(reg, make_record(level=level))
    return station, tmp_path / "out"


def test_cli_on_a_cluster_writes_the_same_report(
    cluster: Cluster, issued_folder: tuple[Station, Path], tmp_path: Path
) -> None:
    station, folder = issued_folder
    home = ["--home", str(station.home.root)]
    runner = CliRunner()
    local = runner.invoke(cli, [*home, "verify", str(folder), "--report", str(tmp_path / "local.json")])
    remote = runner.invoke(
        cli, [*home, "verify", str(folder), "--force", "--scheduler", cluster.address, "--report",
              str(tmp_path / "remote.json")],
    )  # fmt: skip
    assert local.exit_code == remote.exit_code == 0, remote.output
    assert (tmp_path / "local.json").read_bytes() == (tmp_path / "remote.json").read_bytes()
    both = runner.invoke(cli, [*home, "verify", str(folder), "--scheduler", "local:1", "--workers", "2"])
    assert both.exit_code == 2 and "local:N" in both.output


def test_cli_without_the_extra_says_what_to_install(issued_folder: tuple[Station, Path], tmp_path: Path) -> None:
    station, folder = issued_folder
    blocker = tmp_path / "no-dask"
    (blocker / "distributed").mkdir(parents=True)
    (blocker / "distributed" / "__init__.py").write_text("raise ImportError('dask is not installed here')\n")
    command = [sys.executable, "-m", "kiosk", "--home", str(station.home.root), "verify", str(folder)]
    plain = subprocess.run(command, cwd=ROOT, env=_env(PREPEND=str(blocker)), capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr  # verify works without Dask
    asked = subprocess.run(
        [*command, "--scheduler", "local:2"], cwd=ROOT, env=_env(PREPEND=str(blocker)), capture_output=True, text=True
    )
    assert asked.returncode == 2 and "pip install 'certkiosk[cluster]'" in asked.stderr
    assert "Traceback" not in asked.stderr


@pytest.mark.parametrize("kind", ["local-pool", "dask"])
def test_work_in_flight_is_bounded_whatever_the_archive_size(kind: str, cluster: Cluster, tmp_path: Path) -> None:
    items = discover([_bigger_archive(tmp_path / "archive")]).items
    pulled = 0

    def units() -> Iterator[Unit]:
        nonlocal pulled
        for unit in make_units(list(enumerate(items)), 1):
            pulled += 1
            yield unit

    executor: LocalExecutor | DaskExecutor = DaskExecutor(cluster.address, in_flight=1)
    if kind == "local-pool":
        executor = LocalExecutor(2, unit_size=1, in_flight=1)
    returned: list[int] = []
    with executor:
        for result in executor.run(units(), make_context(DEFAULT_LIMITS, "zxing", None, None)):
            returned.append(result.unit.id)
            assert pulled - len(returned) + 1 <= 2  # two workers, one unit each: never more in flight
    assert sorted(returned) == list(range(len(items)))


def test_a_unit_whose_worker_dies_is_split_and_every_file_still_examined(tmp_path: Path) -> None:
    """With Dask told to give up on a task after one lost worker, a killed worker's unit comes back
    as KilledWorker: its files are sent again one by one, and none is reported as crashing.

    The kill races the unit it aims at: a worker seen busy may finish its unit before the signal
    lands, and then nothing is lost. Such a run proves nothing about splitting and is run again
    (at most three times); every run must still return every file exactly once.
    """
    items = discover([_bigger_archive(tmp_path / "archive")]).items
    units = [Unit(i, tuple(range(i, min(i + 4, len(items)))), tuple(items[i : i + 4])) for i in range(0, 16, 4)]
    split = False
    for attempt in range(3):
        (tmp_path / f"run{attempt}").mkdir()
        strict = Cluster(tmp_path / f"run{attempt}", DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
        try:
            strict.start_worker("a")
            strict.start_worker("b")
            returned: list[int] = []
            killed: list[str] = []
            sizes: list[int] = []
            with DaskExecutor(strict.address, in_flight=1) as executor:
                client = executor.client
                client.wait_for_workers(2, timeout=WAIT)
                for result in executor.run(iter(units), make_context(DEFAULT_LIMITS, "zxing", None, None)):
                    returned += result.unit.positions
                    sizes.append(len(result.unit.items))
                    assert all(CRASHED not in (e.error or "") for e in result.examined)
                    if not killed:
                        busy = [n for n, a in strict.names(client).items() if client.processing(workers=[a])[a]]
                        if busy:
                            os.kill(strict.workers[busy[0]].pid, signal.SIGKILL)
                            strict.workers.pop(busy[0]).wait()
                            killed.append(busy[0])
            assert killed, "no worker was busy to be killed"
            assert sorted(returned) == list(range(16))  # every file once, whether the kill landed or not
            if sizes.count(1):
                assert sizes.count(1) == 4 and sizes.count(4) == 3  # the killed worker's unit, file by file
                split = True
                break
        finally:
            strict.close()
    assert split, "in three runs the kill never caught a worker in the middle of a unit"
