"""An exception that arrives just as the commit that issues (or records a reprint) returns.

Python runs a signal handler between bytecodes: a SIGTERM (``Interrupted``) or Ctrl-C during
SQLite's COMMIT is raised right after the commit succeeded. The certificate is then issued, and
its files must stay for recovery to publish; deleting them as for a failed issue would leave an
issued number with no PDF anywhere (found by an adversarial review with real SIGTERMs)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from certgen.exceptions import Interrupted
from certgen.issuing.issuer import Issuer
from certgen.station.register import Register
from tests.conftest import make_record, resident_id
from tests.test_print_serial import _national
from verify.files import verify_bytes


def _then_interrupted(real: Any) -> Any:
    def call(self: Register, *args: Any, **kwargs: Any) -> Any:
        real(self, *args, **kwargs)
        raise Interrupted("收到信号 SIGTERM")  # what the SIGTERM handler raises once COMMIT has returned

    return call


def test_an_interrupt_as_the_issuing_commit_returns_keeps_the_certificate_s_files(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with issuer.station.register() as reg:
        monkeypatch.setattr(Register, "complete", _then_interrupted(Register.complete))
        with pytest.raises(Interrupted):
            issuer.issue(reg, make_record())
        monkeypatch.undo()
    with sqlite3.connect(issuer.station.home.register_path) as db:
        ((number, status, output),) = db.execute("SELECT number, status, output_path FROM certificates").fetchall()
    assert status == "issued"
    final = Path(output)
    assert any(p.name.startswith(f".{number}.pdf") for p in final.parent.iterdir()), "kept under its temporary name"
    with issuer.station.register() as reg:  # the next run recovers first: the file is published
        issuer.issue(reg, make_record(id_number=resident_id(7)))
        assert reg.check() == []
    verdict = verify_bytes(final.read_bytes(), final.name, issuer.station.trust.load())[0]
    assert verdict.valid, verdict.reasons


def test_an_interrupt_as_the_reprint_commit_returns_keeps_the_new_paper(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = _national(issuer)  # a template that prints the blank's serial: the reprint's bytes differ
    with issuer.station.register() as reg:
        number = str(issuer.issue(reg, make_record(), print_serial="LN0040").record.number)
        monkeypatch.setattr(Register, "record_form", _then_interrupted(Register.record_form))
        with pytest.raises(Interrupted):
            issuer.reprint(reg, number, "LN0041")
        monkeypatch.undo()
    with issuer.station.register() as reg:  # the next run recovers first: the reprinted paper is published
        issuer.issue(reg, make_record(id_number=resident_id(7)), print_serial="LN0042")
        assert reg.print_serials(number) == ["LN0040", "LN0041"]
        ((_, path, sha),) = [f for f in reg.form_files(number) if f[0] == "paper"]
        assert path is not None and hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha, "the new paper"
        assert reg.check() == []
