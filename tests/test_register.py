"""The issuance register: allocation, crash safety, revocation and the audit chain."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from certgen.exceptions import DuplicateNumber, RegisterError
from certgen.station import register as register_module
from certgen.station.register import Register
from tests.conftest import FILING, TEST_SIGNER, TEST_TRUSTED, make_record, resident_id

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def reg(tmp_path: Path) -> Register:
    register = Register(tmp_path / "register.sqlite", actor="tester@station")
    register.signer = TEST_SIGNER  # type: ignore[assignment]
    yield register  # type: ignore[misc]
    register.close()


def test_serials_run_per_institution_year_and_level(reg: Register) -> None:
    numbers = [
        reg.allocate(make_record(id_number=resident_id(i), level=lv, issue_date=dt.date(y, 5, 1)), FILING).number
        for i, (y, lv) in enumerate([(2020, 3), (2020, 3), (2020, 5), (2021, 3), (2020, 3)])
    ]
    assert numbers == [
        "Y000021012001203000001",
        "Y000021012001203000002",
        "Y000021012001205000001",
        "Y000021012001213000001",
        "Y000021012001203000003",
    ]
    other = reg.allocate(make_record(), "Y001121011001").number
    assert other == "Y001121011001203000001"


def test_pending_numbers_become_void_never_reused(reg: Register) -> None:
    first = reg.allocate(make_record(), FILING).number
    assert reg.void_pending() == [first]
    second = reg.allocate(make_record(), FILING).number
    assert second != first and second.endswith("000002")
    got = reg.get(first)
    assert got is not None and got.status == "void"
    with pytest.raises(RegisterError, match="当前状态为已作废"):
        reg.complete(first, payload_sha256="0" * 64, output_path=None, kid="00")


def test_every_commit_is_fsynced_except_settling_published_files(reg: Register, tmp_path: Path) -> None:
    # settling only forgets publishing entries a power cut would bring back for recovery to settle
    # again; every other commit (allocate, complete with its forms, void) runs with synchronous=FULL
    statements: list[str] = []
    reg._db.set_trace_callback(statements.append)
    number = str(reg.allocate(make_record(), FILING, output_dir=tmp_path).number)
    form = ("paper", str(tmp_path / f"{number}.pdf"), "1" * 64)
    reg.complete(number, payload_sha256="0" * 64, output_path=form[1], kid="00", forms=[form])
    reg.settle_published([number])
    reg.void_pending()  # changes nothing: committed at FULL again
    mode, written, commits = "FULL", set(), []
    for sql in statements:
        words = sql.split()
        if sql.startswith("PRAGMA synchronous="):
            mode = sql.split("=")[1]
        elif words[0] in ("INSERT", "UPDATE", "DELETE"):
            written.add(words[1] if words[0] == "UPDATE" else words[2])
        elif sql == "COMMIT":
            commits.append((sorted(written), mode))
            written = set()
    assert [m for tables, m in commits if "certificates" in tables] == ["FULL", "FULL"]  # allocate, complete
    assert (["unpublished"], "NORMAL") in commits
    assert [m for tables, m in commits if tables != ["unpublished"]] == ["FULL"] * (len(commits) - 1)
    assert reg._db.execute("PRAGMA synchronous").fetchone() == (2,)
    assert reg.form_files(number) == [form]


def test_the_end_of_a_run_settles_only_issued_numbers_with_every_file_in_place(
    reg: Register, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from certgen.issuing import recovery

    monkeypatch.setattr(recovery, "SETTLE_PAGE", 2)  # entries read a page at a time: several pages here
    out = tmp_path / "out"
    out.mkdir()
    records = [make_record(id_number=resident_id(i)) for i in range(6)]
    numbers = [str(reg.allocate(record, FILING, output_dir=out).number) for record in records]
    paper, electronic, bare, one_missing, pending, gone = numbers

    def issue(number: str, forms: list[str]) -> None:
        files = [(form, str(out / f"{number}{'-e' if form == 'electronic' else ''}.pdf"), "1" * 64) for form in forms]
        for _, path, _ in files:
            Path(path).write_bytes(b"%PDF")
        reg.complete(number, payload_sha256="0" * 64, output_path=files[0][1] if files else None, kid="00", forms=files)

    issue(paper, ["paper"])
    issue(electronic, ["electronic"])  # no <number>.pdf: its form's file is what counts
    issue(bare, [])  # no forms recorded (an older register): the entry's own path
    (out / f"{bare}.pdf").write_bytes(b"%PDF")
    issue(one_missing, ["paper", "electronic"])
    (out / f"{one_missing}-e.pdf").unlink()
    (out / f"{pending}.pdf").write_bytes(b"%PDF")  # a file, but the number is not issued
    issue(gone, ["paper"])
    (out / f"{gone}.pdf").unlink()
    recovery.settle(reg)
    assert [n for n, _ in reg.unpublished()] == [one_missing, pending, gone]


def test_a_change_that_fails_inside_a_group_is_undone_alone_audit_entries_included(reg: Register) -> None:
    statements: list[str] = []
    reg._db.set_trace_callback(statements.append)
    with reg.group():
        first = str(reg.allocate(make_record(id_number=resident_id(1)), FILING).number)
        with pytest.raises(RuntimeError), reg._transaction() as db:  # a change that appends to the chain, then fails
            reg._audit(db, "test.change", {"number": first})
            raise RuntimeError("refused")
        second = str(reg.allocate(make_record(id_number=resident_id(2)), FILING).number)
    reg._db.set_trace_callback(None)
    assert statements.count("COMMIT") == 1
    assert [n for (n,) in reg._db.execute("SELECT number FROM certificates ORDER BY number")] == [first, second]
    assert not reg._db.execute("SELECT 1 FROM audit WHERE action = 'test.change'").fetchall()
    assert reg.check() == [], "the chain's recorded head is the last entry kept, not the undone one"
    with pytest.raises(RuntimeError), reg.group():  # an error leaving the group undoes all of it
        reg.allocate(make_record(id_number=resident_id(3)), FILING)
        raise RuntimeError("stop")
    assert reg._db.execute("SELECT count(*) FROM certificates").fetchone() == (2,) and reg.check() == []


def test_a_supplied_number_is_checked_against_the_register(reg: Register) -> None:
    supplied = make_record(number="Y000021012001203000007")
    reg.record_supplied(supplied)
    with pytest.raises(DuplicateNumber, match="Y000021012001203000007 已在登记库中"):
        reg.record_supplied(supplied)
    # allocation continues after the highest supplied serial
    assert reg.allocate(make_record(id_number=resident_id(1)), FILING).number == "Y000021012001203000008"


def test_revocation_and_search(reg: Register) -> None:
    a = reg.allocate(make_record(name="李四"), FILING, batch_id="B1").number
    b = reg.allocate(make_record(name="王五", id_number=resident_id(5)), FILING, batch_id="B1").number
    for n in (a, b):
        assert n is not None
        reg.complete(n, payload_sha256="ab" * 32, output_path=None, kid="00" * 8)
    assert [c.number for c in reg.find("李四")] == [a]
    assert [c.number for c in reg.find("11010519491231002X")] == [a]
    rev = reg.revoke("batch", "B1", "考场违纪，整批撤销")
    assert rev.numbers == (a, b)
    with pytest.raises(RegisterError, match="已被吊销"):
        reg.revoke("batch", "B1", "again")
    with pytest.raises(RegisterError, match="未在本站发证"):
        reg.revoke("certificate", "Y000021012001203999999", "x")
    with pytest.raises(RegisterError, match="必须填写原因"):
        reg.revoke("certificate", str(a), " ")
    assert reg.check(TEST_TRUSTED) == []


def _tamper(path: Path, *sql: str) -> None:
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    for statement in sql:
        db.execute(statement)
    db.commit()
    db.close()


def _issued_register(path: Path) -> None:
    with Register(path, actor="tester@station") as reg:
        reg.signer = TEST_SIGNER  # type: ignore[assignment]
        for i in range(3):
            n = reg.allocate(make_record(id_number=resident_id(i)), FILING).number
            assert n is not None
            reg.complete(n, payload_sha256="cd" * 32, output_path="x.pdf", kid="00" * 8)
        assert reg.check(TEST_TRUSTED) == []


def test_the_audit_log_refuses_updates(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    _issued_register(path)
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET actor = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 1")


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (["UPDATE audit SET detail = replace(detail, 'cdcd', 'eeee') WHERE seq = 2"], "第2条内容与其哈希不符"),
        (["DELETE FROM audit WHERE seq = 4"], "第4条缺失"),
        (["DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)"], "链头不符"),
        (["UPDATE certificates SET payload_sha256 = 'ff' WHERE serial = 2"], "二维码内容哈希与审计记录不符"),
        (["DELETE FROM certificates WHERE serial = 3"], "登记库中没有这条记录"),
        (["UPDATE certificates SET status = 'pending' WHERE serial = 1"], "状态被改回未完成"),
    ],
)
def test_register_check_detects_tampering(tmp_path: Path, statements: list[str], expected: str) -> None:
    path = tmp_path / "r.sqlite"
    _issued_register(path)
    _tamper(path, *statements)
    with Register(path) as reg:
        problems = reg.check(TEST_TRUSTED)
    assert any(expected in p for p in problems), problems


def test_sigkill_while_allocating_never_duplicates_or_loses_a_number(tmp_path: Path) -> None:
    """Kill a real process at arbitrary points of its allocate/complete loop, many times."""
    path = tmp_path / "register.sqlite"
    rng = random.Random(20201115)
    allocated: set[str] = set()
    completed: set[str] = set()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for _ in range(30):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.allocate_loop", str(path)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env,
        )  # fmt: skip
        assert child.stdout is not None
        for _ in range(rng.randint(1, 40)):  # let it run a random number of steps, then kill it
            step, number = child.stdout.readline().split()
            (allocated if step == "A" else completed).add(number)
        os.kill(child.pid, signal.SIGKILL)
        for line in child.stdout:  # what it managed to print before dying
            step, number = line.split()
            (allocated if step == "A" else completed).add(number)
        child.wait()
        assert child.returncode == -signal.SIGKILL
    with Register(path) as reg:
        reg.void_pending()
        rows = reg._db.execute("SELECT number, year, level, serial, status FROM certificates").fetchall()
        problems = reg.check(TEST_TRUSTED)
    numbers = [r[0] for r in rows]
    assert len(numbers) == len(set(numbers))
    assert allocated <= set(numbers), "every number a process was given is in the register"
    status = {r[0]: r[4] for r in rows}
    assert all(status[n] == "issued" for n in completed)
    assert {r[4] for r in rows} <= {"issued", "void"}
    serials: dict[tuple[int, int], list[int]] = defaultdict(list)
    for _, year, level, serial, _ in rows:
        serials[(year, level)].append(serial)
    for key, found in serials.items():
        assert sorted(found) == list(range(1, len(found) + 1)), f"gap or repeat in {key}"
    assert problems == []
    assert len(completed) > 100


class _Holder:
    """Another process holding the register's write lock (BEGIN IMMEDIATE) until told to commit."""

    def __init__(self, path: Path) -> None:
        code = (
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE'); print('held', flush=True)\n"
            "sys.stdin.readline(); db.execute('COMMIT'); print('released', flush=True)\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "held\n"

    def release(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "released\n"
        assert self.proc.wait(timeout=60) == 0


def test_a_change_waits_for_another_process_s_write_in_short_steps(
    reg: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process holds the write lock, the next try comes 50 us later (SQLite's own busy
    handler slept 1 ms, then 2, 5 ...): the change goes through as soon as the lock is free."""
    reg.allocate(make_record(), FILING)  # the register exists, in WAL mode
    holder = _Holder(reg.path)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            holder.release()

    monkeypatch.setattr(register_module, "_pause", pause)
    second = reg.allocate(make_record(id_number=resident_id(2)), FILING)
    assert second.number.endswith("000002")
    assert pauses == [50e-6, 100e-6, 200e-6]
    assert reg._db.execute("PRAGMA busy_timeout").fetchone() == (30_000,)  # the connection's own, restored
    reg._db.execute("PRAGMA busy_timeout = 12345")
    reg.allocate(make_record(id_number=resident_id(3)), FILING)
    assert reg._db.execute("PRAGMA busy_timeout").fetchone() == (12_345,)  # whatever it was


def test_a_change_gives_up_after_the_timeout_naming_the_register(
    reg: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg.allocate(make_record(), FILING)
    holder = _Holder(reg.path)
    pauses: list[float] = []
    now = iter(range(1_000_000))
    monkeypatch.setattr(register_module, "_pause", pauses.append)
    monkeypatch.setattr(register_module, "_clock", lambda: float(next(now)))  # one second a look
    try:
        with pytest.raises(RegisterError, match=f"登记库 {reg.path} 操作失败：database is locked"):
            reg.allocate(make_record(id_number=resident_id(2)), FILING)
    finally:
        holder.release()
    assert pauses[:4] == [50e-6, 100e-6, 200e-6, 400e-6]  # doubling from 50 us, at most 1 ms while the
    assert 25 <= len(pauses) <= 30 and max(pauses) == 0.05  # wait is short, then up to 50 ms apart
    assert reg.allocate(make_record(id_number=resident_id(3)), FILING).number.endswith("000002")
