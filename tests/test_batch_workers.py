"""What a batch's worker processes report back: an error in a worker reaches the caller as
itself (its class and its message), not as "a process ended" (found by an adversarial review:
several certkiosk errors could not be pickled back from a worker)."""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from certgen.exceptions import (
    BatchInvalid,
    CertkioskError,
    DiskFull,
    DuplicateResult,
    FieldError,
    NumberFormatError,
    PrintSerialUsed,
    RecordError,
    RegisterError,
    RowProblem,
    WorkerDied,
)
from certgen.issuing import batch
from certgen.issuing.batch import BatchPlan, plan_batch, run_batch
from certgen.issuing.issuer import Issuer
from certgen.issuing.roster import read_roster
from tests.test_batch import roster_rows, write_csv


@pytest.mark.parametrize(
    "error",
    [
        DiskFull(Path("/srv/out/x.pdf")),
        PrintSerialUsed("LN0001", "Y000021012001203000002"),
        NumberFormatError("Y0001", ["长度应为22位"]),
        FieldError("name", "王", "过短"),
        RecordError([FieldError("name", "王", "过短")]),
        DuplicateResult("已有有效证书", "Y000021012001203000002"),
        BatchInvalid([RowProblem(3, "身份证号无效")]),
        RegisterError("登记库出错"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_kind_of_error_comes_back_from_a_worker_process_as_itself(error: CertkioskError) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error) and back.args == error.args
    assert {k: repr(v) for k, v in vars(back).items()} == {k: repr(v) for k, v in vars(error).items()}


def _plan(issuer: Issuer, tmp_path: Path, photo_dir: Path) -> BatchPlan:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(photo_dir / "p0.jpg", photos / "p0.jpg")
    roster = read_roster(write_csv(tmp_path / "r.csv", roster_rows(40), "utf-8"))
    with issuer.station.register() as reg:
        return plan_batch(issuer, reg, roster, photos)


def _in_workers_raising(real: Callable[..., Any], error: Exception) -> Callable[..., Any]:
    """``real`` in this process; in the worker processes forked from it, ``error`` instead."""
    parent = os.getpid()

    def call(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() != parent:
            raise error
        return real(*args, **kwargs)

    return call


def test_a_full_disk_in_a_worker_is_reported_as_a_full_disk(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(issuer, tmp_path, photo_dir)
    full = DiskFull(tmp_path / "out" / "x.pdf")
    monkeypatch.setattr(batch, "_issue_chunk", _in_workers_raising(batch._issue_chunk, full))
    with pytest.raises(DiskFull) as caught:
        run_batch(issuer, plan, workers=2)
    assert str(caught.value) == str(full) and caught.value.path == full.path


def test_a_worker_that_cannot_start_reports_why(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(issuer, tmp_path, photo_dir)
    locked = RegisterError("无法打开登记库：文件被锁定")
    monkeypatch.setattr(batch, "Register", _in_workers_raising(batch.Register, locked))
    with pytest.raises(RegisterError, match="无法打开登记库：文件被锁定"):
        run_batch(issuer, plan, workers=2)


def test_only_a_pool_whose_process_ended_becomes_worker_died() -> None:
    # a process that ended (SIGKILL, the OOM killer): one clear message that says a re-run continues
    from concurrent.futures.process import BrokenProcessPool

    with pytest.raises(WorkerDied, match="重新运行同一命令即可续发"), batch._worker_died_as_error():
        raise BrokenProcessPool("A process in the process pool was terminated abruptly")
    # a result that could not be read back is a bug: it stays itself, with its cause, not hidden as a death
    unreadable = BrokenProcessPool("A result has failed to un-serialize")
    unreadable.__cause__ = pickle.UnpicklingError("bad result")
    with pytest.raises(BrokenProcessPool) as caught, batch._worker_died_as_error():
        raise unreadable
    assert caught.value is unreadable and not isinstance(caught.value, WorkerDied)
