"""Private key files: a memory-hard KDF, re-wrapping old files, and damaged files named as such."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import certgen.station.keys
from certgen.exceptions import KeyStoreError, WrongPassphrase
from certgen.station.keys import DEFAULT_KDF, PEM_BEGIN, KeyStore, ScryptParams
from certgen.trust import kid_of, raw_public
from tests.conftest import PASSPHRASE


def _params(path: Path) -> dict[str, int]:
    lines = path.read_text("ascii").splitlines()
    body = json.loads(base64.b64decode("".join(lines[1:-1])))
    return {k: body["kdf"][k] for k in ("n", "r", "p")}


def test_the_default_kdf_is_memory_hard_and_really_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certgen.station.keys, "KDF", DEFAULT_KDF)  # undo the suite's fast_kdf for this test
    store = KeyStore(tmp_path / "keys")
    kid, public = store.generate(PASSPHRASE)
    assert _params(store.path_for(kid)) == {"n": 2**17, "r": 8, "p": 1}  # 128 MiB per guess, in the file
    assert stat.S_IMODE(store.path_for(kid).stat().st_mode) == 0o600
    assert raw_public(store.load(kid, PASSPHRASE).public_key()) == public


def test_an_old_pkcs8_file_is_rewrapped_on_the_next_unlock(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.folder.mkdir(mode=0o700)
    private = Ed25519PrivateKey.generate()
    kid = kid_of(raw_public(private.public_key()))
    old = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )  # fmt: skip
    path = store.path_for(kid)
    path.write_bytes(old)
    path.chmod(0o600)
    with pytest.raises(WrongPassphrase):
        store.load(kid, "not the passphrase")
    assert path.read_bytes() == old  # a failed unlock changes nothing
    store.load(kid, PASSPHRASE)
    assert path.read_bytes().startswith(PEM_BEGIN.encode())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _params(path) == {"n": certgen.station.keys.KDF.n, "r": 8, "p": 1}
    assert raw_public(store.load(kid, PASSPHRASE).public_key()) == raw_public(private.public_key())


def test_weaker_envelope_parameters_are_raised_on_unlock(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.folder.mkdir(mode=0o700)
    private = Ed25519PrivateKey.generate()
    kid = kid_of(raw_public(private.public_key()))
    path = store.path_for(kid)
    path.write_bytes(store.seal(private, PASSPHRASE, ScryptParams(n=2**10, r=8, p=1)))
    path.chmod(0o600)
    store.load(kid, PASSPHRASE)
    assert _params(path)["n"] == certgen.station.keys.KDF.n > 2**10


@pytest.fixture
def key_file(tmp_path: Path) -> tuple[KeyStore, bytes, Path]:
    store = KeyStore(tmp_path / "keys")
    kid, _ = store.generate(PASSPHRASE)
    return store, kid, store.path_for(kid)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[: len(d) // 2], "不完整（被截断）"),
        (lambda d: b"", "是空的"),
        (lambda d: d.replace(b"\n", b"\n\n", 3)[:-60] + d[-50:], "已损坏"),
        (lambda d: _flip(d, 200), "已损坏"),
        (lambda d: _flip(d, len(d) - 120), "已损坏"),
        (lambda d: b"hello", "不是 certkiosk 私钥文件"),
    ],
    ids=["truncated", "empty", "spliced", "flipped-early", "flipped-late", "foreign"],
)
def test_a_damaged_key_file_is_not_called_a_wrong_passphrase(
    key_file: tuple[KeyStore, bytes, Path],
    damage,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    store, kid, path = key_file
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(KeyStoreError, match=message) as info:
        store.load(kid, PASSPHRASE)
    assert not isinstance(info.value, WrongPassphrase)


def test_an_unencrypted_key_file_is_refused_as_such(key_file: tuple[KeyStore, bytes, Path]) -> None:
    store, kid, path = key_file
    private = store.load(kid, PASSPHRASE)
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(KeyStoreError, match="未加密：拒绝使用"):
        store.load(kid, PASSPHRASE)


def test_a_key_path_pointing_at_a_device_is_refused(key_file: tuple[KeyStore, bytes, Path]) -> None:
    store, kid, path = key_file
    path.unlink()
    os.symlink("/dev/zero", path)
    with pytest.raises(KeyStoreError, match="不是普通文件"):
        store.load(kid, PASSPHRASE)


def test_a_truncated_old_pkcs8_file_is_named(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.folder.mkdir(mode=0o700)
    private = Ed25519PrivateKey.generate()
    kid = kid_of(raw_public(private.public_key()))
    old = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )  # fmt: skip
    path = store.path_for(kid)
    path.write_bytes(old[:100])
    path.chmod(0o600)
    with pytest.raises(KeyStoreError, match="不完整"):
        store.load(kid, PASSPHRASE)
