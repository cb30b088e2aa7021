"""Issuing: check a record is printable, allocate its number, sign, render, finish, write, record.

The protocol (docs/record.md): under the station's issuing lock, recover what an interrupted run
left; allocate the number (committed as pending, with the result it stands for and the file it
will be published as); sign and render; write the PDF under a temporary name in the output
folder; commit the number issued; rename the PDF to its final name (publish). A failure before
the commit voids the number and deletes the temporary file; a crash is finished by recovery. So a
PDF under its final name always belongs to an issued number, and no number is issued twice. In a
series (:meth:`Issuer.issue_series`) the commit that issues a certificate also allocates the next
number: one register commit per certificate.

A certificate is made in one or both forms, sharing its number: ``paper`` (``<number>.pdf``, to
print; the seal, if any, printed on the page) and ``electronic`` (``<number>-e.pdf``: its QR code
says so, the template's marking is printed, and the finished PDF/A gets the institution's PAdES
signature with the seal as its appearance). The register records each form made.
Every form is written under its temporary name before the one commit, and published after it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import itertools
import sqlite3
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import InitVar, dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certgen.exceptions import CertkioskError, DuplicateResult, PrintSerialUsed, RegisterError
from certgen.faults import fault_point
from certgen.files import clear_name, write_in_place
from certgen.issuing.recovery import (
    FILE_SUFFIX,
    UNFINISHED_REASON,
    Recovery,
    publish,
    recover_station,
    revoke_unissued,
    settle,
    temp_path,
)
from certgen.issuing.reports import update_manifest
from certgen.number import filing_part, format_number, load_profiles
from certgen.payload import SignedPayload, sign
from certgen.pdf.finish import CertificateMeta, finish
from certgen.pdf.fonts import CertificateFont, choose_font
from certgen.pdf.photo import PhotoCheck, PreparedPhoto, embedded_photo, prepare_photo, prepared_again
from certgen.pdf.render import Laid, layout, render, renumber
from certgen.pdf.seal import PreparedSeal, prepare_seal
from certgen.pdf.seal import sample_seal as make_sample_seal
from certgen.pdf.sign import SealAppearance, sign_pdf
from certgen.pdf.template import Template, load_template, placeholders
from certgen.printserial import normal_print_serial
from certgen.record import FIELD_NAMES, CertificateRecord, result_key
from certgen.secret import Secret
from certgen.station import Station
from certgen.station.issuelock import issuing_lock
from certgen.station.register import Register, Reissue, ReissueReason
from certgen.station.register_proof import CheckpointSigner
from certgen.station.revoking import revoking
from certgen.trust import PublicKeyInfo

FORMS = ("paper", "electronic")


@dataclass(frozen=True)
class Issued:
    """One issued certificate."""

    record: CertificateRecord
    """The record as signed, with its number and institution."""
    path: Path
    """The PDF written."""
    qr_text: str
    """The signed QR text."""
    payload_sha256: str
    """SHA-256 of the QR text."""
    pdf_sha256: str
    """SHA-256 of the PDF file."""
    warnings: tuple[str, ...] = ()
    """Non-fatal remarks (e.g. a photo under 300 dpi)."""
    files: dict[str, Path] = field(default_factory=dict)
    """Every form made (``paper``, ``electronic``) and its PDF; ``path`` is the first of them."""


@dataclass(frozen=True)
class Printable:
    """What the printability checks made, kept so that a certificate is laid out and its photo
    prepared once."""

    photo: PreparedPhoto | None
    """The prepared photo (None: the record has none)."""
    laid: dict[str, Laid]
    """Each form's lines, laid out for ``sample``."""
    sample: str
    """The number the lines were laid out for (a sample of the right length before allocation)."""
    made_for: tuple[object, ...] = ()
    """What the checks were run on (record, key, template, font, forms, optional lines): kept lines
    serve only an issue of exactly these (see :meth:`Issuer.prepared`); pickled with a batch row,
    its record is the row's own (pickled once)."""
    photo_check: PhotoCheck | None = None
    """What the photo check found, when ``photo`` is not kept (see :meth:`kept`)."""

    def kept(self) -> Printable:
        """These checks' outcome without the photo's bytes (a batch plan keeps one per row on disk):
        the photo is read again when issued and embedded unchecked only if it is the file checked."""
        check = self.photo.check if self.photo is not None else self.photo_check
        return replace(self, photo=None, photo_check=check)

    def laid_for(self, form: str, number: str, font: CertificateFont) -> Laid | None:
        """The form's lines for ``number``: these, when the number prints in the same place (else None)."""
        laid = self.laid[form]
        return laid if number == self.sample else renumber(laid, self.sample, number, font)


@dataclass(frozen=True)
class IssueRequest:
    """One certificate to issue (see :meth:`Issuer.issue`)."""

    record: CertificateRecord
    """The record, without a number unless one is supplied."""
    batch_id: str | None = None
    """The batch it belongs to (its PDF goes in the output folder's folder of that name)."""
    row_key: str | None = None
    """Its result's identity in the batch (person, occupation, level)."""
    photo: PreparedPhoto | None = None
    """A photo already prepared (else the record's photo is prepared here)."""
    reissue: Reissue | None = None
    """A deliberate re-issue of a live certificate."""
    print_serial: str | None = None
    """The 印制流水码 of the blank its paper form is printed on."""
    printable: Printable | None = None
    """What the checks made before (:meth:`Printable.kept`), so that they are not run twice."""


@dataclass(frozen=True)
class _Ready:
    """A request checked, with what issuing it needs; nothing allocated yet."""

    request: IssueRequest
    """What was asked."""
    record: CertificateRecord
    """The record with the institution filled in."""
    key: PublicKeyInfo
    """The signing key for its issue date."""
    print_serial: str | None
    """The blank's print serial, normalised."""
    printable: Printable | None
    """What the printability checks made (None: a photo was given prepared)."""
    photo: PreparedPhoto | None
    """The prepared photo."""
    private: Ed25519PrivateKey = field(repr=False)
    """The unlocked signing key."""
    folder: Path
    """The output folder its forms are published in."""


@dataclass(frozen=True)
class _Written:
    """A certificate whose number is allocated and whose forms are written under temporary names."""

    ready: _Ready
    """The checked request."""
    numbered: CertificateRecord
    """The record with its number."""
    made: list[tuple[str, Path, SignedPayload, str]]
    """Each form: ``(form, final path, signed payload, SHA-256 of its PDF)``; the first is the main one."""

    @property
    def folder(self) -> Path:
        return self.ready.folder

    @property
    def path(self) -> Path:
        return self.made[0][1]

    @property
    def signed(self) -> SignedPayload:
        return self.made[0][2]

    def forms(self) -> list[tuple[str, str, str]]:
        """``(form, final path, SHA-256 of the PDF)`` of each form, as the register records them."""
        return [(form, str(final), digest) for form, final, _, digest in self.made]


@dataclass
class Issuer:
    """Issues certificates for one station, one institution and one template."""

    station: Station
    passphrase: InitVar[str | Secret]
    filing_number: str | None = None
    template_name: str = "liaoning-2020"
    out_dir: Path | None = None
    seal: Path | None = None
    font_path: Path | None = None
    forms: tuple[str, ...] = ("paper",)
    """Which forms to make: ``paper``, ``electronic`` or both (in this order)."""
    tsa_url: str | None = None
    """An RFC 3161 time-stamping URL for electronic certificates (None: offline, no time-stamp)."""
    sample_seal: bool = False
    """Use a generated sample seal (示例) when no seal file is given (the demo)."""
    template: Template = field(init=False)
    font: CertificateFont = field(init=False)
    secret: Secret = field(init=False, repr=False)
    """The passphrase of the institution's private keys (never shown: see certgen.secret)."""
    prepared_seal: PreparedSeal | None = field(default=None, init=False)
    in_worker: bool = False
    """True in a worker process of a batch: its parent holds the issuing lock and recovers."""
    last_recovery: Recovery = field(default_factory=Recovery, init=False)
    """What the recovery at the start of the last locked run found and did."""
    revoked_as_stopped: list[str] = field(default_factory=list, init=False)
    """Numbers revoked as the last run stopped (void numbers whose signed form had reached the
    disk); cleared as each run, or series, begins."""
    _keys: dict[bytes, Ed25519PrivateKey] = field(default_factory=dict, init=False, repr=False)
    _x509_keys: dict[bytes, ec.EllipticCurvePrivateKey] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self, passphrase: str | Secret) -> None:
        self.secret = Secret.of(passphrase)
        self.template = load_template(self.template_name, self.station.home.templates_dir)
        self.font = choose_font(self.font_path, [self.station.home.fonts_dir], kind=self.template.font)
        self.out_dir = self.out_dir or self.station.home.output_dir
        unknown = [f for f in self.forms if f not in FORMS]
        if unknown or not self.forms:
            raise CertkioskError(f"证书形式应为 paper（纸质）或 electronic（电子），收到 {', '.join(self.forms)}")
        self.forms = tuple(f for f in FORMS if f in self.forms)
        box = self.template.seal
        if self.seal is None and box is not None and self.station.home.seal_path.is_file():
            self.seal = self.station.home.seal_path  # the station's own seal
        if self.seal is not None:
            if box is None:
                raise CertkioskError(f"模板 {self.template.id} 没有印章位置 [seal]，不能加盖印章 {self.seal}")
            self.prepared_seal = prepare_seal(self.seal, box.w)
        if "electronic" in self.forms:
            if box is None:
                raise CertkioskError(f"模板 {self.template.id} 没有印章位置 [seal]：电子证书的印章即其签名外观")
            if self.prepared_seal is None and not self.sample_seal:
                raise CertkioskError("电子证书需要机构印章：请用 --seal 指定印章 PNG（透明背景）")
        self._sample_seals: dict[str, PreparedSeal] = {}
        self._province_urls: dict[str, str | None] = {}

    def seal_for(self, institution: str) -> PreparedSeal | None:
        """The seal to use: the station's own, else (demo) a sample seal with the institution's name."""
        if self.prepared_seal is not None or not self.sample_seal:
            return self.prepared_seal
        if institution not in self._sample_seals:
            self._sample_seals[institution] = make_sample_seal(institution, self.font.path)
        return self._sample_seals[institution]

    # --- checks before anything is allocated -------------------------------------------------
    def key_for(self, reg: Register, record: CertificateRecord) -> PublicKeyInfo:
        """The signing key for the record's issue date; the record's number must be the key's."""
        key = reg.signing_key(self.filing_number, record.issue_date)
        if record.number is not None and filing_part(record.number) != key.filing_number:
            raise RegisterError(
                f"证书编号 {record.number} 的前13位不是本机构备案号 {key.filing_number}（{key.institution}）"
            )
        return key

    def complete_record(self, record: CertificateRecord, key: PublicKeyInfo) -> CertificateRecord:
        """The record with the institution filled in as evaluator and issuer (谁评价、谁发证)."""
        if record.evaluator and record.evaluator != key.institution:
            raise RegisterError(f"评价机构「{record.evaluator}」与签名密钥的机构「{key.institution}」不符")
        return record.replace(evaluator=key.institution, issuer=key.institution)

    def check_printable(self, record: CertificateRecord, key: PublicKeyInfo) -> PreparedPhoto | None:
        """Font coverage, layout and photo checks, without allocating anything."""
        return self.prepare(record, key).photo

    def prepare(self, record: CertificateRecord, key: PublicKeyInfo, print_serial: str | None = None) -> Printable:
        """Check the record is printable (font coverage, layout, photo) and keep what the checks made:
        the layout of each form (for a sample number of the same length) and the prepared photo."""
        sample = record if record.number else record.with_number(
            format_number(key.filing_number, record.issue_date.year, record.level, 999_999)
        )  # fmt: skip
        # every field's characters, printed by this template or not (a template may be switched)
        self.font.require("".join(placeholders(sample).values()), f"{record.name} 的证书")
        optional = self.optional_values(key, print_serial)
        laid = {form: layout(sample, self.template, self.font, form, optional) for form in self.forms}
        photo = None
        if record.photo is not None:
            photo = prepare_photo(record.photo, self.template.photo.w, self.template.photo.h)
        return Printable(photo, laid, str(sample.number), self._made_for(record, key, optional))

    def _made_for(
        self, record: CertificateRecord, key: PublicKeyInfo, optional: Mapping[str, str | None]
    ) -> tuple[object, ...]:
        """What :meth:`prepare`'s lines and checks depend on (compared, never trusted blindly)."""
        font = (self.font.name, str(self.font.path))
        return (record, key.kid, self.template.id, font, self.forms, tuple(sorted(optional.items())))

    def prepared(
        self, record: CertificateRecord, key: PublicKeyInfo, print_serial: str | None, kept: Printable | None
    ) -> Printable:
        """:meth:`prepare`, or the ``kept`` outcome of the same checks on the same record (a batch
        plan's): its lines as they are and its photo read again (checked again in full when the
        file is no longer the one checked, see :func:`certgen.pdf.photo.prepared_again`)."""
        optional = self.optional_values(key, print_serial)
        if kept is None or kept.made_for != self._made_for(record, key, optional):
            return self.prepare(record, key, print_serial)
        if kept.photo is not None or record.photo is None:
            return kept
        w, h = self.template.photo.w, self.template.photo.h
        if kept.photo_check is None:
            return replace(kept, photo=prepare_photo(record.photo, w, h))
        return replace(kept, photo=prepared_again(record.photo, kept.photo_check, w, h))

    def optional_values(self, key: PublicKeyInfo, print_serial: str | None = None) -> dict[str, str | None]:
        """The values of the template's optional lines: the province's query URL (from the province
        profile of the institution's filing number, a station's own profile first) and the blank's
        print serial (paper only)."""
        if print_serial is not None:
            self.require_paper(print_serial)
        province = key.filing_number[5:7]
        if province not in self._province_urls:
            profile = load_profiles(self.station.home.profiles_dir).get(province)
            self._province_urls[province] = profile.query_url if profile else None
        return {"province_url": self._province_urls[province], "print_serial": print_serial}

    def unlocked(self, keys: Mapping[bytes, Ed25519PrivateKey] | None = None) -> dict[bytes, Ed25519PrivateKey]:
        """The signing keys decrypted so far, by kid, after adding ``keys`` (decrypted elsewhere with
        this issuer's passphrase: a batch's forked workers take their parent's)."""
        self._keys.update(keys or {})
        return dict(self._keys)

    def private_key(self, key: PublicKeyInfo) -> Ed25519PrivateKey:
        if key.kid not in self._keys:
            self._keys[key.kid] = self.station.keystore.load(key.kid, self.secret)
        if "electronic" in self.forms:
            self.x509_key(key)  # a key without a certificate fails before a number is allocated
        return self._keys[key.kid]

    def x509_key(self, key: PublicKeyInfo) -> ec.EllipticCurvePrivateKey:
        """The key's document-signing key; CertkioskError when the key has no certificate yet."""
        if key.x509 is None:
            raise CertkioskError(
                f"密钥 {key.kid_hex} 还没有文档签名证书，不能签发电子证书：请先执行 certkiosk keys x509"
            )
        key.document_certificate()  # TrustError before anything is allocated if it names another key
        if key.kid not in self._x509_keys:
            self._x509_keys[key.kid] = self.station.keystore.load_x509_key(key.kid, self.secret)
        return self._x509_keys[key.kid]

    def make_form(
        self,
        form: str,
        record: CertificateRecord,
        key: PublicKeyInfo,
        photo: PreparedPhoto | None,
        out: Path,
        laid: Laid | None = None,
        print_serial: str | None = None,
        before_write: Callable[[], None] | None = None,
    ) -> tuple[SignedPayload, bytes]:
        """Sign the QR payload of one form, render, finish (and for an electronic one sign the PDF),
        and write it to ``out``.

        ``laid``: the form's lines as the checks laid them out for this number (else laid out here,
        with the blank's ``print_serial`` on the paper form); ``before_write``: called as the signed
        file is about to reach the disk."""
        signed = sign(record, self.template.id, self.private_key(key), key.kid, form)
        seal = self.seal_for(key.institution)
        png = seal.png if seal else None
        optional = self.optional_values(key, print_serial if form == "paper" else None)
        raw = render(record, self.template, self.font, signed.text, photo, png, form, laid, optional)
        meta = CertificateMeta(
            str(record.number), key.institution, key.filing_number, record.issue_date, record.to_dict(),
            signed.text, self.template.id, form,
        )  # fmt: skip
        pdf = finish(raw, meta)
        if form == "electronic":
            assert seal is not None and self.template.seal is not None and key.x509 is not None
            pdf = sign_pdf(
                pdf, key=self.x509_key(key), certificate=key.document_certificate() or b"",
                seal=SealAppearance(seal.png, self.template.seal, self.template.page_h),
                reason=f"{key.institution}颁发职业技能等级证书 {record.number}", tsa_url=self.tsa_url,
            )  # fmt: skip
        if before_write is not None:
            before_write()
        write_in_place(out, pdf)  # ``out`` is the temporary name: what an error leaves, its abandoning removes
        return signed, pdf

    # --- issuing ---------------------------------------------------------------------------
    @contextmanager
    def locked(self, reg: Register, scan: tuple[Path, ...] = ()) -> Iterator[Recovery]:
        """Hold the station's issuing lock; the outermost holder recovers first and settles last.

        ``scan``: output folders to search for files of numbers that are not issued. Yields what
        recovery did (an empty :class:`Recovery` for an inner holder or a worker process).
        """
        if self.in_worker:
            yield Recovery()
            return
        self.revoked_as_stopped.clear()  # of this run only (also when it cannot take the lock)
        with issuing_lock(self.station.home.issue_lock_path) as outermost:
            if outermost:
                if reg.signer is None and self.station.keystore.kids():  # a revocation by recovery is signed too
                    reg.signer = self.station.checkpoint_signer(reg, self.secret, self._keys)
                self.last_recovery = recover_station(reg, self.station.home, self.station.trust, scan)
            yield self.last_recovery if outermost else Recovery()
            if outermost:
                settle(reg)
                with contextlib.suppress(CertkioskError, OSError):  # a note, never the run's error
                    self.station.after_run(self.secret)

    def issue(
        self,
        reg: Register,
        record: CertificateRecord,
        *,
        batch_id: str | None = None,
        row_key: str | None = None,
        photo: PreparedPhoto | None = None,
        reissue: Reissue | None = None,
        print_serial: str | None = None,
        printable: Printable | None = None,
    ) -> Issued:
        """Issue one certificate (see the module docstring for the order of steps).

        ``print_serial``: the 印制流水码 of the blank the paper form will be printed on (printed where
        the template places it, recorded with the paper form; a used blank is refused).
        ``printable``: what :meth:`prepare` made for this record, key and blank before (a batch
        plan's checks, :meth:`Printable.kept`), so that they are not run twice (see :meth:`prepared`)."""
        request = IssueRequest(record, batch_id, row_key, photo, reissue, print_serial, printable)
        (outcome,) = self.issue_series(reg, [request])
        if isinstance(outcome, DuplicateResult):
            raise outcome
        return outcome

    def issue_series(
        self, reg: Register, requests: Iterable[IssueRequest]
    ) -> Generator[Issued | DuplicateResult, None, None]:
        """Issue each request in turn: each certificate once it is issued and published, or for a
        request whose result the register already holds (issued since it was checked) its
        :class:`DuplicateResult`; any other error stops the series, after every certificate before it.

        The commit that issues a certificate also allocates the next request's number (a savepoint
        in the same transaction: a refused allocation leaves the issue committed). So a series takes
        the register's write lock and fsyncs it once per certificate, not twice; and the next
        request's checks run before that commit, so an error there comes after the certificate
        before it is issued. A kill leaves what a kill between two commits always left: numbers
        allocated and not issued, which recovery voids, and issued ones, which it publishes."""
        with self.locked(reg):
            written: _Written | None = None  # forms written, to be issued by the next commit
            allocated: tuple[Path, CertificateRecord] | None = None  # allocated, forms not yet written
            try:
                for request in itertools.chain(requests, [None]):  # None: the end, where the last is issued
                    ready: _Ready | None = None
                    failed: Exception | None = None
                    if request is not None:
                        try:
                            ready = self._ready(reg, request)
                        except Exception as exc:  # after the certificate before it is issued
                            failed = exc
                    before, written = written, None  # from here its commit, or _commit, settles it
                    outcome: CertificateRecord | Exception | None = None
                    if before is not None or ready is not None:
                        issued, outcome = self._commit(reg, before, ready)
                        if ready is not None and isinstance(outcome, CertificateRecord):
                            allocated = (ready.folder, outcome)
                        if issued is not None:
                            yield issued
                    if failed is not None:
                        raise failed
                    if ready is None:
                        continue
                    if isinstance(outcome, DuplicateResult):
                        yield outcome
                        continue
                    if not isinstance(outcome, CertificateRecord):
                        assert outcome is not None
                        raise outcome
                    allocated = None  # _write voids it if it fails
                    written = self._write(reg, ready, outcome)
            except BaseException as exc:  # stopped (Ctrl-C, the caller gone): what is not issued is voided
                why = "发证中断" if isinstance(exc, GeneratorExit) else exc
                if written is not None:
                    self._abandon(reg, written.folder, str(written.numbered.number), why)
                if allocated is not None:
                    self._abandon(reg, allocated[0], str(allocated[1].number), why)
                raise

    def _ready(self, reg: Register, request: IssueRequest) -> _Ready:
        """The checks before anything is allocated: key, institution, blank, printability, passphrase."""
        key = self.key_for(reg, request.record)
        record = self.complete_record(request.record, key)
        print_serial = request.print_serial
        if print_serial is not None:
            print_serial = self.check_print_serial(reg, print_serial)
        printable, photo = None, request.photo
        if photo is None:
            printable = self.prepared(record, key, print_serial, request.printable)
            photo = printable.photo
        private = self.private_key(key)  # a wrong passphrase (or a key without a certificate) fails before allocating
        assert self.out_dir is not None
        folder = self.out_dir / (request.batch_id or "single")
        return _Ready(request, record, key, print_serial, printable, photo, private, folder)

    def _allocate(self, reg: Register, ready: _Ready) -> CertificateRecord:
        request, record, key = ready.request, ready.record, ready.key
        if record.number is None:
            return reg.allocate(
                record, key.filing_number, batch_id=request.batch_id, row_key=request.row_key, kid=key.kid_hex,
                output_dir=ready.folder, reissue=request.reissue,
            )  # fmt: skip
        if request.reissue is not None:
            raise RegisterError("补发/换发的证书编号由登记库分配，不能指定")
        return reg.record_supplied(
            record, batch_id=request.batch_id, row_key=request.row_key, kid=key.kid_hex, output_dir=ready.folder
        )

    def _write(self, reg: Register, ready: _Ready, numbered: CertificateRecord) -> _Written:
        """Sign, render and write every form of the allocated ``numbered`` under its temporary name
        (voided, and its files removed, if that fails)."""
        number = str(numbered.number)
        made: list[tuple[str, Path, SignedPayload, str]] = []
        written: list[bool] = []  # a signed form began to reach the disk: its number is revoked if abandoned
        try:
            for form in self.forms:
                final = ready.folder / (number + FILE_SUFFIX[form])
                laid = ready.printable.laid_for(form, number, self.font) if ready.printable else None
                blank = ready.print_serial if form == "paper" else None
                signed, pdf = self.make_form(
                    form, numbered, ready.key, ready.photo, temp_path(final), laid, blank, lambda: written.append(True)
                )
                made.append((form, final, signed, hashlib.sha256(pdf).hexdigest()))
            fault_point("after_write")
        except BaseException as exc:
            self._abandon(reg, ready.folder, number, exc, on_disk=bool(written))
            raise
        return _Written(ready, numbered, made)

    def _commit(
        self, reg: Register, written: _Written | None, ready: _Ready | None
    ) -> tuple[Issued | None, CertificateRecord | Exception | None]:
        """One write transaction: ``written`` issued (its forms recorded), and ``ready``'s number
        allocated; then ``written`` published. Returns what was issued, and the allocated record or
        the error that refused it (undone alone). A failure to issue ``written`` voids it and raises."""
        if written is not None:  # the commit that issues signs the register
            reg.signer = CheckpointSigner(written.ready.key.kid_hex, written.ready.private)
        elif ready is not None:
            reg.signer = CheckpointSigner(ready.key.kid_hex, ready.private)
        allocated: CertificateRecord | Exception | None = None
        try:
            with reg.group():
                if written is not None:
                    # the forms' files and the number issued in one commit (recovery removes the temporary
                    # files of every form of a number that is not issued, recorded or not)
                    reg.complete(
                        str(written.numbered.number), payload_sha256=written.signed.sha256,
                        output_path=str(written.path), kid=written.ready.key.kid_hex, forms=written.forms(),
                        print_serial=written.ready.print_serial if "paper" in self.forms else None,
                    )  # fmt: skip
                if ready is not None:
                    try:
                        allocated = self._allocate(reg, ready)
                    except Exception as exc:  # undone alone (the group fails as a whole if SQLite undid it all)
                        allocated = exc
            if written is None:
                if isinstance(allocated, CertificateRecord):
                    fault_point("after_allocate")
                return None, allocated
            fault_point("after_commit")
            fault_point("before_rename")
            for _, final, _, _ in written.made:
                publish(temp_path(final), final, durable=False)  # the folder is fsync'd when the run settles
            fault_point("after_rename")
            if isinstance(allocated, CertificateRecord):
                fault_point("after_allocate")
            seal = self.seal_for(written.ready.key.institution)
            photo = written.ready.photo
            notes = (photo.warnings if photo else ()) + (seal.warnings if seal else ())
            issued = Issued(
                written.numbered, written.path, written.signed.text, written.signed.sha256, written.made[0][3], notes,
                {form: path for form, path, _, _ in written.made},
            )  # fmt: skip
        except BaseException as exc:
            # what is not issued is voided (an exception can also arrive just as the commit returns:
            # then ``written`` is issued, and recovery publishes its files)
            if written is not None:
                self._abandon(reg, written.folder, str(written.numbered.number), exc)
            if isinstance(allocated, CertificateRecord) and ready is not None and self._holds(reg, allocated, ready):
                self._abandon(reg, ready.folder, str(allocated.number), exc)
            raise
        return issued, allocated

    def _abandon(
        self, reg: Register, folder: Path, number: str, why: BaseException | str, *, on_disk: bool = False
    ) -> None:
        """A number allocated and not issued: voided now (else by recovery), and its forms'
        temporary files removed unless the register says it is issued after all. A form on disk
        (or ``on_disk``: one began to be written) was a signed certificate that a copy may have
        been taken of: the number is revoked first (:func:`certgen.issuing.recovery.revoke_unissued`);
        when that fails or is stopped (a full disk, Ctrl-C again), the files stay for the next run's
        recovery, which revokes it then."""
        if isinstance(why, str):
            reason = why
        else:
            reason = str(why) if isinstance(why, CertkioskError) else f"发证中断：{type(why).__name__}"
        reg.end_open_transaction()  # read and void what is committed, not what was left open
        voided: list[str] = []
        with contextlib.suppress(CertkioskError):  # e.g. a full disk: it stays pending, recovery voids it
            voided = reg.void_pending(reason, number=number)
        if number in voided or not self._issued(reg, number):  # none may outlive a void number
            temps = [temp_path(folder / (number + FILE_SUFFIX[form])) for form in self.forms]
            if on_disk or any(t.exists() for t in temps):
                try:
                    with revoking(self.station.home, self.station.trust, reg):
                        revoke_unissued(reg, number, UNFINISHED_REASON, folder)
                except (CertkioskError, OSError, sqlite3.Error):
                    return
                self.revoked_as_stopped.append(number)
            for temp in temps:
                clear_name(temp)

    def stop_notes(self) -> list[str]:
        """What a stopped run tells its user beside the interruption itself, in Chinese."""
        if not self.revoked_as_stopped:
            return []
        return [
            f"编号 {'、'.join(self.revoked_as_stopped)} 已作废并吊销"
            "（中断时其已签名的证书文件已写入磁盘，可能已被复制）。"
            "请重新导出信任包（certkiosk trust export）并分发给核验方。"
        ]

    @staticmethod
    def _holds(reg: Register, allocated: CertificateRecord, ready: _Ready) -> bool:
        """Whether the register holds ``allocated``'s number for this request: the commit that
        allocated it may have been rolled back, and the number allocated since by another process
        (a batch worker waiting for the lock), whose number it is to void, not this one's."""
        reg.end_open_transaction()
        try:
            found = reg.get(str(allocated.number))
        except Exception:  # unreadable: recovery decides
            return False
        request = ready.request
        return (
            found is not None and found.batch_id == request.batch_id and found.row_key == request.row_key
            and found.record.id_number == allocated.id_number
        )  # fmt: skip

    @staticmethod
    def _issued(reg: Register, number: str) -> bool:
        """Whether the register says ``number`` is issued, when an issue failed before it knew: an
        exception can interrupt the commit that issues just as it returns (a SIGTERM or Ctrl-C
        handled after COMMIT), and then its files are the certificate's, which recovery publishes.
        True when the register cannot be read: recovery decides then."""
        try:
            found = reg.get(number)
        except Exception:  # unreadable, or a row it cannot parse
            return True
        return found is not None and found.status == "issued"

    @staticmethod
    def _form_recorded(reg: Register, number: str, pdf: bytes) -> bool:
        """Whether the register holds ``pdf`` as the paper form of ``number`` (the commit that records
        a reprint can be interrupted just as it returns, as in :meth:`_issued`). True when the
        register cannot be read: recovery decides then."""
        try:
            files = reg.form_files(number)
        except (CertkioskError, sqlite3.Error):
            return True
        digest = hashlib.sha256(pdf).hexdigest()
        return any(form == "paper" and sha == digest for form, _, sha in files)

    def require_paper(self, serial: str) -> None:
        """CertkioskError when this issue makes no paper form for the blank ``serial`` to carry."""
        if "paper" not in self.forms:
            raise CertkioskError(f"印制流水码 {serial} 只用于纸质证书：本次只签发电子证书")

    def check_print_serial(self, reg: Register, value: object) -> str:
        """The print serial normalised, before anything is allocated: CertkioskError when it is
        malformed, or the issue makes no paper form; PrintSerialUsed when the blank was used (by any
        certificate: a reprint's new blank is new, a spoiled one stays used)."""
        try:
            serial = normal_print_serial(value)
        except ValueError as exc:
            raise CertkioskError(str(exc)) from None
        if serial is None:
            raise CertkioskError("印制流水码为空")
        self.require_paper(serial)
        owner = reg.print_serial_owner(serial)
        if owner is not None:
            raise PrintSerialUsed(serial, owner)
        return serial

    # --- deliberate re-issue (补发 / 换发) ---------------------------------------------------------
    def reissue(
        self,
        reg: Register,
        number: str,
        reason: ReissueReason,
        *,
        changes: Mapping[str, object] | None = None,
        issue_date: _dt.date,
        photo: Path | None = None,
        print_serial: str | None = None,
    ) -> Issued:
        """Re-issue the live certificate ``number`` under a new number linked to it in the register.

        ``lost`` (补发): the same content; the old certificate stays valid. ``correction`` (换发):
        ``changes`` correct fields; the old certificate is revoked in the transaction that issues
        the new one. The new certificate joins the old one's batch, so a batch revocation covers it.
        ``print_serial``: the new blank its paper form is printed on (recorded for the new number).
        """
        old = reg.get(number)
        if old is None or old.status != "issued":
            raise RegisterError(f"证书 {number} 未在本站发证，不能补发或换发")
        changes = dict(changes or {})
        unknown = sorted(set(changes) - set(FIELD_NAMES) | ({"number"} & set(changes)))
        if unknown:
            raise RegisterError(f"不能更正的字段：{'、'.join(unknown)}（可更正：{'、'.join(FIELD_NAMES[:-1])}）")
        if reason == "lost" and changes:
            raise RegisterError("补发（遗失）按原证书内容发证，不能修改字段；更正内容请用换发（--reason correction）")
        if reason == "correction" and not changes:
            raise RegisterError("换发（更正）需要用 --set 字段=值 给出更正后的内容")
        fields = old.record.to_dict() | {"number": None, "issue_date": issue_date.isoformat()} | changes
        if photo is not None:
            fields["photo"] = str(photo)
        fields = {k: v for k, v in fields.items() if v is not None}
        record = CertificateRecord.from_fields(fields)  # validated against today's rules: it is being written
        with self.locked(reg), contextlib.ExitStack() as stack:
            if reason == "correction":  # its issuing commit revokes the old one: the trust store learns it, kill or not
                stack.enter_context(revoking(self.station.home, self.station.trust, reg))
            return self.issue(
                reg,
                record,
                batch_id=old.batch_id,
                row_key=result_key(record),
                reissue=Reissue(number, reason),
                print_serial=print_serial,
            )

    # --- reprint onto a new blank (印制流水码) ------------------------------------------------------
    def reprint(self, reg: Register, number: str, print_serial: str) -> Path:
        """Make the paper form of the issued certificate ``number`` again for a new blank (the first
        was spoiled in the printer): the same record and signed QR code, the new blank's print serial
        printed and recorded; the spoiled blank stays recorded against this number (never reused).

        The QR payload is signed again (Ed25519 is deterministic: the same text) and must hash to the
        one the register holds: a different template or record is refused, not silently reprinted.
        """
        with self.locked(reg):
            cert = reg.get(number)
            if cert is None or cert.status != "issued":
                raise RegisterError(f"证书 {number} 未在本站发证，不能重印")
            if cert.kid is None or cert.payload_sha256 is None:
                raise RegisterError(f"证书 {number} 在登记库中缺少签名密钥或二维码哈希，不能重印")
            known = self.station.revocations_known(reg).revocations
            revoked = [r for r in known if number in (r.target, *r.numbers) or r.target == cert.kid]
            if revoked:
                raise RegisterError(f"证书 {number} 已吊销（{revoked[0].reason}），不能重印")
            files = {form: (path, sha) for form, path, sha in reg.form_files(number) if path}
            if "paper" not in files:
                raise CertkioskError(f"证书 {number} 没有纸质形式，不能重印到证书用纸上")
            paper_path, paper_sha256 = files["paper"]
            serial = self.check_print_serial(reg, print_serial)  # a new blank: never one recorded
            key = next((k for k in reg.institution_keys() if k.kid_hex == cert.kid), None)
            if key is None:
                raise RegisterError(f"证书 {number} 的签名密钥 {cert.kid} 不在本站")
            reg.signer = CheckpointSigner(key.kid_hex, self.private_key(key))
            final = Path(paper_path)
            # the content comes from the registered paper PDF, checked to be it (read once)
            if paper_sha256 is None:
                raise CertkioskError(
                    f"证书 {number} 的纸质PDF在登记库中没有文件哈希（旧版本签发）：无法确认其内容，"
                    "不能重印（可用 reissue 补发）"
                )
            try:
                registered = final.read_bytes()
            except OSError as exc:
                raise CertkioskError(
                    f"证书 {number} 的纸质PDF {final} 无法读取（{exc.strerror}）：不能据此重印（可用 reissue 补发）"
                ) from None
            if hashlib.sha256(registered).hexdigest() != paper_sha256:
                raise CertkioskError(
                    f"证书 {number} 的纸质PDF {final} 与登记库记录的不符（已被改动或替换）：不能据此重印"
                )
            # the photo is not in the signed QR code: the face printed is the one issued, not the file's today
            photo = embedded_photo(registered, self.template.photo.w, str(final))
            temp = temp_path(final)
            reg.republishing(number, str(final))  # a crash from here on is finished by recovery
            pdf = b""
            try:
                signed, pdf = self.make_form("paper", cert.record, key, photo, temp, None, serial)
                if signed.sha256 != cert.payload_sha256:
                    raise CertkioskError(
                        f"证书 {number} 的二维码与用模板 {self.template.id} 重新生成的不同："
                        "请用 --template 指定签发时的模板"
                    )
                fault_point("after_write")
                reg.record_form(
                    number, "paper", output_path=str(final), pdf_sha256=hashlib.sha256(pdf).hexdigest(),
                    print_serial=serial,
                )  # fmt: skip
            except BaseException:
                reg.end_open_transaction()
                if not (pdf and self._form_recorded(reg, number, pdf)):  # recorded: recovery publishes it
                    temp.unlink(missing_ok=True)
                raise
            fault_point("after_commit")
            fault_point("before_rename")
            publish(temp, final)
            fault_point("after_rename")
            with contextlib.suppress(CertkioskError, OSError):  # done; the manifest is the auditors' copy
                update_manifest(final.parent, {number: (hashlib.sha256(pdf).hexdigest(), serial)})
            return final
