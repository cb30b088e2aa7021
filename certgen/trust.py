"""The trust store of a verifying station: trusted institution keys and revocations.

A trust bundle is the same JSON document, canonically encoded so that its SHA-256 fingerprint can
be compared out of band (read aloud on the phone, printed on a letter). Pure apart from reading
and atomically writing the store file.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from certgen.exceptions import TrustError
from certgen.files import write_bytes_atomic
from certgen.number import check_filing_number

KID_LENGTH = 8


def kid_of(raw_public_key: bytes) -> bytes:
    """The key id: the first 8 bytes of SHA-256 of the raw 32-byte Ed25519 public key."""
    return hashlib.sha256(raw_public_key).digest()[:KID_LENGTH]


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes_raw()


_BOUND: set[tuple[bytes, bytes, str, str]] = set()
"""Certificates already checked against their key: (DER, kid, institution, filing number)."""


@dataclass(frozen=True)
class PublicKeyInfo:
    """What a verifying station needs to know of one institution key."""

    kid: bytes
    """Key id: SHA-256(public key)[:8]; the COSE header carries it."""
    public_key: bytes
    """The raw 32-byte Ed25519 public key."""
    filing_number: str
    """The institution's filing number (机构备案号), 13 characters."""
    institution: str
    """The institution's name as filed, printed as 评价机构."""
    valid_from: _dt.date
    """First day certificates may be issued with this key."""
    valid_until: _dt.date | None
    """Last day certificates may be issued with this key; None while open-ended."""
    x509: bytes | None = None
    """The institution's document-signing certificate (DER) for this key, for signed PDFs; None for
    keys made before electronic certificates (``certkiosk keys x509`` adds one)."""

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise TrustError(f"公钥长度应为32字节，收到 {len(self.public_key)} 字节")
        if kid_of(self.public_key) != self.kid:
            raise TrustError(f"密钥标识 {self.kid.hex()} 与公钥不符（应为 {kid_of(self.public_key).hex()}）")
        check = check_filing_number(self.filing_number)
        if not check.valid:
            raise TrustError(f"机构备案号「{self.filing_number}」无效：" + "；".join(check.errors))
        if not self.institution.strip():
            raise TrustError(f"密钥 {self.kid.hex()} 缺少机构名称")
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise TrustError(f"密钥 {self.kid.hex()} 的有效期结束日早于开始日")

    def document_certificate(self) -> bytes | None:
        """The document-signing certificate (DER) once it is checked to name this key's kid,
        institution and filing number (TrustError otherwise); None for a key without one.

        Checked here, on use, not when the key is read: parsing X.509 loads cryptography's whole
        X.509 machinery (~30 ms), which a QR code's verification never needs. Everything that
        relies on the certificate (a PDF signature's signer, signing, exporting) reads it through
        this method, and a bundle's keys are checked when the bundle is read."""
        if self.x509 is None:
            return None
        bound = (self.x509, self.kid, self.institution, self.filing_number)
        if bound not in _BOUND:
            from certgen.docsign import check_binding  # cryptography's X.509 machinery: only here

            check_binding(self.x509, kid=self.kid, institution=self.institution, filing_number=self.filing_number)
            _BOUND.add(bound)
        return self.x509

    @property
    def kid_hex(self) -> str:
        return self.kid.hex()

    def verifier(self) -> Ed25519PublicKey:
        """The cryptography object that checks signatures."""
        return Ed25519PublicKey.from_public_bytes(self.public_key)

    def valid_on(self, day: _dt.date) -> bool:
        """Whether a certificate issued on ``day`` falls inside this key's validity window."""
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)

    def with_x509(self, der: bytes | None) -> PublicKeyInfo:
        """The same key with this document-signing certificate."""
        return replace(self, x509=der)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kid": self.kid.hex(),
            "public_key": base64.b64encode(self.public_key).decode("ascii"),
            "filing_number": self.filing_number,
            "institution": self.institution,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }
        if self.x509 is not None:  # absent rather than null: bundles without certificates keep their bytes
            data["x509"] = base64.b64encode(self.x509).decode("ascii")
        return data

    @classmethod
    def from_json(cls, data: Any) -> PublicKeyInfo:
        try:
            until = data["valid_until"]
            der = data.get("x509")
            return cls(
                kid=bytes.fromhex(data["kid"]),
                public_key=base64.b64decode(data["public_key"], validate=True),
                filing_number=str(data["filing_number"]),
                institution=str(data["institution"]),
                valid_from=_dt.date.fromisoformat(data["valid_from"]),
                valid_until=_dt.date.fromisoformat(until) if until else None,
                x509=base64.b64decode(der, validate=True) if der is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TrustError(f"密钥记录格式错误：{exc!r}") from None


BUNDLE_FORMAT = "certkiosk-trust/1"
BUNDLE_MAX_BYTES = 16 * 1024 * 1024
"""Largest bundle or trust store read (a batch of 100,000 revoked numbers is about 2.5 MB)."""
STALE_AFTER_DAYS = 30
"""Default age (days) beyond which an institution's revocation data counts as old."""
Scope = Literal["certificate", "batch", "key"]
SCOPES: tuple[Scope, ...] = ("certificate", "batch", "key")


@dataclass(frozen=True)
class Revocation:
    """One revocation: a certificate, a whole batch, or a key."""

    scope: Scope
    """What is revoked: ``certificate``, ``batch`` or ``key``."""
    target: str
    """The certificate number, the batch id, or the kid in hex."""
    reason: str
    """Why, in the issuer's words."""
    revoked_at: str
    """When, as an ISO 8601 UTC timestamp."""
    numbers: tuple[str, ...] = ()
    """For a batch: every certificate number in it, so verifiers need no register."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "scope": self.scope,
            "target": self.target,
            "reason": self.reason,
            "revoked_at": self.revoked_at,
        }
        if self.numbers:
            data["numbers"] = list(self.numbers)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Revocation:
        """Read one revocation strictly: every field of its JSON type, or TrustError naming it."""
        if not isinstance(data, dict):
            raise TrustError(f"吊销记录应为 JSON 对象，收到 {type(data).__name__}")
        scope = _field(data, "scope", str, "吊销记录")
        if scope not in SCOPES:
            raise TrustError(f"吊销记录的 scope 应为 {'、'.join(SCOPES)} 之一，收到 {scope!r}")
        numbers = data.get("numbers", [])
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise TrustError(f"吊销记录的 numbers 应为证书编号（文本）的列表，收到 {type(numbers).__name__}")
        if scope == "batch" and not numbers:
            raise TrustError("批次吊销记录的 numbers 不能为空：它须列出批次中的每个证书编号")
        return cls(
            scope=scope,
            target=_field(data, "target", str, "吊销记录"),
            reason=_field(data, "reason", str, "吊销记录"),
            revoked_at=_field(data, "revoked_at", str, "吊销记录"),
            numbers=tuple(numbers),
        )


KEY_FIELDS: dict[str, type | tuple[type, ...]] = {
    "kid": str, "public_key": str, "filing_number": str, "institution": str, "valid_from": str,
    "valid_until": (str, type(None)),
}  # fmt: skip
OPTIONAL_KEY_FIELDS: dict[str, type | tuple[type, ...]] = {"x509": str}
"""The JSON type of every field of a key entry."""


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if name not in data:
        raise TrustError(f"{what}格式错误：缺少字段 {name}")
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TrustError(f"{what}格式错误：{name} 的类型不对（收到 {type(value).__name__}）")
    return value


def key_from_json(data: Any) -> PublicKeyInfo:
    """A key entry read strictly: every field of its JSON type (TrustError naming the field)."""
    if not isinstance(data, dict):
        raise TrustError(f"密钥记录应为 JSON 对象，收到 {type(data).__name__}")
    for name, kind in KEY_FIELDS.items():
        _field(data, name, kind, "密钥记录")
    for name, kind in OPTIONAL_KEY_FIELDS.items():
        if name in data:
            _field(data, name, kind, "密钥记录")
    return PublicKeyInfo.from_json(data)


@dataclass(frozen=True)
class Endorsement:
    """A roll-over: an institution's older key vouching for its new key."""

    kid: bytes
    """The new key's kid."""
    by: bytes
    """The kid of the older key that signed."""
    signature: bytes
    """Detached COSE_Sign1 by ``by`` over :func:`endorsement_content` of the new key."""

    def to_json(self) -> dict[str, Any]:
        return {"kid": self.kid.hex(), "by": self.by.hex(), "signature": base64.b64encode(self.signature).decode()}

    @classmethod
    def from_json(cls, data: Any) -> Endorsement:
        try:
            return cls(
                bytes.fromhex(data["kid"]), bytes.fromhex(data["by"]),
                base64.b64decode(data["signature"], validate=True),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise TrustError(f"密钥轮换签名格式错误：{exc!r}") from None


def endorsement_content(info: PublicKeyInfo) -> bytes:
    """What an older key signs to vouch for a new one: the binding of kid, key and filing number."""
    doc = {
        "purpose": "certkiosk-key-rollover/1",
        "kid": info.kid.hex(),
        "public_key": base64.b64encode(info.public_key).decode("ascii"),
        "filing_number": info.filing_number,
    }
    return canonical_json(doc)


def read_trust_json(data: bytes, source: str) -> Any:
    """A trust document's JSON (store, bundle, bundle body), read within BUNDLE_MAX_BYTES: TrustError
    naming ``source`` for one too large, not UTF-8 JSON, or nested too deep (never a traceback)."""
    if len(data) > BUNDLE_MAX_BYTES:
        raise TrustError(f"{source} 过大：{len(data)} 字节，上限 {BUNDLE_MAX_BYTES} 字节")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrustError(f"{source} 不是有效的 JSON：{exc}") from None
    except RecursionError:
        raise TrustError(f"{source} 嵌套过深，不是有效的信任包") from None


def canonical_json(doc: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 (what bundles and manifests sign)."""
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def key_fingerprint(info: PublicKeyInfo) -> str:
    """SHA-256 of the raw public key, in hex (its first 16 digits are the kid)."""
    return hashlib.sha256(info.public_key).hexdigest()


@dataclass(frozen=True)
class InstitutionTrust:
    """What a station knows about the freshness of one institution's trust data."""

    filing_number: str
    """The institution's filing number."""
    own: bool = False
    """This station issues for the institution: its data is always current."""
    as_of: str | None = None
    """Issue time (ISO 8601 UTC) of the newest bundle up to which every update was received."""
    sequence: int = 0
    """The highest bundle sequence whose keys were applied (an older bundle changes no key)."""
    covered: int = 0
    """Every update up to this sequence has been received."""
    pending: tuple[tuple[int, int, str], ...] = ()
    """Updates received beyond a gap: (since, sequence, issued_at)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "filing_number": self.filing_number, "own": self.own, "as_of": self.as_of, "sequence": self.sequence,
            "covered": self.covered, "pending": [list(p) for p in self.pending],
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> InstitutionTrust:
        try:
            return cls(
                str(data["filing_number"]), bool(data.get("own", False)),
                None if data.get("as_of") is None else str(data["as_of"]), int(data.get("sequence", 0)),
                int(data.get("covered", 0)), tuple((int(a), int(b), str(c)) for a, b, c in data.get("pending", ())),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise TrustError(f"机构信任状态格式错误：{exc!r}") from None

    def gaps(self) -> list[tuple[int, int]]:
        """The missing sequence ranges (first, last) between what is covered and what arrived."""
        missing, cursor = [], self.covered
        for since, seq, _ in sorted(self.pending):
            if since > cursor:
                missing.append((cursor + 1, since))
            cursor = max(cursor, seq)
        return missing

    def age_days(self, today: _dt.date) -> int | None:
        """Days since ``as_of`` (0 for the station's own institution); None when unknown."""
        if self.own:
            return 0
        if self.as_of is None:
            return None
        return (today - _dt.date.fromisoformat(self.as_of[:10])).days


def gap_text(gaps: list[tuple[int, int]]) -> str:
    """``缺少更新 4-6`` for the gaps of :meth:`InstitutionTrust.gaps`."""
    return "缺少更新 " + "、".join(f"{a}-{b}" if a != b else str(a) for a, b in gaps)


@dataclass(frozen=True)
class TrustBundle:
    """Trusted keys and revocations; the content of the trust store and of exported bundles."""

    keys: tuple[PublicKeyInfo, ...] = ()
    """Trusted institution keys."""
    revocations: tuple[Revocation, ...] = ()
    """Revoked certificates, batches and keys."""
    institutions: tuple[InstitutionTrust, ...] = ()
    """Per institution: own or not, and how fresh its data is."""
    endorsements: tuple[Endorsement, ...] = ()
    """Roll-over signatures this station made (exported with its bundles)."""
    stale_after_days: int = STALE_AFTER_DAYS
    """Revocation data older than this is reported as old (the verdict stays valid)."""
    max_age_days: int | None = field(default=None, compare=False)
    """When set (``verify --max-trust-age``), data older than this makes a result invalid."""
    _by_kid: dict[bytes, PublicKeyInfo] = field(default_factory=dict, init=False, compare=False, repr=False)
    _revoked_numbers: dict[str, Revocation] = field(default_factory=dict, init=False, compare=False, repr=False)
    _revoked_kids: dict[str, Revocation] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for info in self.keys:
            if info.kid in self._by_kid:
                raise TrustError(f"信任库中密钥 {info.kid.hex()} 重复")
            self._by_kid[info.kid] = info
        for rev in self.revocations:
            if rev.scope == "key":
                self._revoked_kids.setdefault(rev.target, rev)
            elif rev.scope == "certificate":
                self._revoked_numbers.setdefault(rev.target, rev)
            else:
                for number in rev.numbers:
                    self._revoked_numbers.setdefault(number, rev)

    # --- queries ---------------------------------------------------------------------------
    def key(self, kid: bytes) -> PublicKeyInfo | None:
        """The trusted key with this kid, or None."""
        return self._by_kid.get(kid)

    def key_revocation(self, kid: bytes) -> Revocation | None:
        """The revocation of key ``kid``, or None."""
        return self._revoked_kids.get(kid.hex())

    def certificate_revocation(self, number: str) -> Revocation | None:
        """The revocation (of the certificate itself or of its batch) that covers ``number``."""
        return self._revoked_numbers.get(number)

    def revocation_of(self, number: str, kid_hex: str | None) -> Revocation | None:
        """The revocation that covers the certificate ``number`` signed with the key ``kid_hex``:
        its own, its batch's or its key's (what verify finds for it), or None."""
        found = self.certificate_revocation(number)
        if found is None and kid_hex:
            found = self.key_revocation(bytes.fromhex(kid_hex))
        return found

    def institution(self, filing_number: str) -> InstitutionTrust | None:
        """The freshness record of an institution, or None when nothing is recorded."""
        for item in self.institutions:
            if item.filing_number == filing_number:
                return item
        return None

    def keys_of(self, filing_number: str) -> list[PublicKeyInfo]:
        """The trusted keys bound to one filing number."""
        return [k for k in self.keys if k.filing_number == filing_number]

    def with_institution(self, item: InstitutionTrust) -> TrustBundle:
        """A bundle with ``item`` replacing the record of its institution."""
        rest = tuple(i for i in self.institutions if i.filing_number != item.filing_number)
        return replace(self, institutions=(*rest, item))

    def with_endorsement(self, item: Endorsement) -> TrustBundle:
        rest = tuple(e for e in self.endorsements if e.kid != item.kid)
        return replace(self, endorsements=(*rest, item))

    # --- encoding --------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, fixed order of entries): equal bundles, equal bytes."""
        doc: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "keys": [k.to_json() for k in sorted(self.keys, key=lambda k: k.kid)],
            "revocations": [
                r.to_json() for r in sorted(self.revocations, key=lambda r: (r.scope, r.target, r.revoked_at))
            ],
        }
        if self.institutions:
            doc["institutions"] = [i.to_json() for i in sorted(self.institutions, key=lambda i: i.filing_number)]
        if self.endorsements:
            doc["endorsements"] = [e.to_json() for e in sorted(self.endorsements, key=lambda e: e.kid)]
        if self.stale_after_days != STALE_AFTER_DAYS:
            doc["stale_after_days"] = self.stale_after_days
        return (json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")

    def fingerprint(self) -> str:
        """SHA-256 of :meth:`to_bytes`, in hex."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "信任包") -> TrustBundle:
        doc = read_trust_json(data, source)
        if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
            raise TrustError(f'{source} 不是 certkiosk 信任包（应有 "format": "{BUNDLE_FORMAT}"）')
        entries: dict[str, list[Any]] = {}
        for name in ("keys", "revocations", "institutions", "endorsements"):
            value = doc.get(name, [])
            if not isinstance(value, list):
                raise TrustError(f"{source}：{name} 应为列表，收到 {type(value).__name__}，整个信任包未导入")
            entries[name] = value
        try:
            keys = tuple(key_from_json(k) for k in entries["keys"])
            revocations = tuple(Revocation.from_json(r) for r in entries["revocations"])
            institutions = tuple(InstitutionTrust.from_json(i) for i in entries["institutions"])
            endorsements = tuple(Endorsement.from_json(e) for e in entries["endorsements"])
            stale = doc.get("stale_after_days", STALE_AFTER_DAYS)
            if not isinstance(stale, int) or isinstance(stale, bool) or not 1 <= stale <= 3650:
                raise TrustError(f"stale_after_days 应为1-3650的整数，收到 {stale!r}")
        except TrustError as exc:
            raise TrustError(f"{source}：{exc}，整个信任包未导入") from None
        return cls(keys, revocations, institutions, endorsements, stale)

    # --- changes ---------------------------------------------------------------------------
    def with_key(self, info: PublicKeyInfo) -> TrustBundle:
        """A bundle that also trusts ``info`` (replacing the entry with the same kid)."""
        return replace(self, keys=(*tuple(k for k in self.keys if k.kid != info.kid), info))

    def with_revocations(self, revocations: Iterable[Revocation]) -> TrustBundle:
        """A bundle with these revocations added (ones already present are not repeated)."""
        known = {(r.scope, r.target) for r in self.revocations}
        new = tuple(r for r in revocations if (r.scope, r.target) not in known)
        return replace(self, revocations=self.revocations + new)


class TrustStore:
    """The trust store file of a station home."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> TrustBundle:
        """The stored bundle; an empty one when the station has none yet."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return TrustBundle()
        except OSError as exc:
            raise TrustError(f"无法读取信任库 {self.path}：{exc.strerror}") from None
        return TrustBundle.from_bytes(data, f"信任库 {self.path}")

    def save(self, bundle: TrustBundle) -> None:
        write_bytes_atomic(self.path, bundle.to_bytes())

    def exists(self) -> bool:
        return self.path.is_file()


SCOPE_TEXT: dict[str, str] = {"certificate": "证书", "batch": "批次", "key": "密钥"}
"""Chinese names of the revocation scopes."""


def freshness_lines(bundle: TrustBundle, today: _dt.date) -> list[str]:
    """One line per institution: how old its trust data is (``trust list``, the home screen)."""
    names = {k.filing_number: k.institution for k in bundle.keys}
    lines = []
    for f in sorted(names):
        state = bundle.institution(f)
        age = state.age_days(today) if state else None
        if state is not None and state.own:
            text = "本站机构，始终为最新"
        elif age is None:
            text = "数据时间未知（请导入该机构新的签名信任包）"
        else:
            text = f"数据签发于 {state.as_of}，{age} 天前" if state else ""
            if age > bundle.stale_after_days:
                text += f"（已超过 {bundle.stale_after_days} 天，请索取新的信任包）"
        if state is not None and state.gaps():
            text += "；" + gap_text(state.gaps())
        lines.append(f"  {f} {names[f]}：{text}")
    return lines


def grouped_fingerprint(fingerprint: str) -> str:
    """A hex fingerprint in groups of four, for reading aloud: ``86eb 99eb 666a ...``."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def utc_now() -> str:
    """The current time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
