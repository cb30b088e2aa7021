"""Signed trust bundles: what one institution says about its own keys and revocations.

A bundle file is a small JSON envelope::

    {"format": "certkiosk-trust-signed/1", "signer": b64(raw Ed25519 public key),
     "body": b64(canonical JSON body), "signature": b64(detached COSE_Sign1 over the body)}

The signature is checked before the body is read. The body names its institution (filing
number), issue time and sequence number; it may carry only that institution's keys, roll-over
signatures and revocations. :func:`apply_bundle` decides what a station accepts (docs/trust.md).
Pure: JSON, cryptography and the COSE code of :mod:`certgen.payload`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from certgen.exceptions import PayloadError, TrustConflict, TrustError
from certgen.payload import parse_cose, sign_detached
from certgen.trust import (
    Endorsement,
    InstitutionTrust,
    PublicKeyInfo,
    Revocation,
    TrustBundle,
    canonical_json,
    endorsement_content,
    gap_text,
    grouped_fingerprint,
    key_fingerprint,
    key_from_json,
    kid_of,
    raw_public,
    read_trust_json,
)

SIGNED_FORMAT = "certkiosk-trust-signed/1"
BODY_FORMAT = "certkiosk-trust/2"
_ENVELOPE_KEYS = {"format", "signer", "body", "signature"}
_BODY_KEYS = {
    "format", "filing_number", "institution", "issued_at", "sequence", "since", "keys", "revocations",
    "endorsements",
}  # fmt: skip


@dataclass(frozen=True)
class BundleBody:
    """The signed content of a bundle."""

    filing_number: str
    """The institution the bundle speaks for."""
    institution: str
    """Its name."""
    issued_at: str
    """When it was exported (ISO 8601 UTC): the freshness of the data it carries."""
    sequence: int
    """The exporting station's counter for this institution, from 1, never reused."""
    since: int | None
    """For an update: the sequence it continues (it carries only what changed after it)."""
    keys: tuple[PublicKeyInfo, ...]
    """Every key of the institution."""
    revocations: tuple[Revocation, ...]
    """Its revocations (all of them, or those made since ``since``)."""
    endorsements: tuple[Endorsement, ...] = ()
    """Roll-over signatures: older keys vouching for newer ones."""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BODY_FORMAT, "filing_number": self.filing_number, "institution": self.institution,
            "issued_at": self.issued_at, "sequence": self.sequence, "since": self.since,
            "keys": [k.to_json() for k in sorted(self.keys, key=lambda k: k.kid)],
            "revocations": [
                r.to_json() for r in sorted(self.revocations, key=lambda r: (r.scope, r.target, r.revoked_at))
            ],
            "endorsements": [e.to_json() for e in sorted(self.endorsements, key=lambda e: e.kid)],
        }  # fmt: skip

    def to_bytes(self) -> bytes:
        """Canonical JSON: what the signature covers."""
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> BundleBody:
        doc = read_trust_json(data, "信任包内容")
        if not isinstance(doc, dict) or doc.get("format") != BODY_FORMAT or set(doc) != _BODY_KEYS:
            raise TrustError(f"信任包内容格式不符（应为 {BODY_FORMAT}，字段 {sorted(_BODY_KEYS)}）")
        for name in ("keys", "revocations", "endorsements"):
            if not isinstance(doc[name], list):
                raise TrustError(f"信任包内容：{name} 应为列表，收到 {type(doc[name]).__name__}，整个信任包未导入")
        sequence, since = doc["sequence"], doc["since"]
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
            raise TrustError(f"信任包序号应为正整数，收到 {sequence!r}")
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or not 0 <= since < sequence):
            raise TrustError(f"更新包的起始序号应为小于 {sequence} 的非负整数，收到 {since!r}")
        try:
            issued = str(doc["issued_at"])
            _dt.datetime.fromisoformat(issued.replace("Z", "+00:00"))
            body = cls(
                str(doc["filing_number"]), str(doc["institution"]), issued, sequence, since,
                tuple(key_from_json(k) for k in doc["keys"]),
                tuple(Revocation.from_json(r) for r in doc["revocations"]),
                tuple(Endorsement.from_json(e) for e in doc["endorsements"]),
            )  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise TrustError(f"信任包内容格式错误：{exc}") from None
        if body.to_bytes() != data:
            raise TrustError("信任包内容不是规范编码（键排序、无空白、UTF-8）")
        for key in body.keys:  # each certificate must name its key: refused here, not on first use
            key.document_certificate()
        return body


@dataclass(frozen=True)
class SignedBundle:
    """A bundle whose signature has been checked (by the key named ``signer``)."""

    body: BundleBody
    """The signed content."""
    signer: PublicKeyInfo
    """The key that signed it, as the body lists it."""
    fingerprint: str
    """SHA-256 of the file, in hex (to compare out of band)."""


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise TrustError(f"信任包的 {what} 应为 base64 文本")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TrustError(f"信任包的 {what} 不是有效的 base64") from None


def make_bundle(body: BundleBody, key: Ed25519PrivateKey) -> bytes:
    """The signed bundle file for ``body``, signed by ``key`` (which ``body.keys`` must hold)."""
    public = raw_public(key.public_key())
    kid = kid_of(public)
    if not any(k.kid == kid for k in body.keys):
        raise TrustError(f"签名密钥 {kid.hex()} 不在信任包中")
    content = body.to_bytes()
    envelope = {
        "format": SIGNED_FORMAT,
        "signer": base64.b64encode(public).decode("ascii"),
        "body": base64.b64encode(content).decode("ascii"),
        "signature": base64.b64encode(sign_detached(content, key, kid)).decode("ascii"),
    }
    return json.dumps(envelope, indent=1, sort_keys=True).encode("ascii") + b"\n"


def open_bundle(data: bytes, source: str = "信任包") -> SignedBundle:
    """Check the signature, then read the body; TrustError with the reason otherwise."""
    envelope = read_trust_json(data, source)
    if not isinstance(envelope, dict) or envelope.get("format") != SIGNED_FORMAT:
        if isinstance(envelope, dict) and ("keys" in envelope or "revocations" in envelope):
            raise TrustError(f"{source} 没有签名（旧格式或签名被去掉）：拒绝导入，请向签发机构索取签名的信任包")
        raise TrustError(f'{source} 不是 certkiosk 签名信任包（应有 "format": "{SIGNED_FORMAT}"）')
    if set(envelope) != _ENVELOPE_KEYS:
        raise TrustError(f"{source} 的字段应为 {sorted(_ENVELOPE_KEYS)}，实际为 {sorted(envelope)}")
    signer = _b64(envelope["signer"], "signer")
    content = _b64(envelope["body"], "body")
    cose = _b64(envelope["signature"], "signature")
    if len(signer) != 32:
        raise TrustError(f"{source} 的签名公钥应为32字节，实际为{len(signer)}字节")
    try:
        parsed = parse_cose(cose, detached=content)
    except PayloadError as exc:
        raise TrustError(f"{source} 的签名结构无效：{exc}") from None
    if parsed.kid != kid_of(signer):
        raise TrustError(f"{source} 的签名密钥标识 {parsed.kid.hex()} 与签名公钥不符")
    if not parsed.verify(Ed25519PublicKey.from_public_bytes(signer)):
        raise TrustError(f"{source} 签名无效：内容在签名后被改动，拒绝导入")
    body = BundleBody.from_bytes(content)
    listed = next((k for k in body.keys if k.kid == parsed.kid), None)
    if listed is None or listed.public_key != signer:
        raise TrustError(f"{source} 由不在包内的密钥 {parsed.kid.hex()} 签名：拒绝导入")
    return SignedBundle(body, listed, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class ImportResult:
    """What importing a bundle changed."""

    bundle: TrustBundle
    """The trust store after the import."""
    signed: SignedBundle
    """The bundle imported."""
    how: str
    """How the signer was trusted: ``first`` (first contact), ``trusted``, ``rollover``, ``operator``."""
    added_keys: tuple[str, ...] = ()
    """Kids (hex) newly trusted."""
    updated_keys: tuple[str, ...] = ()
    """Kids whose name or validity changed."""
    added_revocations: int = 0
    """Revocations not known before."""
    older: bool = False
    """The bundle is older than one already applied: its keys changed nothing."""
    gaps: tuple[tuple[int, int], ...] = ()
    """Updates still missing for this institution (first, last sequence)."""

    @property
    def gap_text(self) -> str:
        return gap_text(list(self.gaps)) if self.gaps else ""


def _refuse(message: str) -> TrustConflict:
    return TrustConflict(message + "：拒绝导入整个信任包，未做任何更改")


def _check_scope(store: TrustBundle, body: BundleBody) -> None:
    """A bundle speaks only for its institution: refuse any foreign statement."""
    f = body.filing_number
    own_kids = {k.kid.hex() for k in body.keys} | {k.kid.hex() for k in store.keys_of(f)}
    for info in body.keys:
        if info.filing_number != f:
            raise _refuse(
                f"机构 {f} 的信任包中含有其他机构 {info.filing_number}（{info.institution}）的密钥 {info.kid_hex}"
            )
        mine = store.key(info.kid)
        if mine is not None and (mine.public_key != info.public_key or mine.filing_number != f):
            raise _refuse(
                f"密钥 {info.kid_hex} 已作为 {mine.filing_number}（{mine.institution}）的密钥受信，与信任包不符"
            )
    for rev in body.revocations:
        if rev.scope == "certificate" and not rev.target.startswith(f):
            raise _refuse(f"机构 {f} 的信任包要吊销其他机构的证书 {rev.target}")
        if rev.scope == "batch" and (not rev.numbers or any(not n.startswith(f) for n in rev.numbers)):
            raise _refuse(f"机构 {f} 的信任包要吊销的批次 {rev.target} 含有其他机构的证书或没有列出证书编号")
        if rev.scope == "key" and rev.target not in own_kids:
            raise _refuse(f"机构 {f} 的信任包要吊销不属于它的密钥 {rev.target}")
    for item in body.endorsements:
        if item.kid.hex() not in own_kids or item.by.hex() not in own_kids:
            raise _refuse(f"机构 {f} 的信任包中的轮换签名涉及不属于它的密钥")


def _endorsed(store: TrustBundle, body: BundleBody, trusted: set[bytes]) -> set[bytes]:
    """The kids reachable from ``trusted`` through valid roll-over signatures in the bundle."""
    keys = {k.kid: k for k in (*store.keys_of(body.filing_number), *body.keys)}
    reached, changed = set(trusted), True
    while changed:
        changed = False
        for item in body.endorsements:
            if item.kid in reached or item.by not in reached or item.kid not in keys or item.by not in keys:
                continue
            try:
                parsed = parse_cose(item.signature, detached=endorsement_content(keys[item.kid]))
            except PayloadError:
                continue
            if parsed.kid == item.by and parsed.verify(keys[item.by].verifier()):
                reached.add(item.kid)
                changed = True
    return reached


def normalise_fingerprint(text: str) -> str:
    return "".join(text.split()).lower()


def signer_standing(store: TrustBundle, signed: SignedBundle) -> str | None:
    """How far ``store`` already trusts the bundle's signer: ``first`` (nothing known of the
    institution), ``trusted``, ``rollover`` (vouched for by a trusted key), or None (a new key for
    a known institution: only the operator can accept it). TrustConflict for a revoked signer.
    """
    body, signer = signed.body, signed.signer
    known = store.keys_of(body.filing_number)
    revoked = {r.target for r in store.revocations if r.scope == "key"}
    if signer.kid_hex in revoked:
        raise _refuse(f"信任包由已吊销的密钥 {signer.kid_hex} 签名")
    trusted = {k.kid for k in known if k.kid_hex not in revoked}
    if not known:
        return "first"
    if signer.kid in trusted:
        return "trusted"
    if signer.kid in _endorsed(store, body, trusted):
        return "rollover"
    return None


def apply_bundle(store: TrustBundle, signed: SignedBundle, *, accept_fingerprint: str | None = None) -> ImportResult:
    """Merge a verified bundle into ``store`` under the trust rules; TrustConflict changes nothing.

    The signer must be a key already trusted for the institution, a key reached by roll-over
    signatures from one, the key whose fingerprint the operator confirmed, or the first key ever
    seen for that filing number. Revocations only ever accumulate; an older bundle changes no key.
    """
    body, signer = signed.body, signed.signer
    f = body.filing_number
    _check_scope(store, body)
    if accept_fingerprint and normalise_fingerprint(accept_fingerprint) != key_fingerprint(signer):
        raise _refuse(f"--accept-fingerprint 与签名密钥 {signer.kid_hex} 的指纹 {key_fingerprint(signer)} 不符")
    how = signer_standing(store, signed)
    namesakes = {k.filing_number for k in store.keys if k.institution == signer.institution and k.filing_number != f}
    if how == "first" and namesakes and not accept_fingerprint:
        raise _refuse(
            f"首次导入的机构 {f} 与已信任的机构 {'、'.join(sorted(namesakes))} 同名「{signer.institution}」，"
            "但备案号不同：可能是冒名。如已与该机构核实签名密钥指纹，请用 --accept-fingerprint 指纹 导入"
        )
    if how is None and accept_fingerprint:
        how = "operator"
    if how is None:
        known = store.keys_of(f)
        old = "；".join(f"{k.kid_hex}（指纹 {key_fingerprint(k)}）" for k in known)
        raise _refuse(
            f"信任包声称来自已信任的机构 {f}（{known[-1].institution}），但由新密钥 {signer.kid_hex}"
            f"（指纹 {key_fingerprint(signer)}）签名，且没有已信任密钥的轮换签名。已信任的密钥：{old}。"
            "如已通过电话等渠道与该机构核实新指纹，请用 --accept-fingerprint 指纹 导入"
        )
    state = store.institution(f) or InstitutionTrust(f)
    if how == "operator":  # a new key the operator vouched for: its station counts anew
        state = replace(state, sequence=0, covered=0, pending=())
    merged = store
    added: list[str] = []
    updated: list[str] = []
    older = body.sequence < state.sequence
    if body.sequence > state.sequence:
        for info in body.keys:
            mine = merged.key(info.kid)
            if mine is not None and mine.x509 is not None:
                if info.x509 is None:  # a bundle without certificates never drops one
                    info = info.with_x509(mine.x509)
                elif info.x509 != mine.x509:
                    raise _refuse(
                        f"信任包中密钥 {info.kid_hex}（{info.filing_number} {info.institution}）的文档签名证书"
                        "与本站已信任的证书不同"
                    )
            if mine == info:
                continue
            (added if mine is None else updated).append(info.kid_hex)
            merged = merged.with_key(info)
        state = replace(state, sequence=body.sequence)
    before = len(merged.revocations)
    merged = merged.with_revocations(body.revocations)
    state = _cover(state, body)
    merged = merged.with_institution(state)
    return ImportResult(
        merged, signed, how, tuple(added), tuple(updated), len(merged.revocations) - before, older,
        tuple(state.gaps()),
    )  # fmt: skip


def _cover(state: InstitutionTrust, body: BundleBody) -> InstitutionTrust:
    """Record that ``body`` arrived: extend the covered sequence and keep what lies beyond a gap."""
    start = 0 if body.since is None else body.since
    pending = {p for p in state.pending if p[1] > state.covered} | {(start, body.sequence, body.issued_at)}
    covered, as_of = state.covered, state.as_of
    progress = True
    while progress:
        progress = False
        for since, seq, issued in sorted(pending):
            if since <= covered:
                pending.discard((since, seq, issued))
                if seq > covered:
                    covered, as_of = seq, issued
                elif seq == covered and (as_of is None or issued > as_of):
                    as_of = issued
                progress = True
                break
    return replace(state, covered=covered, as_of=as_of, pending=tuple(sorted(pending)))


def import_lines(result: ImportResult) -> list[str]:
    """What an import did, in Chinese (the CLI and the keys screen show it)."""
    body, signer = result.signed.body, result.signed.signer
    how = {
        "first": "首次信任此机构：请务必通过电话或书面与其核对下面的签名密钥指纹",
        "trusted": "由已信任的密钥签名",
        "rollover": "新密钥由已信任的原密钥签署轮换",
        "operator": "新密钥指纹已由操作员确认",
    }[result.how]
    lines = [
        f"机构 {body.filing_number} {body.institution}：第{body.sequence}号"
        + (f"更新包（接续第{body.since}号）" if body.since is not None else "信任包")
        + f"，签发于 {body.issued_at}",
        f"签名密钥 {signer.kid_hex}（{how}）",
        f"签名密钥指纹：{grouped_fingerprint(key_fingerprint(signer))}",
        f"新增密钥 {len(result.added_keys)} 个，更新 {len(result.updated_keys)} 个，"
        f"新增吊销 {result.added_revocations} 条",
    ]
    if result.older:
        lines.append("这是比已导入的更旧的信任包：只补充了吊销，密钥信息未改动")
    if result.gaps:
        lines.append(f"注意：{result.gap_text}（请向该机构索取，或导入一份新的完整信任包）")
    return lines
