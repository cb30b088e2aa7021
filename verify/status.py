"""The result of verifying one certificate: recorded facts, with the verdict derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from certgen.cells import shown
from certgen.payload import Claims
from certgen.trust import PublicKeyInfo
from verify.reasons import Reason

if TYPE_CHECKING:
    from verify.pdfsig import PdfSignatureFacts

Verdict = Literal["valid", "invalid", "unreadable"]
VERDICT_TEXT: dict[str, str] = {"valid": "有效", "invalid": "无效", "unreadable": "无法读取"}
"""Chinese names of the verdicts."""


@dataclass(frozen=True)
class Finding:
    """One reason with the specific detail behind it."""

    reason: Reason
    """The stable reason code."""
    detail: str
    """The specifics, in Chinese (e.g. which field, which revocation)."""

    def to_json(self) -> dict[str, str]:
        return {"code": self.reason.value, "detail": self.detail}


@dataclass(frozen=True)
class VerificationStatus:
    """Facts established about one certificate; :attr:`status` is derived, never stored."""

    source: str
    """Where it came from: a file path, ``--text`` or ``stdin``."""
    page: int | None = None
    """1-based page (PDF, multi-page TIFF), None for text or single images."""
    decoded: bool = False
    """Whether a certkiosk payload was found and decoded."""
    trusted: bool = False
    """Whether the signing key (by kid) is in the trust store."""
    intact: bool = False
    """Whether the signature is valid, i.e. the content is exactly what the key signed."""
    revoked: bool = False
    """Whether the certificate, its batch or its key is revoked."""
    findings: tuple[Finding, ...] = ()
    """Every reason it is not valid, in the order the checks ran."""
    claims: Claims | None = None
    """The decoded claims (only to be relied on when ``intact`` and ``trusted``)."""
    key: PublicKeyInfo | None = None
    """The trusted key the kid named."""
    kid: bytes | None = None
    """The kid from the payload."""
    payload_sha256: str | None = None
    """SHA-256 of the QR text (archive checks use it to spot copies)."""
    notes: tuple[str, ...] = field(default=())
    """Remarks that do not affect the verdict (e.g. a copy of another file)."""
    trust_as_of: str | None = None
    """When the signing institution's trust data (keys, revocations) was issued, as received."""
    trust_age_days: int | None = None
    """How old that data is, in days, on the day of the check; None when unknown."""
    trust_current: bool = False
    """The institution is this station's own: its revocation data is always current."""
    stale_after_days: int = 30
    """Data older than this is reported as old (the verdict stays valid)."""
    max_trust_age_days: int | None = None
    """Data older than this makes the result invalid (``verify --max-trust-age``); None: no limit."""

    @property
    def trust_stale(self) -> bool:
        """Whether the revocation data behind this result is older than ``stale_after_days`` (or of
        unknown age): a valid result may then miss a recent revocation."""
        return self._older_than(self.stale_after_days)

    @property
    def trust_too_old(self) -> bool:
        """Whether the data is older than the strict limit ``max_trust_age_days``."""
        return self.max_trust_age_days is not None and self._older_than(self.max_trust_age_days)

    def _older_than(self, days: int) -> bool:
        if self.key is None or self.trust_current:
            return False
        return self.trust_age_days is None or self.trust_age_days > days

    @property
    def trust_text(self) -> str:
        """The freshness of the revocation data, in Chinese, e.g. ``吊销数据 3 天前``."""
        if self.key is None:
            return ""
        if self.trust_current:
            return "吊销数据：本站机构，最新"
        if self.trust_age_days is None:
            return "吊销数据：更新时间未知"
        return f"吊销数据 {self.trust_age_days} 天前（{self.trust_as_of}）"

    pdf_signature: PdfSignatureFacts | None = None
    """For a PDF: what its signature (an electronic certificate's seal) was found to be."""

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return tuple(f.reason for f in self.findings)

    @property
    def status(self) -> Verdict:
        if any(r.unreadable for r in self.reasons):
            return "unreadable"
        if self.findings or not (self.decoded and self.trusted and self.intact) or self.revoked:
            return "invalid"
        if self.trust_too_old:
            return "invalid"
        return "valid"

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    @property
    def institution(self) -> str | None:
        return self.key.institution if self.key else None

    @property
    def stale_text(self) -> str:
        """``吊销数据已 N 天未更新`` (or of unknown age), for a result whose data is old."""
        if self.trust_age_days is None:
            return "吊销数据更新时间未知"
        return f"吊销数据已 {self.trust_age_days} 天未更新"

    def with_finding(self, reason: Reason, detail: str) -> VerificationStatus:
        from dataclasses import replace

        return replace(self, findings=(*self.findings, Finding(reason, detail)))

    def summary(self) -> dict[str, Any]:
        """The machine-readable form: one JSON object per certificate."""
        return {
            "source": shown(self.source),
            "page": self.page,
            "status": self.status,
            "reasons": [f.reason.value for f in self.findings],
            "details": [f.to_json() for f in self.findings],
            "number": self.claims.number if self.claims else None,
            "claims": self.claims.to_json() if self.claims else None,
            "institution": (
                {"filing_number": self.key.filing_number, "name": self.key.institution} if self.key else None
            ),
            "kid": self.kid.hex() if self.kid else None,
            "facts": {"decoded": self.decoded, "trusted": self.trusted, "intact": self.intact, "revoked": self.revoked},
            "trust": {
                "as_of": self.trust_as_of,
                "age_days": self.trust_age_days,
                "current": self.trust_current,
                "stale": self.trust_stale,
                "stale_after_days": self.stale_after_days,
                "max_age_days": self.max_trust_age_days,
            },
            "notes": list(self.notes),
            "pdf_signature": self.pdf_signature.to_json() if self.pdf_signature else None,
        }

    def line(self) -> str:
        """One line in Chinese for people: verdict, holder, number, level, institution, reasons.

        Every piece that came from outside (file name, signed text, details quoting them) goes
        through :func:`certgen.cells.shown`: no control character, escape sequence or bidi
        override reaches the terminal, so nothing can draw a fake verdict line.
        """
        verdict = {"valid": "✓ 有效", "invalid": "✗ 无效", "unreadable": "? 无法读取"}[self.status]
        if self.status == "valid" and self.trust_stale:
            verdict = "✓ 有效（" + self.stale_text + "）"
        where = self.source + (f" 第{self.page}页" if self.page else "")
        parts = [verdict, where]
        if self.claims and self.intact:
            from certgen.levels import LEVELS

            level = LEVELS[self.claims.level].text if self.claims.level in LEVELS else str(self.claims.level)
            parts += [self.claims.name, self.claims.number, level]
        if self.key:
            parts += [self.key.institution, self.trust_text]
        text = "  ".join(shown(part) for part in parts)
        if self.pdf_signature is not None and self.pdf_signature.present:
            text += "\n    " + shown(self.pdf_signature.describe())
        if self.findings:
            text += "\n" + "\n".join(f"    {f.reason.value} {f.reason.text}：{shown(f.detail)}" for f in self.findings)
        return text


def worst_first(results: list[VerificationStatus]) -> list[VerificationStatus]:
    """The results of one file or page with a failing one first (otherwise in the page's order).

    Whatever shows one result large (the station's verify screen, the kiosk) shows this first one:
    a genuine certificate beside a forged one must never put a big ✓ on the screen.
    """
    return sorted(results, key=lambda r: r.valid)
