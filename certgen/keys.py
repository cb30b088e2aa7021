"""Institution keys: one Ed25519 key per institution, bound to its 13-character filing number.

The public part (:class:`PublicKeyInfo`) is pure data that verify uses; the private key lives in
the station home as encrypted PKCS#8 PEM, mode 0600, and is never printed or logged.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from certgen.exceptions import KeyStoreError, TrustError, WrongPassphrase
from certgen.home import atomic_write
from certgen.number import check_filing_number
from certgen.secret import Secret

KID_LENGTH = 8
PASSPHRASE_MIN = 8
DEFAULT_VALIDITY_YEARS = 10


def kid_of(raw_public_key: bytes) -> bytes:
    """The key id: the first 8 bytes of SHA-256 of the raw 32-byte Ed25519 public key."""
    return hashlib.sha256(raw_public_key).digest()[:KID_LENGTH]


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


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

    @property
    def kid_hex(self) -> str:
        return self.kid.hex()

    def verifier(self) -> Ed25519PublicKey:
        """The cryptography object that checks signatures."""
        return Ed25519PublicKey.from_public_bytes(self.public_key)

    def valid_on(self, day: _dt.date) -> bool:
        """Whether a certificate issued on ``day`` falls inside this key's validity window."""
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid.hex(),
            "public_key": base64.b64encode(self.public_key).decode("ascii"),
            "filing_number": self.filing_number,
            "institution": self.institution,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> PublicKeyInfo:
        try:
            until = data["valid_until"]
            return cls(
                kid=bytes.fromhex(data["kid"]),
                public_key=base64.b64decode(data["public_key"], validate=True),
                filing_number=str(data["filing_number"]),
                institution=str(data["institution"]),
                valid_from=_dt.date.fromisoformat(data["valid_from"]),
                valid_until=_dt.date.fromisoformat(until) if until else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TrustError(f"密钥记录格式错误：{exc!r}") from None


def check_passphrase(passphrase: str | Secret) -> None:
    """Refuse a passphrase too short to protect a private key."""
    if len(passphrase) < PASSPHRASE_MIN:
        raise KeyStoreError(f"口令太短：至少{PASSPHRASE_MIN}个字符，收到{len(passphrase)}个")


class KeyStore:
    """The encrypted private keys of a station, one ``<kid>.pem`` file each in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, kid: bytes) -> Path:
        return self.folder / f"{kid.hex()}.pem"

    def generate(self, passphrase: str | Secret) -> tuple[bytes, bytes]:
        """Create a key, write it encrypted (mode 0600) and return ``(kid, raw public key)``."""
        check_passphrase(passphrase)
        private = Ed25519PrivateKey.generate()
        public = raw_public(private.public_key())
        kid = kid_of(public)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(Secret.of(passphrase).reveal().encode("utf-8")),
        )
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.path_for(kid)
        if path.exists():
            raise KeyStoreError(f"密钥文件 {path} 已存在")
        with atomic_write(path, 0o600) as fh:
            fh.write(pem)
        return kid, public

    def load(self, kid: bytes, passphrase: str | Secret) -> Ed25519PrivateKey:
        """Decrypt the private key ``kid``; WrongPassphrase or KeyStoreError with the reason."""
        path = self.path_for(kid)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"找不到密钥 {kid.hex()} 的私钥文件 {path}") from None
        except OSError as exc:
            raise KeyStoreError(f"无法读取私钥文件 {path}：{exc.strerror}") from None
        mode = os.stat(path).st_mode & 0o777
        if mode & 0o077:
            raise KeyStoreError(f"私钥文件 {path} 权限为 {mode:o}，其他用户可读：请执行 chmod 600")
        try:
            key = serialization.load_pem_private_key(pem, Secret.of(passphrase).reveal().encode("utf-8"))
        except (ValueError, TypeError):
            raise WrongPassphrase(f"口令错误：无法解密密钥 {kid.hex()}") from None
        except UnsupportedAlgorithm:
            raise KeyStoreError(f"私钥文件 {path} 的加密算法不受支持") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"私钥文件 {path} 不是 Ed25519 密钥")
        if kid_of(raw_public(key.public_key())) != kid:
            raise KeyStoreError(f"私钥文件 {path} 与密钥标识 {kid.hex()} 不符")
        return key

    def kids(self) -> list[bytes]:
        """The kids of every private key file present."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.pem")):
            try:
                kid = bytes.fromhex(path.stem)
            except ValueError:
                continue
            if len(kid) == KID_LENGTH:
                found.append(kid)
        return found
