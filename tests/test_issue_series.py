"""Issuing one certificate after another with one register commit each.

The commit that issues a certificate also allocates the next one's number (a savepoint in the same
transaction). What a user relies on stays as it was with two commits: each certificate is issued
and published before the next one's outcome, a refusal of the next one never undoes the one
before, an error stops the series after every certificate before it, and a series stopped halfway
leaves no pending number and no file of a number that is not issued."""

from __future__ import annotations

from pathlib import Path

import pytest

from certgen.exceptions import DuplicateResult, RegisterError
from certgen.issuing.issuer import Issued, Issuer, IssueRequest
from certgen.station.register import Register
from tests.conftest import make_record, resident_id
from verify.files import verify_bytes


def _requests(*seeds: int) -> list[IssueRequest]:
    return [IssueRequest(make_record(id_number=resident_id(seed)), batch_id="b1", row_key=str(seed)) for seed in seeds]


def _states(reg: Register) -> dict[str, str]:
    return dict(reg._db.execute("SELECT number, status FROM certificates"))


def _files(issuer: Issuer) -> list[str]:
    assert issuer.out_dir is not None
    return sorted(p.name for p in (issuer.out_dir / "b1").iterdir())


def _valid(issuer: Issuer, path: Path) -> bool:
    return verify_bytes(path.read_bytes(), path.name, issuer.station.trust.load())[0].valid


def test_a_series_commits_once_per_certificate_each_with_the_next_number(issuer: Issuer) -> None:
    with issuer.station.register() as reg:
        statements: list[str] = []
        reg._db.set_trace_callback(statements.append)
        outcomes = list(issuer.issue_series(reg, _requests(1, 2, 3, 4, 5)))
        reg._db.set_trace_callback(None)
        assert all(isinstance(o, Issued) for o in outcomes)
        numbers = [str(o.record.number) for o in outcomes if isinstance(o, Issued)]
        commits, changed = [], []
        for sql in statements:
            if sql.startswith(("UPDATE certificates SET status = 'issued'", "INSERT INTO certificates")):
                changed.append("issue" if sql.startswith("UPDATE") else "allocate")
            elif sql == "COMMIT":
                commits.append(changed)
                changed = []
        # the first number alone, then each certificate issued with the next number allocated, the last alone
        issuing = [c for c in commits if c]
        assert issuing == [["allocate"]] + [["issue", "allocate"]] * 4 + [["issue"]]
        assert set(_states(reg).values()) == {"issued"} and reg.check() == []
    assert _files(issuer) == [f"{n}.pdf" for n in sorted(numbers)]
    assert all(_valid(issuer, o.path) for o in outcomes if isinstance(o, Issued))


def test_a_refused_next_number_leaves_the_certificate_before_it_issued(issuer: Issuer) -> None:
    # the third row is the first row's result again (issued meanwhile): its allocation is refused
    # inside the commit that issues the second, which still commits; the series goes on after it
    requests = _requests(1, 2, 1, 3)
    with issuer.station.register() as reg:
        outcomes = list(issuer.issue_series(reg, requests))
        first, second, again, fourth = outcomes
        assert isinstance(first, Issued) and isinstance(second, Issued) and isinstance(fourth, Issued)
        assert isinstance(again, DuplicateResult) and again.existing == str(first.record.number)
        assert _states(reg) == {str(o.record.number): "issued" for o in (first, second, fourth)}
        assert reg.check() == [], "the refused allocation's audit entries are undone with it"
    assert all(_valid(issuer, o.path) for o in (first, second, fourth))


def test_an_error_in_the_next_request_comes_after_the_certificate_before_it(issuer: Issuer) -> None:
    wrong = IssueRequest(make_record(id_number=resident_id(2), number="Y001121011001203000001"), batch_id="b1")
    with issuer.station.register() as reg:
        series = issuer.issue_series(reg, [*_requests(1), wrong, *_requests(3)])
        first = next(series)
        assert isinstance(first, Issued) and _valid(issuer, first.path)
        with pytest.raises(RegisterError, match="前13位不是本机构备案号"):
            next(series)
        assert _states(reg) == {str(first.record.number): "issued"}, "nothing after the error"
    assert _files(issuer) == [first.path.name]


def test_a_series_stopped_halfway_voids_the_number_allocated_with_the_last_commit(issuer: Issuer) -> None:
    with issuer.station.register() as reg:
        series = issuer.issue_series(reg, _requests(1, 2, 3))
        first = next(series)
        assert isinstance(first, Issued)
        series.close()  # the caller stops (an error of its own, Ctrl-C): the second number has no file yet
        states = _states(reg)
        assert states.pop(str(first.record.number)) == "issued"
        assert list(states.values()) == ["void"]
        assert reg.check() == []
    assert _files(issuer) == [first.path.name]


def test_a_series_stopped_with_a_certificate_written_voids_it_and_removes_its_file(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C while the next request is checked: the certificate before it is written, not issued
    real = Issuer._ready
    calls: list[None] = []

    def ready(self: Issuer, reg: Register, request: IssueRequest):  # type: ignore[no-untyped-def]
        calls.append(None)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, reg, request)

    monkeypatch.setattr(Issuer, "_ready", ready)
    with issuer.station.register() as reg:
        with pytest.raises(KeyboardInterrupt):
            list(issuer.issue_series(reg, _requests(1, 2)))
        assert list(_states(reg).values()) == ["void"]
        assert reg.check() == []
    assert _files(issuer) == []
