"""The institution's document-signing certificate (X.509), bound to its QR key.

Each institution key (Ed25519, for the QR code) gets a companion ECDSA P-256 key and a
self-issued X.509 certificate for signing PDFs (PAdES): Adobe Acrobat Reader and Foxit validate
ECDSA P-256 signatures, not Ed25519 ones (docs/electronic.md). The certificate names the
institution (CN and O: the filed name; serialNumber: the 13-character filing number; C=CN) and
carries the QR key's kid in a private, non-critical extension, so a verifier can tell which QR key
the certificate belongs to. Pure: only ``cryptography``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certgen.exceptions import TrustError

KID_EXTENSION_OID = x509.ObjectIdentifier("2.25.196735117389305466361385626426451307563")
"""certkiosk's private extension holding the QR key's kid (an OID under the UUID arc 2.25, X.667)."""
DOCUMENT_SIGNING_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
"""id-kp-documentSigning (RFC 9336)."""
MAX_CERTIFICATE_BYTES = 8192


_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
)  # fmt: skip
"""digitalSignature and nonRepudiation (contentCommitment) only."""


def _kid_extension_value(kid: bytes) -> bytes:
    """DER OCTET STRING of the kid (at most 127 bytes, so one length byte)."""
    return bytes([0x04, len(kid)]) + kid


@dataclass(frozen=True)
class SigningIdentity:
    """What a document-signing certificate says, read back from its DER bytes."""

    institution: str
    """The subject's CN: the institution's filed name."""
    filing_number: str
    """The subject's serialNumber: the institution's filing number."""
    kid: bytes
    """The QR key's kid from certkiosk's extension."""
    not_before: _dt.datetime
    """Start of the certificate's validity (UTC)."""
    not_after: _dt.datetime
    """End of the certificate's validity (UTC)."""
    sha256: str
    """SHA-256 of the DER certificate, hex: the fingerprint shown for comparison by hand."""


def make_certificate(
    private: ec.EllipticCurvePrivateKey,
    *,
    institution: str,
    filing_number: str,
    kid: bytes,
    valid_from: _dt.date,
    valid_until: _dt.date | None,
) -> bytes:
    """A self-issued document-signing certificate (DER) for the institution's P-256 key."""
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, institution),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, filing_number),
        x509.NameAttribute(NameOID.COMMON_NAME, institution),
    ])  # fmt: skip
    start = _dt.datetime.combine(valid_from, _dt.time(0, 0), _dt.UTC)
    end_day = valid_until or valid_from.replace(year=valid_from.year + 30)
    end = _dt.datetime.combine(end_day, _dt.time(23, 59, 59), _dt.UTC)
    public = private.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_KEY_USAGE, critical=True)
        # documentSigning (RFC 9336) and, for older Acrobat versions, emailProtection
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING_OID, ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.UnrecognizedExtension(KID_EXTENSION_OID, _kid_extension_value(kid)), critical=False)
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    return builder.sign(private, hashes.SHA256()).public_bytes(Encoding.DER)


def _attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    if len(values) != 1 or not isinstance(values[0].value, str):
        raise TrustError(f"签名证书的主体应有且只有一个 {oid.dotted_string}")
    return values[0].value


@lru_cache(maxsize=32)
def read_certificate(der: bytes) -> SigningIdentity:
    """Parse a document-signing certificate made by :func:`make_certificate`; TrustError otherwise.

    Remembered by its exact bytes (the identity is a frozen value of them; a refusal is not kept):
    the register's keys carry their certificate, and each certificate issued looks its key up."""
    import hashlib

    if len(der) > MAX_CERTIFICATE_BYTES:
        raise TrustError(f"签名证书过大：{len(der)} 字节，上限 {MAX_CERTIFICATE_BYTES} 字节")
    try:
        cert = x509.load_der_x509_certificate(der)
        ext = cert.extensions.get_extension_for_oid(KID_EXTENSION_OID).value
    except x509.ExtensionNotFound:
        raise TrustError("签名证书中没有二维码密钥标识扩展：不是 certkiosk 签发的证书") from None
    except ValueError as exc:
        raise TrustError(f"签名证书无法解析：{exc}") from None
    raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
    if len(raw) < 2 or raw[0] != 0x04 or raw[1] != len(raw) - 2:
        raise TrustError("签名证书中的二维码密钥标识扩展格式错误")
    if not isinstance(cert.public_key(), ec.EllipticCurvePublicKey):
        raise TrustError("签名证书的公钥不是 ECDSA 密钥")
    return SigningIdentity(
        institution=_attribute(cert, NameOID.COMMON_NAME),
        filing_number=_attribute(cert, NameOID.SERIAL_NUMBER),
        kid=raw[2:],
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=hashlib.sha256(der).hexdigest(),
    )


def check_binding(der: bytes, *, kid: bytes, institution: str, filing_number: str) -> SigningIdentity:
    """The certificate's identity, TrustError unless it names this kid, institution and filing number."""
    identity = read_certificate(der)
    if identity.kid != kid:
        raise TrustError(f"签名证书属于密钥 {identity.kid.hex()}，不是 {kid.hex()}")
    if identity.filing_number != filing_number or identity.institution != institution:
        raise TrustError(
            f"签名证书的机构「{identity.institution}」（{identity.filing_number}）"
            f"与密钥的机构「{institution}」（{filing_number}）不符"
        )
    return identity


def new_signing_key() -> ec.EllipticCurvePrivateKey:
    """A new ECDSA P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())
