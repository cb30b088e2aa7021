"""Institution keys: one Ed25519 key per institution, bound to its 13-character filing number.

The public part (:class:`PublicKeyInfo`) is pure data that verify uses; the private key lives in
the station home, mode 0600, never printed or logged, in certkiosk's own envelope
(``certkiosk-key/1``): the raw 32-byte private key encrypted with AES-256-GCM under a key derived
from the passphrase with scrypt (N=2**17, r=8, p=1: 128 MiB and about a second per guess), the
kid and the KDF parameters bound as associated data, and a SHA-256 of the envelope so that a
damaged file is told apart from a wrong passphrase. PKCS#8 files of earlier versions (PBKDF2 with
2,048 iterations) and envelopes with weaker parameters are re-wrapped on the next successful unlock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certgen.exceptions import KeyStoreError, WrongPassphrase
from certgen.files import atomic_write
from certgen.secret import Secret
from certgen.trust import KID_LENGTH, kid_of, raw_public

PASSPHRASE_MIN = 8
DEFAULT_VALIDITY_YEARS = 10
KEY_FILE_MAX = 64 * 1024
ENVELOPE_FORMAT = "certkiosk-key/1"
PEM_BEGIN = "-----BEGIN CERTKIOSK ENCRYPTED PRIVATE KEY-----"
PEM_END = "-----END CERTKIOSK ENCRYPTED PRIVATE KEY-----"


@dataclass(frozen=True)
class ScryptParams:
    """scrypt's cost: memory and time grow with ``n * r``."""

    n: int
    """CPU/memory cost (a power of two)."""
    r: int
    """Block size."""
    p: int
    """Parallelism."""

    def weaker_than(self, other: ScryptParams) -> bool:
        return self.n * self.r * self.p < other.n * other.r * other.p

    def derive(self, passphrase: str | Secret, salt: bytes) -> bytes:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt  # only when a key is opened or sealed

        return Scrypt(salt=salt, length=32, n=self.n, r=self.r, p=self.p).derive(
            Secret.of(passphrase).reveal().encode("utf-8")
        )


DEFAULT_KDF = ScryptParams(n=2**17, r=8, p=1)
"""The key-derivation cost of new key files (OWASP's scrypt recommendation)."""
KDF = DEFAULT_KDF
"""The cost in use: always :data:`DEFAULT_KDF`, except that the test suite's ``fast_kdf`` fixture
lowers it to keep unlocking fast. A key file with weaker parameters is re-wrapped when unlocked."""


PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
"""The keys a station holds: Ed25519 for QR payloads, ECDSA P-256 for PDF signatures."""


def _aad(header: Mapping[str, object]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def check_passphrase(passphrase: str | Secret) -> None:
    """Refuse a passphrase too short to protect a private key."""
    if len(passphrase) < PASSPHRASE_MIN:
        raise KeyStoreError(f"口令太短：至少{PASSPHRASE_MIN}个字符，收到{len(passphrase)}个")


class KeyStore:
    """The encrypted private keys of a station, one ``<kid>.pem`` file each in ``folder`` (and the
    document-signing P-256 key beside it as ``<kid>.x509.pem``), all in the envelope above."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, kid: bytes) -> Path:
        return self.folder / f"{kid.hex()}.pem"

    def x509_key_path(self, kid: bytes) -> Path:
        """The document-signing (P-256) key that goes with QR key ``kid``."""
        return self.folder / f"{kid.hex()}.x509.pem"

    # --- the envelope ------------------------------------------------------------------------
    @staticmethod
    def seal(
        private: PrivateKey, passphrase: str | Secret, params: ScryptParams | None = None, *, kid: bytes | None = None
    ) -> bytes:
        """The key file's bytes: ``private`` encrypted under ``passphrase`` (see the module docstring).

        ``kid`` is the QR key's id the file belongs to (derived for an Ed25519 key).
        """
        from cryptography.hazmat.primitives import serialization  # ~5 ms: not on a verifying station's path

        params = params or KDF
        if isinstance(private, Ed25519PrivateKey):
            key_type = "ed25519"
            plain = private.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
            kid = kid or kid_of(raw_public(private.public_key()))
        else:
            key_type = "p256"
            plain = private.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        if kid is None:
            raise KeyStoreError("内部错误：文档签名密钥缺少所属的密钥标识")
        salt, nonce = os.urandom(16), os.urandom(12)
        header = {"format": ENVELOPE_FORMAT, "kid": kid.hex(), "type": key_type, "cipher": "AES-256-GCM",
                  "kdf": {"name": "scrypt", "n": params.n, "r": params.r, "p": params.p,
                          "salt": base64.b64encode(salt).decode("ascii")}}  # fmt: skip
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        sealed = AESGCM(params.derive(passphrase, salt)).encrypt(nonce, plain, _aad(header))
        body = header | {"nonce": base64.b64encode(nonce).decode("ascii"),
                         "ciphertext": base64.b64encode(sealed).decode("ascii")}  # fmt: skip
        body["check"] = hashlib.sha256(_aad(body)).hexdigest()
        armoured = base64.b64encode(json.dumps(body, sort_keys=True).encode("utf-8")).decode("ascii")
        lines = [armoured[i : i + 64] for i in range(0, len(armoured), 64)]
        return ("\n".join([PEM_BEGIN, *lines, PEM_END]) + "\n").encode("ascii")

    @staticmethod
    def _open(
        data: bytes, kid: bytes, passphrase: str | Secret, path: Path, what: str
    ) -> tuple[PrivateKey, ScryptParams]:
        text = data.decode("ascii", errors="replace").strip()
        if PEM_END not in text:
            raise KeyStoreError(f"私钥文件 {path} 不完整（被截断）：请从备份恢复")
        try:
            inner = "".join(text[len(PEM_BEGIN) : text.index(PEM_END)].split())
            body = json.loads(base64.b64decode(inner, validate=True))
            check = body.pop("check")
            if hashlib.sha256(_aad(body)).hexdigest() != check:
                raise ValueError("checksum")
            kdf = body["kdf"]
            params = ScryptParams(int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
            salt = base64.b64decode(kdf["salt"], validate=True)
            nonce = base64.b64decode(body["nonce"], validate=True)
            sealed = base64.b64decode(body["ciphertext"], validate=True)
            header = {k: body[k] for k in ("format", "kid", "type", "cipher", "kdf")}
        except (KeyError, TypeError, ValueError, binascii.Error, AttributeError):
            raise KeyStoreError(f"私钥文件 {path} 已损坏（内容与校验值不符）：请从备份恢复") from None
        if body["format"] != ENVELOPE_FORMAT or kdf.get("name") != "scrypt" or body["cipher"] != "AES-256-GCM":
            raise KeyStoreError(f"私钥文件 {path} 的格式 {body['format']} 不受支持")
        if body["kid"] != kid.hex():
            raise KeyStoreError(f"私钥文件 {path} 与密钥标识 {kid.hex()} 不符")
        if params.weaker_than(ScryptParams(2**10, 8, 1)) or params.n * params.r > 2**24:
            raise KeyStoreError(f"私钥文件 {path} 的密钥派生参数不合理（N={params.n}, r={params.r}）")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            plain = AESGCM(params.derive(passphrase, salt)).decrypt(nonce, sealed, _aad(header))
        except InvalidTag:
            raise WrongPassphrase(f"口令错误：无法解密{what}") from None
        key: PrivateKey
        if body["type"] == "ed25519":
            key = Ed25519PrivateKey.from_private_bytes(plain)
        else:
            from cryptography.hazmat.primitives import serialization

            loaded = serialization.load_der_private_key(plain, None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise KeyStoreError(f"私钥文件 {path} 不是 ECDSA 密钥")
            key = loaded
        return key, params

    @staticmethod
    def _open_pkcs8(data: bytes, passphrase: str | Secret, path: Path, what: str) -> object:
        """A key file of an earlier version (encrypted PKCS#8 PEM)."""
        if b"-----END ENCRYPTED PRIVATE KEY-----" not in data:
            raise KeyStoreError(f"私钥文件 {path} 不完整（被截断）：请从备份恢复")
        from cryptography.hazmat.primitives import serialization

        try:
            return serialization.load_pem_private_key(data, Secret.of(passphrase).reveal().encode("utf-8"))
        except ValueError:
            try:  # is it the structure or the passphrase?
                serialization.load_pem_private_key(data, None)
            except TypeError:  # a sound encrypted key that this passphrase does not open
                raise WrongPassphrase(f"口令错误：无法解密{what}") from None
            except ValueError:
                pass
            raise KeyStoreError(f"私钥文件 {path} 已损坏：请从备份恢复") from None
        except TypeError:
            raise KeyStoreError(f"私钥文件 {path} 已损坏：请从备份恢复") from None
        except UnsupportedAlgorithm:
            raise KeyStoreError(f"私钥文件 {path} 的加密算法不受支持") from None

    def _write(self, path: Path, private: PrivateKey, passphrase: str | Secret, kid: bytes) -> None:
        check_passphrase(passphrase)
        pem = self.seal(private, passphrase, kid=kid)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.exists():
            raise KeyStoreError(f"密钥文件 {path} 已存在")
        with atomic_write(path, 0o600) as fh:
            fh.write(pem)

    def _read(self, path: Path, kid: bytes, passphrase: str | Secret, what: str) -> object:
        """Decrypt a key file; WrongPassphrase, or KeyStoreError saying what the file is (missing,
        not a regular file, empty, truncated, damaged, unencrypted, readable by others).

        A file of an earlier format or weaker KDF parameters is re-wrapped (atomically) once opened.
        """
        data = self._read_key_file(path, what)
        key: object
        if data.startswith(PEM_BEGIN.encode("ascii")):
            key, params = self._open(data, kid, passphrase, path, what)
            outdated = params.weaker_than(KDF)
        elif data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"):
            key, outdated = self._open_pkcs8(data, passphrase, path, what), True
        elif data.startswith((b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN OPENSSH PRIVATE KEY-----")):
            raise KeyStoreError(f"私钥文件 {path} 未加密：拒绝使用。请用 certkiosk keys new 重新生成密钥")
        else:
            raise KeyStoreError(f"私钥文件 {path} 不是 certkiosk 私钥文件（内容无法识别）")
        if outdated and isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            if isinstance(key, Ed25519PrivateKey) and kid_of(raw_public(key.public_key())) != kid:
                raise KeyStoreError(f"私钥文件 {path} 与密钥标识 {kid.hex()} 不符")
            with atomic_write(path, 0o600) as fh:
                fh.write(self.seal(key, passphrase, kid=kid))
        return key

    @staticmethod
    def _read_key_file(path: Path, what: str) -> bytes:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise KeyStoreError(f"找不到{what}的私钥文件 {path}") from None
        except OSError as exc:
            raise KeyStoreError(f"无法读取私钥文件 {path}：{exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise KeyStoreError(f"私钥文件 {path} 不是普通文件（设备、管道或目录）：拒绝读取")
        mode = info.st_mode & 0o777
        if mode & 0o077:
            raise KeyStoreError(f"私钥文件 {path} 权限为 {mode:o}，其他用户可读：请执行 chmod 600")
        try:
            with path.open("rb") as fh:
                data = fh.read(KEY_FILE_MAX + 1)
        except OSError as exc:
            raise KeyStoreError(f"无法读取私钥文件 {path}：{exc.strerror}") from None
        if not data.strip():
            raise KeyStoreError(f"私钥文件 {path} 是空的：请从备份恢复")
        if len(data) > KEY_FILE_MAX:
            raise KeyStoreError(f"私钥文件 {path} 过大（超过{KEY_FILE_MAX}字节）：不是 certkiosk 私钥文件")
        return data

    # --- keys ------------------------------------------------------------------------------
    def generate(self, passphrase: str | Secret) -> tuple[bytes, bytes]:
        """Create a key, write it encrypted (mode 0600) and return ``(kid, raw public key)``."""
        return self.store(Ed25519PrivateKey.generate(), passphrase)

    def store(self, private: Ed25519PrivateKey, passphrase: str | Secret) -> tuple[bytes, bytes]:
        """Write a new private key encrypted (mode 0600); returns ``(kid, raw public key)``."""
        public = raw_public(private.public_key())
        kid = kid_of(public)
        self._write(self.path_for(kid), private, passphrase, kid)
        return kid, public

    def load(self, kid: bytes, passphrase: str | Secret) -> Ed25519PrivateKey:
        """Decrypt the private key ``kid``; WrongPassphrase or KeyStoreError with the reason."""
        path = self.path_for(kid)
        key = self._read(path, kid, passphrase, f"密钥 {kid.hex()}")
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"私钥文件 {path} 不是 Ed25519 密钥")
        if kid_of(raw_public(key.public_key())) != kid:
            raise KeyStoreError(f"私钥文件 {path} 与密钥标识 {kid.hex()} 不符")
        return key

    def generate_x509_key(self, kid: bytes, passphrase: str | Secret) -> ec.EllipticCurvePrivateKey:
        """Create the P-256 document-signing key of QR key ``kid``, written encrypted (mode 0600)."""
        from certgen.docsign import new_signing_key

        private = new_signing_key()
        self._write(self.x509_key_path(kid), private, passphrase, kid)
        return private

    def load_x509_key(self, kid: bytes, passphrase: str | Secret) -> ec.EllipticCurvePrivateKey:
        """Decrypt the document-signing key of QR key ``kid``."""
        path = self.x509_key_path(kid)
        key = self._read(path, kid, passphrase, f"密钥 {kid.hex()} 的文档签名密钥")
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
