"""Recovery after an interrupted issuing run: no signed PDF is left published for a void number.

Issuing publishes in this order (docs/record.md): allocate (pending, with the file it will be
published as) → sign and render → write the PDF under a temporary name in the output folder →
commit the number issued → rename the PDF to its final name. :func:`recover` runs under the
station's issuing lock at the start of every run (and as ``certkiosk register recover``) and
finishes whatever a killed run left:

- a pending number is voided, and its temporary file deleted (the PDF never had its final name);
  when a file of it was on disk (under a temporary name, whole or cut short by the kill), the
  number is also revoked before the file goes: the file was a signed certificate, and a copy of it
  (a sync or backup tool, a curious user) would otherwise verify as valid everywhere, the number
  being void only in this station's register;
- an issued number whose PDF is still under its temporary name is published (renamed);
- a file under the final name of a number that is not issued (an older version wrote PDFs before
  committing) is moved to the home's ``quarantine/`` folder and the number is revoked, because a
  signed PDF that was published may have left the station.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from certgen.exceptions import CertkioskError
from certgen.files import clear_name, fsync_folder, write_bytes_atomic, written_name
from certgen.issuing.reports import update_manifest
from certgen.payload import payload_sha256
from certgen.pdf.finish import read_attachment
from certgen.station.home import StationHome
from certgen.station.register import Register
from certgen.station.revoking import learn_if_new, revoking
from certgen.trust import Revocation, TrustStore

TEMP_SUFFIX = ".partial"
FILE_SUFFIX = {"paper": ".pdf", "electronic": "-e.pdf"}
"""A certificate's file name is its number and the form's suffix."""
ELECTRONIC_SUFFIX = FILE_SUFFIX["electronic"].removesuffix(".pdf")
QUARANTINE_REASON = "作废编号的已签名证书文件曾被发布：文件已隔离，编号吊销"
UNFINISHED_REASON = "发证中断：编号作废，其已签名的证书文件已写入磁盘（可能已被复制），编号吊销"
"""Why a void number whose signed form reached the disk is revoked (recovery, an abandoned issue)."""
TOMBSTONE_SUFFIX = ".revoked"
TOMBSTONE_TEXT = (
    "此编号从未发证，已作废并吊销（其已签名的证书文件曾写入此文件夹）。请保留本文件："
    "本站从备份恢复后据此文件夹确认已用编号时，不会把该编号再分配给他人。\n"
)


def temp_path(final: Path) -> Path:
    """The temporary name a certificate PDF is written under before its number is committed."""
    return final.with_name(f".{final.name}{TEMP_SUFFIX}")


_FORM_TEMP = re.compile(rf"\.(?P<number>[^.]+?)(?:{re.escape(ELECTRONIC_SUFFIX)})?\.pdf{re.escape(TEMP_SUFFIX)}")
"""A form's temporary name (:func:`temp_path`), with the number it belongs to."""


def sweep_leftovers(
    reg: Register, folder: Path, before_removing_form: Callable[[str], None] | None = None
) -> list[Path]:
    """Delete what processes killed inside :func:`certgen.files.atomic_write` left in ``folder``
    (``.<name>.<random>.tmp``): a form's, perhaps a whole signed PDF, or a report's, with names and
    ID numbers. Never a certificate: a form is renamed (and its folder fsync'd) before its number
    is committed. One listing of the folder; a form's of a number this register does not know is
    left alone (a folder shared with another station). ``before_removing_form`` is called with the
    number of each form's file of a number not issued before the file is deleted."""
    gone = []
    for path in sorted(folder.glob(".*.tmp")):
        name = written_name(path.name)
        if name is None:
            continue
        form = _FORM_TEMP.fullmatch(name)
        cert = reg.get(form["number"]) if form is not None else None
        if form is not None and cert is None:
            continue
        if cert is not None and cert.status != "issued" and before_removing_form is not None:
            before_removing_form(cert.number)
        path.unlink(missing_ok=True)
        gone.append(path)
    return gone


def revoke_unissued(reg: Register, number: str, reason: str, folder: Path) -> Revocation:
    """Revoke a number that is not issued but whose signed form was on disk in ``folder`` (under
    its final name or a temporary one), and leave a note there, ``.<number>.revoked``, before the
    caller removes the file. Verifiers keep the revocation for good; a station restored from an
    older backup after its home was lost learns its used numbers from the output folders
    (:func:`certgen.station.backup.find_issued_numbers` reads numbers in file names), so the note
    keeps the number from being allocated to a genuine certificate those verifiers would reject.
    The note is durable before the revocation, and the caller removes the signed file only after
    both: a stop anywhere in between leaves the file, and the next recovery does it all again."""
    note = folder / f".{number}{TOMBSTONE_SUFFIX}"
    if not note.is_file():  # first: a revocation with no note would let a restore give the number out again
        write_bytes_atomic(note, TOMBSTONE_TEXT.encode("utf-8"))
    return reg.revoke_unissued(number, reason)


def publish(temp: Path, final: Path, *, durable: bool = True) -> None:
    """Rename the temporary file to its final name, durably (``durable=False``: the folder is
    fsync'd later, by :func:`settle`, before the number's publishing entry is forgotten)."""
    os.replace(temp, final)
    if durable:
        fsync_folder(final.parent)


@dataclass(frozen=True)
class Recovery:
    """What recovery found and did."""

    voided: tuple[str, ...] = ()
    """Numbers an interrupted run left pending, now void."""
    published: tuple[Path, ...] = ()
    """PDFs of issued numbers that were still under their temporary name, now published."""
    removed: tuple[Path, ...] = ()
    """Temporary files deleted: those of numbers that were never issued, and what a write killed
    halfway left (:func:`sweep_leftovers`)."""
    quarantined: tuple[tuple[str, Path], ...] = ()
    """``(number, new path)``: published files of numbers not issued, moved; the numbers revoked."""
    missing: tuple[str, ...] = ()
    """Issued numbers whose PDF is on disk under neither name."""
    revocations: tuple[Revocation, ...] = ()
    """The revocations of the quarantined numbers and of :attr:`revoked_unfinished` (to be exported
    to verifiers)."""
    revoked_unfinished: tuple[str, ...] = ()
    """Void numbers whose signed form was on disk under a temporary name: revoked, the file deleted."""

    def __bool__(self) -> bool:
        return bool(
            self.voided or self.published or self.removed or self.quarantined or self.missing or self.revoked_unfinished
        )

    def lines(self) -> list[str]:
        """What happened, in Chinese, one line per fact."""
        out = []
        if self.voided:
            out.append(f"作废了上次中断时未完成的编号：{', '.join(self.voided)}")
        out += [f"补完发布（已登记发证，上次中断于改名前）：{p}" for p in self.published]
        out += [f"删除未登记发证的临时文件：{p}" for p in self.removed]
        out += [
            f"吊销作废编号 {n}：其已签名的证书文件在中断前已写入磁盘，可能已被复制" for n in self.revoked_unfinished
        ]
        out += [f"隔离作废编号 {n} 的证书文件并吊销该编号：{p}" for n, p in self.quarantined]
        out += [f"警告：证书 {n} 已登记发证，但其PDF文件不存在" for n in self.missing]
        if self.revocations:
            out.append("请重新导出信任包（certkiosk trust export）并分发给核验方。")
        return out


def _carries(path: Path, sha256: str | None) -> bool:
    try:
        attached = read_attachment(path.read_bytes())
    except Exception:  # a damaged file carries nothing: pikepdf raises many kinds
        return False
    return attached is not None and payload_sha256(str(attached.get("qr_text", ""))) == sha256


def _same_bytes(path: Path, sha256: str) -> bool:
    """Whether ``path`` holds exactly the bytes recorded before the commit (a form's PDF)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    except OSError:
        return False


def _quarantine(path: Path, quarantine_dir: Path) -> Path:
    quarantine_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = quarantine_dir / path.name.lstrip(".")
    n = 1
    while target.exists():
        n += 1
        target = quarantine_dir / f"{path.stem.lstrip('.')}-{n}{path.suffix}"
    shutil.move(path, target)
    return target


def recover(
    reg: Register,
    quarantine_dir: Path,
    folders: tuple[Path, ...] = (),
    before_revoking: Callable[[], None] | None = None,
) -> Recovery:
    """Finish what interrupted runs left (see the module docstring). Call under the issuing lock.

    ``folders`` are also scanned for files of numbers that are not issued (what older versions
    left behind, or a file copied back); ``before_revoking`` is called before each revocation.
    """
    voided = reg.void_pending("发证进程中断：编号未完成即作废")
    published: list[Path] = []
    removed: list[Path] = []
    quarantined: list[tuple[str, Path]] = []
    revocations: list[Revocation] = []
    missing: list[str] = []
    settled: list[str] = []

    def revoke(number: str, reason: str, folder: Path) -> None:
        if number not in {r.target for r in revocations}:  # both forms of one number: one revocation
            if before_revoking is not None:
                before_revoking()
            revocations.append(revoke_unissued(reg, number, reason, folder))

    def unissued_file(number: str, final: Path) -> None:
        revoke(number, QUARANTINE_REASON, final.parent)
        quarantined.append((number, _quarantine(final, quarantine_dir)))

    def unfinished_file(number: str, folder: Path, temp: Path | None) -> None:
        """A signed form of a number that is not issued, on disk under a temporary name (``temp``;
        None: the caller removes it): the number revoked (committed) before the file is deleted, so
        that a kill between the two leaves the file for the next recovery, not a void number whose
        copies verify."""
        revoke(number, UNFINISHED_REASON, folder)
        if temp is not None:
            clear_name(temp)
            removed.append(temp)

    entries = reg.unpublished()
    papers: dict[Path, dict[str, tuple[str, str | None]]] = {}
    """Per folder, the recorded paper (SHA-256, blank) of each issued number settled here: what its
    batch manifest should list (a reprint's new paper, see :func:`update_manifest`)."""
    for folder in sorted({Path(where).parent for _, where in entries} | {f for f in folders if f.is_dir()}):
        # once per folder: a batch may leave 100,000 entries
        removed += sweep_leftovers(reg, folder, functools.partial(unfinished_file, folder=folder, temp=None))
    for number, where in entries:
        cert = reg.get(number)
        files = [(Path(p), sha) for _, p, sha in reg.form_files(number) if p] or [(Path(where), None)]
        if cert is None or cert.status != "issued":  # a form's file may be written before it is recorded
            named = {final for final, _ in files}
            files += [(f, None) for s in FILE_SUFFIX.values() if (f := Path(where).with_name(number + s)) not in named]
        for final, pdf_sha256 in files:
            temp = temp_path(final)
            if cert is not None and cert.status == "issued":
                intact = _same_bytes(temp, pdf_sha256) if pdf_sha256 else _carries(temp, cert.payload_sha256)
                # a reprint's committed file replaces the one it reprinted (its hash is recorded)
                if temp.exists() and intact and (pdf_sha256 or not final.exists()):
                    publish(temp, final)
                    published.append(final)
                elif temp.exists():
                    clear_name(temp)
                    removed.append(temp)
                if not final.exists():
                    missing.append(number)
                elif pdf_sha256 and final.name == number + FILE_SUFFIX["paper"]:
                    papers.setdefault(final.parent, {})[number] = (pdf_sha256, reg.last_print_serial(number))
            else:
                if temp.exists():
                    unfinished_file(number, temp.parent, temp)
                if final.exists():
                    unissued_file(number, final)
        settled.append(number)
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.pdf"), *folder.glob(f".*.pdf{TEMP_SUFFIX}")]):
            name = path.name
            stem = name[1 : -len(".pdf" + TEMP_SUFFIX)] if name.startswith(".") else path.stem
            number = stem.removesuffix(ELECTRONIC_SUFFIX)  # <number>-e.pdf is the electronic form
            cert = reg.get(number)
            if cert is None or cert.status == "issued":
                continue
            if name.startswith("."):
                unfinished_file(number, folder, path)
            else:
                unissued_file(number, path)
    for folder, listed in papers.items():  # one manifest read each; only an entry it has otherwise is checked on disk
        with contextlib.suppress(CertkioskError, OSError):  # as reprint itself does
            update_manifest(folder, listed, functools.partial(_paper_on_disk, folder, listed))
    if settled:
        for folder in sorted({Path(where).parent for _, where in reg.unpublished()}):
            fsync_folder(folder)  # a rename an issuing run left to be made durable at its end
        reg.settle_published(settled)
    moved = {n for n, _ in quarantined}  # every other revocation here is of an unfinished form
    return Recovery(
        tuple(voided),
        tuple(published),
        tuple(removed),
        tuple(quarantined),
        tuple(missing),
        tuple(revocations),
        tuple(r.target for r in revocations if r.target not in moved),
    )


def _paper_on_disk(folder: Path, papers: dict[str, tuple[str, str | None]], number: str) -> bool:
    """Whether the paper form of ``number`` in ``folder`` holds the bytes ``papers`` records."""
    return _same_bytes(folder / (number + FILE_SUFFIX["paper"]), papers[number][0])


def recover_station(reg: Register, home: StationHome, trust: TrustStore, folders: tuple[Path, ...] = ()) -> Recovery:
    """:func:`recover` for a station: quarantine in its home, and its trust store learns the
    revocations (also any a killed process committed and did not pass on: certgen.station.revoking)."""
    learn_if_new(home, trust, reg)  # what a killed revocation (or an older version) left unpassed on
    with contextlib.ExitStack() as stack:
        entered: list[bool] = []

        def before_revoking() -> None:
            if not entered:  # the first revocation of this recovery
                stack.enter_context(revoking(home, trust, reg))
                entered.append(True)

        return recover(reg, home.quarantine_dir, folders, before_revoking)


SETTLE_PAGE = 1000
"""Publishing entries settled at a time at the end of a run (a batch may have 100,000)."""


def settle(reg: Register) -> None:
    """Forget the publishing entries of issued numbers whose PDFs are in place (end of a run), a
    page of entries at a time.

    Their folders are fsync'd first: issuing renames without an fsync per certificate, so a power
    cut may undo a rename until here, and until its entry is forgotten recovery publishes the
    file again from its temporary name (one fsync per folder and page instead of one per file)."""
    after = ""
    while page := reg.unpublished_files(after=after, limit=SETTLE_PAGE):
        done = []
        folders: set[Path] = set()
        for number, issued, paths in page:
            files = [Path(p) for p in paths]
            if issued and all(f.exists() for f in files):
                done.append(number)
                folders.update(f.parent for f in files)
        for folder in sorted(folders):
            fsync_folder(folder)
        if done:
            reg.settle_published(done)
        after = page[-1][0]
