"""Issuing: check a record is printable, allocate its number, sign, render, finish, write, record.

The number is committed as pending before anything is signed or written; the PDF is written to a
temporary name and renamed; only then is the number marked issued. A failure in between voids the
number (with the reason), so no number is ever issued twice or silently reused.
"""

from __future__ import annotations

import hashlib
from dataclasses import InitVar, dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certgen.exceptions import CertkioskError, RegisterError
from certgen.files import write_bytes_atomic
from certgen.number import filing_part, format_number
from certgen.payload import sign
from certgen.pdf.finish import CertificateMeta, finish
from certgen.pdf.fonts import CertificateFont, choose_font
from certgen.pdf.photo import PreparedPhoto, prepare_photo
from certgen.pdf.render import layout, render
from certgen.pdf.template import Template, load_template, placeholders
from certgen.record import CertificateRecord
from certgen.secret import Secret
from certgen.station import Station
from certgen.station.register import Register
from certgen.trust import PublicKeyInfo


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
    template: Template = field(init=False)
    font: CertificateFont = field(init=False)
    secret: Secret = field(init=False, repr=False)
    """The passphrase of the institution's private keys (never shown: see certgen.secret)."""
    _keys: dict[bytes, Ed25519PrivateKey] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self, passphrase: str | Secret) -> None:
        self.secret = Secret.of(passphrase)
        self.template = load_template(self.template_name, self.station.home.root / "templates")
        self.font = choose_font(self.font_path, [self.station.home.root / "fonts"])
        self.out_dir = self.out_dir or self.station.home.output_dir
        if self.seal is not None and not self.seal.is_file():
            raise CertkioskError(f"印章文件 {self.seal} 不存在")

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
        sample = record if record.number else record.with_number(
            format_number(key.filing_number, record.issue_date.year, record.level, 999_999)
        )  # fmt: skip
        # every field's characters, printed by this template or not (a template may be switched)
        self.font.require("".join(placeholders(sample).values()), f"{record.name} 的证书")
        layout(sample, self.template, self.font)
        if record.photo is None:
            return None
        return prepare_photo(record.photo, self.template.photo.w, self.template.photo.h)

    def private_key(self, key: PublicKeyInfo) -> Ed25519PrivateKey:
        if key.kid not in self._keys:
            self._keys[key.kid] = self.station.keystore.load(key.kid, self.secret)
        return self._keys[key.kid]

    # --- issuing ---------------------------------------------------------------------------
    def issue(
        self,
        reg: Register,
        record: CertificateRecord,
        *,
        batch_id: str | None = None,
        row_key: str | None = None,
        photo: PreparedPhoto | None = None,
    ) -> Issued:
        """Issue one certificate (see the module docstring for the order of steps)."""
        key = self.key_for(reg, record)
        record = self.complete_record(record, key)
        if photo is None:
            photo = self.check_printable(record, key)
        private = self.private_key(key)
        if record.number is None:
            numbered = reg.allocate(record, key.filing_number, batch_id=batch_id, row_key=row_key, kid=key.kid_hex)
        else:
            numbered = reg.record_supplied(record, batch_id=batch_id, row_key=row_key, kid=key.kid_hex)
        number = str(numbered.number)
        try:
            signed = sign(numbered, self.template.id, private, key.kid)
            raw = render(numbered, self.template, self.font, signed.text, photo, self.seal)
            meta = CertificateMeta(
                number, key.institution, key.filing_number, numbered.issue_date, numbered.to_dict(), signed.text,
                self.template.id,
            )  # fmt: skip
            pdf = finish(raw, meta)
            assert self.out_dir is not None
            path = self.out_dir / (batch_id or "single") / f"{number}.pdf"
            write_bytes_atomic(path, pdf)
            reg.complete(number, payload_sha256=signed.sha256, output_path=str(path), kid=key.kid_hex)
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, CertkioskError) else f"发证中断：{type(exc).__name__}"
            reg.void_pending(reason, number=number)
            raise
        return Issued(
            numbered, path, signed.text, signed.sha256, hashlib.sha256(pdf).hexdigest(),
            photo.warnings if photo else (),
        )  # fmt: skip
