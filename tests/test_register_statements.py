"""The register's cheaper statement paths (issue 18) keep what they guard: the chain's previous
hash is only remembered inside one write transaction, and rows digested from ``RETURNING *`` are
the rows ``register check`` recomputes."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from certgen.exceptions import DuplicateResult, RegisterError
from certgen.station.register import Register
from certgen.station.register_proof import all_row_digests
from tests.conftest import FILING, TEST_SIGNER, TEST_TRUSTED, make_record, resident_id


def _open(path: Path, actor: str) -> Register:
    register = Register(path, actor=actor)
    register.signer = TEST_SIGNER  # type: ignore[assignment]
    return register


def test_two_processes_appending_in_turn_keep_one_chain(tmp_path: Path) -> None:
    # another connection (another process) appends between this connection's transactions: the
    # previous hash is read again at each transaction, never taken from the last one
    path = tmp_path / "register.sqlite"
    first, second = _open(path, "first@station"), _open(path, "second@station")
    try:
        numbers = []
        for i in range(6):
            reg = (first, second)[i % 2]
            number = reg.allocate(make_record(id_number=resident_id(i)), FILING).number
            assert number is not None
            (second, first)[i % 2].log("print.job", {"number": number})  # the other one appends
            reg.complete(number, payload_sha256=f"{i:064x}", output_path=None, kid="00",
                         forms=[("paper", str(tmp_path / f"{number}.pdf"), f"{i:064x}")])  # fmt: skip
            numbers.append(number)
        for reg in (first, second):
            assert reg.check(TEST_TRUSTED) == []
            assert reg.audit_head()[0] == len(reg.audit_entries())
        seqs = [e.seq for e in first.audit_entries()]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        first.close()
        second.close()


def test_rows_digested_from_returning_are_the_rows_check_reads(tmp_path: Path) -> None:
    reg = _open(tmp_path / "register.sqlite", "tester@station")
    try:
        number = reg.allocate(make_record(), FILING).number
        assert number is not None
        reg.complete(number, payload_sha256="a" * 64, output_path="/out/x.pdf", kid="00",
                     forms=[("paper", "/out/x.pdf", "b" * 64)])  # fmt: skip
        recorded: dict[str, str | None] = {}
        for entry in reg.audit_entries():
            recorded.update(entry.detail.get("rows", {}))
        assert {k: v for k, v in all_row_digests(reg._db).items() if k in recorded} == recorded
        assert reg.check(TEST_TRUSTED) == []
        # an edit of the issued row is still found
        raw = sqlite3.connect(tmp_path / "register.sqlite")
        raw.execute("UPDATE certificates SET name = '李四' WHERE number = ?", (number,))
        raw.commit()
        raw.close()
        assert any(number in problem for problem in reg.check(TEST_TRUSTED))
    finally:
        reg.close()


def test_a_refused_allocation_leaves_the_counter_and_the_chain_as_they_were(tmp_path: Path) -> None:
    # the counter now moves on before the checks that refuse: the refusal rolls it back
    reg = _open(tmp_path / "register.sqlite", "tester@station")
    try:
        reg.allocate(make_record(), FILING)
        before = (reg.serials(), reg.audit_head())
        with pytest.raises(DuplicateResult):
            reg.allocate(make_record(), FILING)  # the same person, occupation and level again
        assert (reg.serials(), reg.audit_head()) == before
        second = reg.allocate(make_record(id_number=resident_id(7), issue_date=dt.date(2020, 6, 1)), FILING)
        assert second.number is not None and second.number.endswith("000002")
        reg._db.execute("UPDATE serials SET last_serial = 0")  # lowered below a used serial
        with pytest.raises(RegisterError, match="低于已用的最大序列码"):
            reg.allocate(make_record(id_number=resident_id(8)), FILING)
        assert reg.serials()[(FILING, 2020, 3)] == 0
    finally:
        reg.close()
