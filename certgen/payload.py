"""The signed QR payload: COSE_Sign1 (RFC 9052, EdDSA/Ed25519) over CBOR claims, as base45 text.

``ZJ1:`` + base45( COSE_Sign1 ) where COSE_Sign1 = tag 18 [protected, {}, claims, signature],
protected = {1: -8 (EdDSA), 4: kid (8 bytes)} and claims is a CBOR map with small integer keys.
docs/payload.md specifies it byte by byte. Pure: only cryptography, cbor2 and base45.

Decoding is strict and bounded: every defect raises a :class:`PayloadError` subclass whose
``defect`` names it; nothing else escapes, and the work is linear in the (at most 4 KB) input.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from certgen.exceptions import MalformedPayload, NotOurFormat, PayloadError
from certgen.record import CertificateRecord
from certgen.trust import KID_LENGTH

PREFIX = "ZJ1:"
"""Text prefix: 'ZJ' (职技) and the envelope version 1. All characters are QR alphanumeric."""
PREFIX_PATTERN = re.compile(r"ZJ([0-9]+):")
FORMAT_VERSION = 1
"""Version of the claims map (claim 1)."""
MAX_TEXT_LENGTH = 4096
"""Longest text the decoder looks at; anything longer is refused unread."""
COSE_SIGN1_TAG = 18
ALG_EDDSA = -8
HEADER_ALG = 1
HEADER_KID = 4
SIGNATURE_LENGTH = 64
EPOCH = _dt.date(1970, 1, 1)
TEMPLATE_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,13}")
"""Template ids signed into new payloads: at most 14 characters, so that the form claim of an
electronic certificate (2 bytes) still fits the size budget with the largest record."""
FORM_ELECTRONIC = 1
"""Value of the form claim of an electronic certificate; a paper certificate has no form claim."""

ATTACHMENT_NAME = "certificate.json"
"""The file our PDFs embed with the record and the QR text (written by finish, read by verify)."""

QR_MAX_VERSION = 14
"""The largest QR version whose modules stay >= 0.40 mm when the symbol is 30 mm wide."""
QR_ERROR = "M"


class Claim(IntEnum):
    """Claim keys of the CBOR claims map."""

    VERSION = 1
    TEMPLATE = 2
    NUMBER = 3
    NAME = 4
    ID_TYPE = 5
    ID_NUMBER = 6
    OCCUPATION_CODE = 7
    OCCUPATION = 8
    JOB_TYPE = 9
    LEVEL = 10
    ISSUE_DATE = 11
    FORM = 12


_TEXT_CLAIMS = {Claim.TEMPLATE, Claim.NUMBER, Claim.NAME, Claim.ID_NUMBER, Claim.OCCUPATION_CODE, Claim.OCCUPATION}
_INT_CLAIMS = {Claim.VERSION, Claim.ID_TYPE, Claim.LEVEL, Claim.ISSUE_DATE, Claim.FORM}
_OPTIONAL = {Claim.JOB_TYPE, Claim.FORM}


@dataclass(frozen=True)
class Claims:
    """The decoded claims: the certificate's printed fields, exactly as signed."""

    version: int
    """Claims format version (1)."""
    template: str
    """Id of the template the certificate was rendered with, e.g. ``liaoning-2020``."""
    number: str
    """证书编号."""
    name: str
    """姓名, code points as signed."""
    id_type: int
    """证件类型 code."""
    id_number: str
    """证件号码."""
    occupation_code: str
    """职业编码."""
    occupation: str
    """职业名称."""
    job_type: str | None
    """工种名称, None when absent."""
    level: int
    """职业技能等级 1-5."""
    issue_date: _dt.date
    """发证日期."""
    form: str = "paper"
    """``electronic`` for an electronic certificate (a signed PDF), ``paper`` otherwise."""

    def record(self, *, institution: str = "", with_number: bool = True) -> CertificateRecord:
        """The certificate record these claims describe (validated: RecordError if not valid).

        ``with_number=False`` leaves the number out, so that only the other fields are checked.
        """
        return CertificateRecord(
            name=self.name, id_type=self.id_type, id_number=self.id_number,
            occupation_code=self.occupation_code, occupation=self.occupation, level=self.level,
            issue_date=self.issue_date, job_type=self.job_type, number=self.number if with_number else None,
            evaluator=institution, issuer=institution,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The claims as JSON; ``"form": "electronic"`` only for an electronic certificate (as signed)."""
        data: dict[str, Any] = {
            "version": self.version, "template": self.template, "number": self.number,
            "name": self.name, "id_type": self.id_type, "id_number": self.id_number,
            "occupation_code": self.occupation_code, "occupation": self.occupation,
            "job_type": self.job_type, "level": self.level, "issue_date": self.issue_date.isoformat(),
        }  # fmt: skip
        if self.form == "electronic":
            data["form"] = self.form
        return data


@dataclass(frozen=True)
class CoseSign1:
    """A parsed COSE_Sign1 envelope (signature not yet checked)."""

    protected: bytes
    """The protected header exactly as encoded (it is signed as these bytes)."""
    kid: bytes
    """The key id from the protected header."""
    payload: bytes
    """The claims, CBOR-encoded, exactly as signed."""
    signature: bytes
    """The 64-byte Ed25519 signature."""

    def sig_structure(self) -> bytes:
        return sig_structure(self.protected, self.payload)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """Whether the signature is the key's over the Sig_structure (RFC 9052 section 4.4)."""
        try:
            public_key.verify(self.signature, self.sig_structure())
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SignedPayload:
    """Every stage of an encoded payload (the golden vectors record each)."""

    claims_cbor: bytes
    """The CBOR claims map."""
    protected: bytes
    """The CBOR protected header map."""
    cose: bytes
    """The tagged COSE_Sign1 structure."""
    text: str
    """``ZJ1:`` + base45 of ``cose``: what the QR code holds."""

    @property
    def sha256(self) -> str:
        """SHA-256 of the text, as the register records it."""
        return payload_sha256(self.text)


def payload_sha256(text: str) -> str:
    """SHA-256 of a QR text (ASCII by construction), as the register records and verify compares."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- encoding ----------------------------------------------------------------------------------
def _cbor(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def claims_map(record: CertificateRecord, template: str, form: str = "paper") -> dict[int, Any]:
    """The claims of a numbered record, as the integer-keyed map that is signed."""
    if record.number is None:
        raise ValueError("记录还没有证书编号，不能签名")
    if not TEMPLATE_PATTERN.fullmatch(template):
        raise ValueError(f"模板标识应为1-14位小写字母、数字或连字符，收到 {template!r}")
    if form not in ("paper", "electronic"):
        raise ValueError(f"证书形式应为 paper 或 electronic，收到 {form!r}")
    claims: dict[int, Any] = {
        Claim.VERSION: FORMAT_VERSION,
        Claim.TEMPLATE: template,
        Claim.NUMBER: record.number,
        Claim.NAME: record.name,
        Claim.ID_TYPE: record.id_type,
        Claim.ID_NUMBER: record.id_number,
        Claim.OCCUPATION_CODE: record.occupation_code,
        Claim.OCCUPATION: record.occupation,
        Claim.LEVEL: record.level,
        Claim.ISSUE_DATE: (record.issue_date - EPOCH).days,
    }
    if record.job_type is not None:
        claims[Claim.JOB_TYPE] = record.job_type
    if form == "electronic":
        claims[Claim.FORM] = FORM_ELECTRONIC
    return {int(k): v for k, v in claims.items()}


def protected_header(kid: bytes) -> bytes:
    """The encoded protected header ``{1: -8, 4: kid}``."""
    if len(kid) != KID_LENGTH:
        raise ValueError(f"密钥标识应为{KID_LENGTH}字节，收到{len(kid)}字节")
    return _cbor({HEADER_ALG: ALG_EDDSA, HEADER_KID: kid})


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """``["Signature1", protected, external_aad = h'', payload]``: the bytes that are signed."""
    return _cbor(["Signature1", protected, b"", payload])


def to_text(cose: bytes) -> str:
    """The QR text of a COSE_Sign1 structure."""
    encoded = base45.b45encode(cose)
    return PREFIX + (encoded.decode("ascii") if isinstance(encoded, bytes) else encoded)


def sign(
    record: CertificateRecord, template: str, key: Ed25519PrivateKey, kid: bytes, form: str = "paper"
) -> SignedPayload:
    """Sign a numbered record's claims with the institution's key (deterministic: Ed25519)."""
    claims = _cbor(claims_map(record, template, form))
    protected = protected_header(kid)
    signature = key.sign(sig_structure(protected, claims))
    cose = _cbor(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, claims, signature]))
    return SignedPayload(claims, protected, cose, to_text(cose))


# --- decoding ----------------------------------------------------------------------------------
def _malformed(defect: str, message: str) -> MalformedPayload:
    return MalformedPayload(message, defect=defect)


def _strict_cbor(data: bytes, what: str) -> Any:
    """Decode exactly one CBOR item: no duplicate keys, no indefinite lengths, no trailing bytes."""
    stream = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(stream, allow_duplicate_keys=False, allow_indefinite=False, max_depth=8)
    try:
        value = decoder.decode()
    except cbor2.CBORDecodeError as exc:
        defect = "duplicate_key" if "Duplicate" in str(exc) else "cbor"
        raise _malformed(defect, f"{what}不是有效的CBOR：{exc}") from None
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise _malformed("cbor", f"{what}不是有效的CBOR：{exc}") from None
    if stream.tell() != len(data):
        raise _malformed("trailing", f"{what}后有{len(data) - stream.tell()}个多余字节")
    return value


def text_to_cose(text: str) -> bytes:
    """Strip the prefix and base45-decode; NotOurFormat or MalformedPayload on any defect."""
    if not isinstance(text, str):
        raise NotOurFormat(f"二维码内容应为文本，收到 {type(text).__name__}", defect="prefix")
    if len(text) > MAX_TEXT_LENGTH:
        raise _malformed("oversized", f"二维码内容过长：{len(text)}个字符，上限{MAX_TEXT_LENGTH}个")
    match = PREFIX_PATTERN.match(text)
    if match is None:
        shown = text[:8] + ("…" if len(text) > 8 else "")
        raise NotOurFormat(f"不是本系统的证书二维码（应以 {PREFIX} 开头，实际为「{shown}」）", defect="prefix")
    if match.group(0) != PREFIX:
        raise NotOurFormat(f"二维码格式版本 {match.group(1)} 不受支持（本软件支持 {PREFIX}）", defect="version")
    body = text[len(PREFIX) :]
    try:
        cose = base45.b45decode(body)
    except (ValueError, KeyError, TypeError) as exc:
        raise _malformed("base45", f"base45编码无效：{exc}") from None
    if not isinstance(cose, bytes) or not cose:
        raise _malformed("base45", "base45编码无效：内容为空")
    return cose


def sign_detached(content: bytes, key: Ed25519PrivateKey, kid: bytes) -> bytes:
    """A detached COSE_Sign1 (payload ``nil``) over ``content``: what signs trust bundles, key
    roll-overs and backup manifests, with the same header and Sig_structure as the QR payload."""
    protected = protected_header(kid)
    signature = key.sign(sig_structure(protected, content))
    return _cbor(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, None, signature]))


def parse_cose(cose: bytes, *, detached: bytes | None = None) -> CoseSign1:
    """Parse a tagged COSE_Sign1 with EdDSA and an 8-byte kid in the protected header.

    With ``detached``, the structure's payload must be ``nil`` and ``detached`` is the content
    it signs (RFC 9052 section 2, detached content).
    """
    item = _strict_cbor(cose, "COSE结构")
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_SIGN1_TAG:
        tag = item.tag if isinstance(item, cbor2.CBORTag) else "无"
        raise _malformed("tag", f"不是COSE_Sign1结构：CBOR标签应为{COSE_SIGN1_TAG}，实际为{tag}")
    parts = item.value
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        raise _malformed("structure", "COSE_Sign1应为4个元素的数组")
    protected, unprotected, payload, signature = parts
    if detached is not None:
        if payload is not None:
            raise _malformed("structure", "分离签名的COSE_Sign1载荷应为 nil")
        payload = detached
    if not isinstance(protected, bytes) or not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise _malformed("structure", "COSE_Sign1的受保护头、载荷和签名应为字节串")
    if not isinstance(unprotected, Mapping) or unprotected:
        raise _malformed("structure", "COSE_Sign1的非保护头应为空映射")
    header = _strict_cbor(protected, "受保护头")
    if not isinstance(header, Mapping) or set(header) - {HEADER_ALG, HEADER_KID}:
        raise _malformed("structure", "受保护头应只含 alg(1) 与 kid(4)")
    if header.get(HEADER_ALG) != ALG_EDDSA:
        raise _malformed("alg", f"签名算法应为EdDSA（{ALG_EDDSA}），实际为 {header.get(HEADER_ALG)!r}")
    kid = header.get(HEADER_KID)
    if not isinstance(kid, bytes) or len(kid) != KID_LENGTH:
        size = len(kid) if isinstance(kid, bytes) else "非字节串"
        raise _malformed("kid", f"密钥标识应为{KID_LENGTH}字节，实际为{size}")
    if len(signature) != SIGNATURE_LENGTH:
        raise _malformed("signature_length", f"签名应为{SIGNATURE_LENGTH}字节，实际为{len(signature)}字节")
    return CoseSign1(protected, kid, payload, signature)


def parse_claims(payload: bytes) -> Claims:
    """Decode the claims map: integer keys 1-11, each of its type, none unknown or repeated."""
    data = _strict_cbor(payload, "声明")
    if not isinstance(data, Mapping):
        raise _malformed("type", "声明应为CBOR映射")
    known = {int(c) for c in Claim}
    for key in data:
        if not isinstance(key, int) or isinstance(key, bool) or key not in known:
            raise _malformed("unknown_claim", f"未知的声明键 {key!r}")
    claims = {Claim(k): v for k, v in data.items()}
    for claim in Claim:
        if claim not in claims:
            if claim in _OPTIONAL:
                continue
            raise _malformed("missing_claim", f"缺少声明 {claim.name.lower()}({int(claim)})")
        value = claims[claim]
        wanted: type = int if claim in _INT_CLAIMS else str
        if not isinstance(value, wanted) or isinstance(value, bool):
            kind = "文本" if wanted is str else "整数"
            raise _malformed(
                "type", f"声明 {claim.name.lower()}({int(claim)}) 应为{kind}，实际为 {type(value).__name__}"
            )
    if _cbor(dict(data)) != payload:
        raise _malformed("not_canonical", "声明不是确定性CBOR编码（键须升序、整数与长度须用最短形式）")
    template = claims[Claim.TEMPLATE]
    if not TEMPLATE_PATTERN.fullmatch(template):
        raise _malformed("template", f"模板标识应为1-16位小写字母、数字或连字符，收到 {template!r}")
    if claims[Claim.VERSION] != FORMAT_VERSION:
        raise _malformed("version", f"声明格式版本 {claims[Claim.VERSION]} 不受支持（应为{FORMAT_VERSION}）")
    days = claims[Claim.ISSUE_DATE]
    if Claim.FORM in claims and claims[Claim.FORM] != FORM_ELECTRONIC:
        raise _malformed("type", f"声明 form(12) 应为 {FORM_ELECTRONIC}（电子证书），实际为 {claims[Claim.FORM]}")
    if not 0 <= days <= 65535:
        raise _malformed("type", f"发证日期 {days} 超出范围（1970-01-01起的天数，0-65535）")
    return Claims(
        version=claims[Claim.VERSION],
        template=claims[Claim.TEMPLATE],
        number=claims[Claim.NUMBER],
        name=claims[Claim.NAME],
        id_type=claims[Claim.ID_TYPE],
        id_number=claims[Claim.ID_NUMBER],
        occupation_code=claims[Claim.OCCUPATION_CODE],
        occupation=claims[Claim.OCCUPATION],
        job_type=claims.get(Claim.JOB_TYPE),
        level=claims[Claim.LEVEL],
        issue_date=EPOCH + _dt.timedelta(days=days),
        form="electronic" if Claim.FORM in claims else "paper",
    )


@dataclass(frozen=True)
class DecodedPayload:
    """A decoded QR text: the envelope and the claims, signature not yet checked."""

    text: str
    """The text as decoded."""
    envelope: CoseSign1
    """The COSE_Sign1 structure."""
    claims: Claims
    """The signed claims."""

    @property
    def sha256(self) -> str:
        return payload_sha256(self.text)


def decode(text: str) -> DecodedPayload:
    """Decode a QR text down to its claims; raises a PayloadError naming the defect."""
    envelope = parse_cose(text_to_cose(text))
    return DecodedPayload(text, envelope, parse_claims(envelope.payload))


__all__ = [
    "PREFIX",
    "Claim",
    "Claims",
    "CoseSign1",
    "DecodedPayload",
    "PayloadError",
    "SignedPayload",
    "decode",
    "sign",
]
