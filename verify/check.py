"""The check chain for one QR text, from prefix to revocation (pure: no image libraries).

prefix and version -> base45 -> COSE structure -> key by kid in the trust store -> Ed25519
signature -> claims schema -> number rule -> cross-checks (number vs. key, level, year; issue
date vs. key validity and today) -> revocation (certificate, batch, key).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import replace

from certgen.exceptions import PayloadError, RecordError
from certgen.number import ProvinceProfile, check_number, cross_check
from certgen.payload import decode
from certgen.trust import TrustBundle
from verify.reasons import Reason
from verify.status import Finding, VerificationStatus

WEDGE_STRIP = " \t\r\n\x00"


def clean_scanned_text(text: str) -> str:
    """What a keyboard-wedge scanner typed, made decodable.

    Strips surrounding whitespace and the Enter key a scanner sends; upper-cases the text when the
    scanner typed with Caps Lock inverted (base45 has no lower-case letters, so this is lossless).
    """
    text = text.strip(WEDGE_STRIP)
    if text.startswith(("zj", "Zj", "zJ")) and text[4:] == text[4:].lower():
        text = text.upper()
    return text


def verify_text(
    text: str,
    trust: TrustBundle,
    *,
    source: str = "--text",
    page: int | None = None,
    today: _dt.date | None = None,
    profiles: dict[str, ProvinceProfile] | None = None,
) -> VerificationStatus:
    """Run every check on one QR text and return the facts found."""
    today = today or _dt.date.today()
    status = VerificationStatus(source=source, page=page)
    try:
        decoded = decode(text)
    except PayloadError as exc:
        reason = Reason.NOT_OUR_FORMAT if exc.code == "NOT_OUR_FORMAT" else Reason.MALFORMED
        return status.with_finding(reason, str(exc))
    claims, envelope = decoded.claims, decoded.envelope
    status = replace(status, decoded=True, claims=claims, kid=envelope.kid, payload_sha256=decoded.sha256)

    key = trust.key(envelope.kid)
    if key is None:
        return status.with_finding(
            Reason.UNKNOWN_KEY, f"密钥 {envelope.kid.hex()} 不在本站信任库中，请导入签发机构的信任包"
        )
    state = trust.institution(key.filing_number)
    status = replace(
        status, key=key, trusted=True, trust_as_of=state.as_of if state else None,
        trust_age_days=state.age_days(today) if state else None, trust_current=bool(state and state.own),
        stale_after_days=trust.stale_after_days, max_trust_age_days=trust.max_age_days,
    )  # fmt: skip
    if not envelope.verify(key.verifier()):
        return status.with_finding(Reason.BAD_SIGNATURE, f"内容与机构 {key.institution} 的签名不符")
    status = replace(status, intact=True)

    findings: list[Finding] = []
    try:
        claims.record(institution=key.institution, with_number=False)
    except RecordError as exc:
        findings.extend(Finding(Reason.BAD_FIELD, str(e)) for e in exc.errors if e.field != "number")
    except (TypeError, ValueError) as exc:  # pragma: no cover - claims are type-checked when decoded
        findings.append(Finding(Reason.BAD_FIELD, str(exc)))

    number = check_number(claims.number, profiles=profiles, today=today)
    if not number.valid:
        findings.append(Finding(Reason.NUMBER_FORMAT, "；".join(number.errors)))
    else:
        mismatches = cross_check(
            number,
            level=claims.level,
            issue_date=claims.issue_date,
            filing_number=key.filing_number,
            institution=key.institution,
        )
        findings.extend(Finding(Reason(m.code), "证书编号" + m.message) for m in mismatches)
    if not key.valid_on(claims.issue_date):
        until = key.valid_until.isoformat() if key.valid_until else "长期"
        findings.append(Finding(
            Reason.KEY_NOT_VALID_AT_ISSUE,
            f"发证日期 {claims.issue_date.isoformat()} 不在密钥有效期 {key.valid_from.isoformat()}~{until} 内",
        ))  # fmt: skip

    revoked = False
    key_revocation = trust.key_revocation(key.kid)
    if key_revocation is not None:
        revoked = True
        findings.append(Finding(Reason.KEY_REVOKED, f"{key_revocation.revoked_at} 吊销：{key_revocation.reason}"))
    revocation = trust.certificate_revocation(claims.number)
    if revocation is not None:
        revoked = True
        what = "所在批次 " + revocation.target if revocation.scope == "batch" else "证书"
        findings.append(Finding(Reason.REVOKED, f"{what}于 {revocation.revoked_at} 吊销：{revocation.reason}"))
    status = replace(status, revoked=revoked, findings=status.findings + tuple(findings))
    if status.trust_too_old:
        status = status.with_finding(
            Reason.TRUST_DATA_TOO_OLD,
            f"机构 {key.filing_number} 的{status.stale_text}，超过 --max-trust-age {trust.max_age_days} 天："
            "请导入该机构新的信任包",
        )
    return status
