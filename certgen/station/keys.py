"""Institution keys: one Ed25519 key per institution, bound to its 13-character filing number.

The public part (:class:`PublicKeyInfo`) is pure data that verify uses; the private key lives in
the station home as encrypted PKCS#8 PEM, mode 0600, and is never printed or logged.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certgen.exceptions import KeyStoreError, WrongPassphrase
from certgen.files import atomic_write
from certgen.secret import Secret
from certgen.trust import KID_LENGTH, kid_of, raw_public

PASSPHRASE_MIN = 8
DEFAULT_VALIDITY_YEARS = 10


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
        private = Ed25519PrivateKey.generate()
        public = raw_public(private.public_key())
        kid = kid_of(public)
        self._write(self.path_for(kid), private, passphrase)
        return kid, public

    def x509_key_path(self, kid: bytes) -> Path:
        """The document-signing (P-256) key that goes with QR key ``kid``."""
        return self.folder / f"{kid.hex()}.x509.pem"

    def _write(
        self, path: Path, private: Ed25519PrivateKey | ec.EllipticCurvePrivateKey, passphrase: str | Secret
    ) -> None:
        check_passphrase(passphrase)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(Secret.of(passphrase).reveal().encode("utf-8")),
        )
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.exists():
            raise KeyStoreError(f"密钥文件 {path} 已存在")
        with atomic_write(path, 0o600) as fh:
            fh.write(pem)

    def _read(self, path: Path, passphrase: str | Secret, what: str) -> object:
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"找不到{what}的私钥文件 {path}") from None
        except OSError as exc:
            raise KeyStoreError(f"无法读取私钥文件 {path}：{exc.strerror}") from None
        mode = os.stat(path).st_mode & 0o777
        if mode & 0o077:
            raise KeyStoreError(f"私钥文件 {path} 权限为 {mode:o}，其他用户可读：请执行 chmod 600")
        try:
            return serialization.load_pem_private_key(pem, Secret.of(passphrase).reveal().encode("utf-8"))
        except (ValueError, TypeError):
            raise WrongPassphrase(f"口令错误：无法解密{what}") from None
        except UnsupportedAlgorithm:
            raise KeyStoreError(f"私钥文件 {path} 的加密算法不受支持") from None

    def load(self, kid: bytes, passphrase: str | Secret) -> Ed25519PrivateKey:
        """Decrypt the private key ``kid``; WrongPassphrase or KeyStoreError with the reason."""
        path = self.path_for(kid)
        key = self._read(path, passphrase, f"密钥 {kid.hex()}")
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"私钥文件 {path} 不是 Ed25519 密钥")
        if kid_of(raw_public(key.public_key())) != kid:
            raise KeyStoreError(f"私钥文件 {path} 与密钥标识 {kid.hex()} 不符")
        return key

    def generate_x509_key(self, kid: bytes, passphrase: str | Secret) -> ec.EllipticCurvePrivateKey:
        """Create the P-256 document-signing key of QR key ``kid``, written encrypted (mode 0600)."""
        from certgen.docsign import new_signing_key

        private = new_signing_key()
        self._write(self.x509_key_path(kid), private, passphrase)
        return private

    def load_x509_key(self, kid: bytes, passphrase: str | Secret) -> ec.EllipticCurvePrivateKey:
        """Decrypt the document-signing key of QR key ``kid``."""
        path = self.x509_key_path(kid)
        key = self._read(path, passphrase, f"密钥 {kid.hex()} 的文档签名密钥")
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise KeyStoreError(f"私钥文件 {path} 不是 ECDSA P-256 密钥")
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
