"""Batch issuance from a roster: validate every row first, then issue, resumably.

The batch id derives from the roster file's SHA-256, so re-running the same roster after a crash
continues the same batch: rows already issued are skipped, numbers left pending are voided.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certgen.exceptions import BatchInvalid, CertkioskError, RecordError, RowProblem
from certgen.issuing.issuer import Issuer
from certgen.issuing.reports import BatchEntry, write_batch_reports
from certgen.issuing.roster import Roster, RosterRow
from certgen.pool import worker_pool
from certgen.record import CertificateRecord
from certgen.secret import Secret
from certgen.station import Station
from certgen.station.register import Register

Progress = Callable[[int, int, str], None]
"""Called after each certificate with (done, total, number)."""


@dataclass(frozen=True)
class PlannedRow:
    """A valid row, ready to issue."""

    row: RosterRow
    """The roster row."""
    record: CertificateRecord
    """Its record (with institution filled in)."""
    key: str
    """Its identity within the batch (for resuming)."""


@dataclass
class BatchPlan:
    """The outcome of checking a roster."""

    roster: Roster
    batch_id: str
    rows: list[PlannedRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    """Row keys already issued in an earlier run of this batch."""

    @property
    def to_issue(self) -> list[PlannedRow]:
        return [r for r in self.rows if r.key not in self.done]


def batch_id_of(roster: Roster) -> str:
    return "B" + roster.sha256[:16]


def row_key(record: CertificateRecord) -> str:
    """A person's identity within a batch: document, occupation, job type and level."""
    return f"{record.id_type}:{record.id_number}:{record.occupation_code}:{record.job_type or ''}:{record.level}"


def plan_batch(issuer: Issuer, reg: Register, roster: Roster, photos: Path | None) -> BatchPlan:
    """Check every row (fields, number, font, layout, photo, duplicates) without issuing anything.

    A relative path in the 照片 column is found in ``photos``, or else beside the roster file: the
    same rule for the command line and the terminal UI, whatever the current directory.
    """
    photos = photos if photos is not None else roster.source.parent
    plan = BatchPlan(roster, batch_id_of(roster))
    seen: dict[str, int] = {}
    numbers: dict[str, int] = {}
    for row in roster.rows:
        fields = dict(row.fields)
        photo = fields.get("photo")
        if isinstance(photo, str) and photo.strip() and not Path(photo).is_absolute():
            fields["photo"] = str(photos / photo.strip())
        try:
            record = CertificateRecord.from_fields(fields)
            signing_key = issuer.key_for(reg, record)
            record = issuer.complete_record(record, signing_key)
        except RecordError as exc:
            plan.problems.extend(RowProblem(row.row, str(e)) for e in exc.errors)
            continue
        except CertkioskError as exc:
            plan.problems.append(RowProblem(row.row, str(exc)))
            continue
        ident = row_key(record)
        if ident in seen:
            plan.problems.append(RowProblem(row.row, f"与第{seen[ident]}行是同一人、同一职业和等级，重复"))
            continue
        seen[ident] = row.row
        if reg.for_row(plan.batch_id, ident) is not None:
            plan.done.add(ident)
            plan.rows.append(PlannedRow(row, record, ident))
            continue
        if record.number is not None:
            if record.number in numbers:
                plan.problems.append(
                    RowProblem(row.row, f"证书编号 {record.number} 与第{numbers[record.number]}行重复")
                )
                continue
            numbers[record.number] = row.row
            existing = reg.get(record.number)
            if existing is not None:
                plan.problems.append(RowProblem(row.row, f"证书编号 {record.number} 已在登记库中，不能重复使用"))
                continue
        try:
            issuer.check_printable(record, signing_key)  # the photo is prepared again when issued: not kept
        except CertkioskError as exc:
            plan.problems.append(RowProblem(row.row, str(exc)))
            continue
        plan.rows.append(PlannedRow(row, record, ident))
    return plan


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did."""

    batch_id: str
    issued: int
    """Certificates issued in this run."""
    skipped: int
    """Rows already issued by an earlier run."""
    voided: tuple[str, ...]
    """Numbers an interrupted earlier run left pending, now void."""
    folder: Path
    """Where the PDFs and reports are."""
    reports: tuple[Path, ...]
    """The report files written."""
    problems: tuple[RowProblem, ...]
    """Rows left out (with --skip-invalid)."""


# --- worker processes ---------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(home: Any, passphrase: Secret, settings: dict[str, Any]) -> None:
    issuer = Issuer(Station(home), passphrase, **settings)
    _WORKER["issuer"] = issuer
    _WORKER["register"] = Register(home.register_path)


def _issue_in_worker(record: CertificateRecord, batch_id: str, key: str) -> tuple[str, str]:
    issued = _WORKER["issuer"].issue(_WORKER["register"], record, batch_id=batch_id, row_key=key)
    return str(issued.record.number), str(issued.path)


def run_batch(
    issuer: Issuer,
    plan: BatchPlan,
    *,
    skip_invalid: bool = False,
    workers: int = 1,
    progress: Progress | None = None,
) -> BatchResult:
    """Issue the plan's rows (all of them valid, or ``skip_invalid``) and write the reports."""
    if plan.problems and not skip_invalid:
        raise BatchInvalid(plan.problems)
    todo = plan.to_issue
    total = len(todo)
    with issuer.station.register() as reg:
        voided = reg.void_pending("批量发证中断后重新运行：作废未完成的编号", batch_id=plan.batch_id)
        if todo:
            issuer.private_key(issuer.key_for(reg, todo[0].record))  # a wrong passphrase fails before any work
        if workers <= 1 or total < 2:
            for i, planned in enumerate(todo, 1):
                issued = issuer.issue(reg, planned.record, batch_id=plan.batch_id, row_key=planned.key)
                if progress:
                    progress(i, total, str(issued.record.number))
        else:
            settings = {
                "filing_number": issuer.filing_number, "template_name": issuer.template_name,
                "out_dir": issuer.out_dir, "seal": issuer.seal, "font_path": issuer.font_path,
                "forms": issuer.forms, "tsa_url": issuer.tsa_url, "sample_seal": issuer.sample_seal,
            }  # fmt: skip
            with worker_pool(  # SIGTERM or an error stops the workers: none keeps the register open
                workers, _init_worker, (issuer.station.home, issuer.secret, settings)
            ) as pool:
                futures = [pool.submit(_issue_in_worker, p.record, plan.batch_id, p.key) for p in todo]
                for i, future in enumerate(futures, 1):
                    number, _ = future.result()
                    if progress:
                        progress(i, total, number)
        entries = []
        extras = {p.key: p.row.extras for p in plan.rows}
        institution = ""
        for cert in reg.batch(plan.batch_id):
            if cert.status != "issued" or cert.output_path is None:
                continue
            path = Path(cert.output_path)
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            entries.append(BatchEntry(cert.record, path, digest, extras.get(cert.row_key or "", {})))
            institution = cert.record.evaluator
    assert issuer.out_dir is not None
    folder = issuer.out_dir / plan.batch_id
    reports = write_batch_reports(folder, plan.batch_id, institution, entries) if entries else []
    issuer.station.after_change(issuer.secret, f"批次{plan.batch_id}")
    return BatchResult(
        plan.batch_id, total, len(plan.done), tuple(voided), folder, tuple(reports), tuple(plan.problems)
    )
