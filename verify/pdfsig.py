"""The PDF signature of an electronic certificate (PAdES, docs/electronic.md), checked with pyHanko.

Facts first (:class:`PdfSignatureFacts`), findings derived from them:

- PDF_SIGNATURE_MISSING: the certificate says it is electronic (its signed QR code has the form
  claim, or the embedded record says so) and the file is a digital PDF (it has our embedded record
  or text), but there is no signature: it was stripped. A paper certificate's PDF, or a scanned
  page, has no signature to check and is verified by its QR code alone;
- PDF_SIGNATURE_INVALID: the signature does not verify (the signed bytes were changed, or the
  signature structure is broken);
- PDF_CHANGED_AFTER_SIGNING: the signature does not cover the whole file: bytes left out of its
  byte range, or an incremental update after it other than a DSS (validation data) update;
- PDF_SIGNER_UNTRUSTED: the signing certificate is not an institution certificate of the trust
  store (exact DER match), its key is revoked, or the signing time is outside its key's validity;
- PDF_SIGNER_MISMATCH: the signer is a trusted institution, but not the one whose key signed the
  QR code.

pyHanko's validation imports neither reportlab nor pikepdf (verify never imports a PDF writer).
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
from dataclasses import dataclass, replace
from typing import Any

from certgen.exceptions import TrustError
from certgen.trust import PublicKeyInfo, TrustBundle
from verify.reasons import Reason
from verify.status import Finding, VerificationStatus


@dataclass(frozen=True)
class PdfSignatureFacts:
    """What was established about a PDF's signature."""

    present: bool
    """Whether the PDF has a filled signature field."""
    intact: bool = False
    """Whether the signed bytes hash to the signed digest and the CMS signature verifies."""
    whole_file: bool = False
    """Whether it covers the whole file (or only a DSS update follows it)."""
    signer: PublicKeyInfo | None = None
    """The trusted institution key whose certificate signed (exact certificate match)."""
    signer_name: str | None = None
    """The signing certificate's subject as it reads, trusted or not."""
    signing_time: _dt.datetime | None = None
    """The time-stamp's time, else the signer's own claim (offline stations have no time-stamp)."""
    timestamped: bool = False
    """Whether the signing time comes from an RFC 3161 time-stamp of a trusted authority (certkiosk
    trusts none yet: a time-stamp in the file is then ignored and the time is the signer's claim)."""
    problem: str | None = None
    """Why the signature could not be read or checked, if it could not."""

    def describe(self) -> str:
        """One line in Chinese for the verify screen."""
        if not self.present:
            return "无PDF签名"
        if not self.intact:
            return "PDF签名无效"
        if not self.whole_file:
            return "PDF签名后文件被改动"
        who = self.signer.institution if self.signer else f"不受信任的签名者 {self.signer_name or ''}".strip()
        when = ""
        if self.signing_time is not None:
            source = "时间戳" if self.timestamped else "签名者声明"
            when = f"，签名时间 {self.signing_time.strftime('%Y-%m-%d %H:%M')}（{source}）"
        return f"PDF签名完好，覆盖全文，签名者：{who}{when}"

    def to_json(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "intact": self.intact,
            "whole_file": self.whole_file,
            "signer_kid": self.signer.kid_hex if self.signer else None,
            "signer_name": self.signer_name,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "timestamped": self.timestamped,
        }


def signature_facts(data: bytes) -> dict[str, Any]:
    """What the PDF's signature is, as JSON-able facts that depend on no trust store (archive runs
    keep them between runs by the file's SHA-256): present, intact, whole_file, the signing
    certificate (DER, base64), its subject, the signing time and whether a time-stamp gave it.
    Who the signer is to this station is decided on every run by :func:`check_pdf_signature`."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        # unreadable signature structures count as a broken signature where the file has a byte range
        return {"present": b"/ByteRange" in data, "problem": f"PDF结构无法读取签名：{exc}"}
    if not signatures:
        return {"present": False}
    sig = signatures[0]  # ours is the first; anything after it is a change after signing
    # The signature's integrity is a fact of the bytes; whom the signer is trusted as is decided on
    # every run (exact certificate match in the trust store). The signing certificate is given as
    # its own root only so that pyHanko's path building succeeds quietly (it logs a traceback
    # for an unknown self-signed certificate); its "trusted" verdict is never used.
    roots = [sig.signer_cert] if sig.signer_cert is not None else []
    context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    # time-stamps get their own context with no root: the signer's certificate above must not vouch
    # for a time-stamp (a signer whose certificate may time-stamp would stamp itself any time)
    no_tsa = ValidationContext(trust_roots=[], allow_fetching=False, revocation_mode="soft-fail")
    try:
        status = validate_pdf_signature(sig, context, ts_validation_context=no_tsa)
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        return {"present": True, "problem": f"签名无法验证：{exc}"}
    level = status.modification_level
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
        status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
        and level is not None
        and level <= ModificationLevel.LTA_UPDATES
        and len(signatures) == 1
    )
    stamp = status.timestamp_validity
    # A time-stamp token is an unsigned attribute: anyone can put one into a signature. Its time is
    # used only when its authority is trusted (``trusted``: a validation path to a root of the
    # time-stamp context, which holds no authority yet), else the time is the signer's claim.
    stamped = stamp is not None and stamp.trusted
    when = stamp.timestamp if stamped and stamp is not None else status.signer_reported_dt
    return {
        "present": True,
        "intact": bool(status.intact and status.valid),
        "whole_file": whole,
        "certificate": base64.b64encode(status.signing_cert.dump()).decode("ascii"),
        "signer_name": status.signing_cert.subject.human_friendly,
        "signing_time": when.isoformat() if when is not None else None,
        "timestamped": stamped,
    }


def _bound(key: PublicKeyInfo) -> bool:
    """Whether the key's certificate names the key (a trust store edited to pair a certificate
    with another institution's key makes that certificate no one's signer)."""
    try:
        key.document_certificate()
    except TrustError:
        return False
    return True


def _facts(found: dict[str, Any], trust: TrustBundle) -> PdfSignatureFacts:
    """The stored facts with the signer looked up in today's trust store (exact certificate match)."""
    der = base64.b64decode(found["certificate"]) if found.get("certificate") else None
    signer = next((k for k in trust.keys if der is not None and k.x509 == der and _bound(k)), None)
    when = found.get("signing_time")
    return PdfSignatureFacts(
        present=bool(found.get("present")),
        intact=bool(found.get("intact")),
        whole_file=bool(found.get("whole_file")),
        signer=signer,
        signer_name=found.get("signer_name"),
        signing_time=_dt.datetime.fromisoformat(when) if when else None,
        timestamped=bool(found.get("timestamped")),
        problem=found.get("problem"),
    )


def _claims_electronic(result: VerificationStatus, embedded: dict[str, Any] | None) -> bool:
    if result.claims is not None and result.intact and result.claims.form == "electronic":
        return True
    return embedded is not None and embedded.get("form") == "electronic"


def findings_for(
    facts: PdfSignatureFacts, result: VerificationStatus, embedded: dict[str, Any] | None, digital: bool
) -> list[Finding]:
    """The reasons the PDF's signature gives against one certificate found in it."""
    if not facts.present:
        if digital and _claims_electronic(result, embedded):
            return [Finding(Reason.PDF_SIGNATURE_MISSING, "电子证书的PDF签名（机构印章）已被去除")]
        return []
    if not facts.intact:
        return [Finding(Reason.PDF_SIGNATURE_INVALID, facts.problem or "签名与所签内容不符：PDF被篡改或签名损坏")]
    found: list[Finding] = []
    if not facts.whole_file:
        found.append(Finding(Reason.PDF_CHANGED_AFTER_SIGNING, "签名没有覆盖整个文件：签名后PDF被改动或追加了内容"))
    signer = facts.signer
    if signer is None:
        found.append(Finding(Reason.PDF_SIGNER_UNTRUSTED, f"签名证书（{facts.signer_name}）不在本站信任库中"))
        return found
    if result.key is not None and result.intact and signer.filing_number != result.key.filing_number:
        found.append(Finding(
            Reason.PDF_SIGNER_MISMATCH,
            f"PDF由「{signer.institution}」（{signer.filing_number}）签名，二维码由「{result.key.institution}」"
            f"（{result.key.filing_number}）签名",
        ))  # fmt: skip
    if facts.signing_time is not None and not signer.valid_on(facts.signing_time.astimezone(_dt.UTC).date()):
        until = signer.valid_until.isoformat() if signer.valid_until else "长期"
        found.append(Finding(
            Reason.PDF_SIGNER_UNTRUSTED,
            f"签名时间 {facts.signing_time.date().isoformat()} 不在签名密钥有效期 "
            f"{signer.valid_from.isoformat()}~{until} 内",
        ))  # fmt: skip
    return found


def check_pdf_signature(
    found: dict[str, Any],
    results: list[VerificationStatus],
    trust: TrustBundle,
    embedded: dict[str, Any] | None,
    digital: bool,
) -> list[VerificationStatus]:
    """Each result of one PDF with its signature's facts and findings added.

    ``digital``: whether the PDF is a born-digital certificate (embedded record or text), not a
    scanned page, so that a missing signature on an electronic certificate can be told apart from
    a scan of its print-out.
    """
    facts = _facts(found, trust)
    if facts.signer is not None:
        revoked = trust.key_revocation(facts.signer.kid)
        if revoked is not None:
            name = f"{facts.signer_name}（密钥已于 {revoked.revoked_at} 吊销）"
            facts = replace(facts, signer=None, signer_name=name)
    checked = []
    for result in results:
        reasons = findings_for(facts, result, embedded, digital)
        checked.append(replace(result, pdf_signature=facts, findings=result.findings + tuple(reasons)))
    return checked
