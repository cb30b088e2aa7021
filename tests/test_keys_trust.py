"""Institution keys (encrypted at rest, 0600, never printed) and the trust store."""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
from pathlib import Path

import pytest

from certgen.exceptions import KeyStoreError, RegisterError, TrustError, WrongPassphrase
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.trust import PublicKeyInfo, TrustBundle, kid_of
from tests.conftest import FILING, INSTITUTION, PASSPHRASE


def test_a_new_key_is_encrypted_private_and_bound_to_its_institution(station: Station) -> None:
    info, previous = station.new_key(FILING, INSTITUTION, PASSPHRASE)
    assert previous is None
    path = station.keystore.path_for(info.kid)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN CERTKIOSK ENCRYPTED PRIVATE KEY-----")
    assert info.kid == hashlib.sha256(info.public_key).digest()[:8] == kid_of(info.public_key)
    assert (info.filing_number, info.institution) == (FILING, INSTITUTION)
    key = station.keystore.load(info.kid, PASSPHRASE)
    assert key.public_key().public_bytes_raw() == info.public_key
    trusted = station.trust.load().key(info.kid)
    assert trusted == info


def test_wrong_passphrase_is_a_clear_error(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, info = keyed_station
    with pytest.raises(WrongPassphrase, match=f"口令错误：无法解密密钥 {info.kid.hex()}"):
        station.keystore.load(info.kid, "not the passphrase")


def test_a_readable_key_file_is_refused(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, info = keyed_station
    station.keystore.path_for(info.kid).chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        station.keystore.load(info.kid, PASSPHRASE)


def test_short_passphrase_and_bad_filing_number_are_refused(station: Station) -> None:
    with pytest.raises(KeyStoreError, match="口令太短：至少8个字符，收到3个"):
        station.new_key(FILING, INSTITUTION, "abc")
    with pytest.raises(RegisterError, match="地市代码 15"):
        station.new_key("Y000021152001", INSTITUTION, PASSPHRASE)
    assert station.keystore.kids() == []


def test_a_roll_keeps_the_old_key_for_verification(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, old = keyed_station
    new, previous = station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2023, 7, 1))
    assert previous is not None and previous.kid == old.kid
    assert previous.valid_until == dt.date(2023, 6, 30)
    bundle = station.trust.load()
    kept = bundle.key(old.kid)
    assert kept is not None and kept.valid_on(dt.date(2021, 1, 1)) and not kept.valid_on(dt.date(2024, 1, 1))
    assert bundle.key(new.kid) == new
    with station.register() as reg:
        assert reg.signing_key(FILING, dt.date(2024, 1, 1)).kid == new.kid
        assert reg.signing_key(FILING, dt.date(2021, 1, 1)).kid == old.kid


def test_a_key_for_a_differently_named_institution_is_refused(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, _ = keyed_station
    with pytest.raises(RegisterError, match="已登记为「华晨汽车集团控股有限公司」"):
        station.new_key(FILING, "别的公司", PASSPHRASE)
    assert len(station.keystore.kids()) == 1  # the key file of the refused key was removed


def test_trust_export_import_and_fingerprint(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path) -> None:
    station, info = keyed_station
    bundle_path = tmp_path / "bundle.json"
    exported = station.export_trust(bundle_path, PASSPHRASE)
    assert exported.fingerprint == hashlib.sha256(bundle_path.read_bytes()).hexdigest()
    verifier = Station(StationHome(tmp_path / "employer", "--home"))
    result = verifier.import_trust(bundle_path)
    assert result.signed.fingerprint == exported.fingerprint
    assert result.added_keys == (info.kid.hex(),)
    assert verifier.trust.load().key(info.kid) == info
    again = verifier.import_trust(bundle_path)
    assert again.added_keys == () and again.updated_keys == ()


def test_a_roll_over_is_signed_by_the_old_key(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, old = keyed_station
    new, _ = station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2023, 7, 1))
    endorsement = station.trust.load().endorsements
    assert [(e.kid, e.by) for e in endorsement] == [(new.kid, old.kid)]


def test_a_roll_over_needs_the_old_keys_passphrase(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, _ = keyed_station
    with pytest.raises(WrongPassphrase, match="请提供原密钥的口令"):
        station.new_key(FILING, INSTITUTION, "another passphrase", valid_from=dt.date(2023, 7, 1))
    assert len(station.keystore.kids()) == 1
    new, _ = station.new_key(
        FILING, INSTITUTION, "another passphrase", valid_from=dt.date(2023, 7, 1), old_passphrase=PASSPHRASE
    )
    assert station.keystore.load(new.kid, "another passphrase") is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "不是有效的 JSON"),
        (b"{}", "不是 certkiosk 信任包"),
        (b'{"format": "certkiosk-trust/1", "keys": [{"kid": "00"}]}', "密钥记录格式错误"),
    ],
)
def test_bad_bundles_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(content)
    with pytest.raises(TrustError, match=message):
        TrustBundle.from_bytes(path.read_bytes())


def test_a_kid_that_does_not_match_its_key_is_refused(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    _, info = keyed_station
    with pytest.raises(TrustError, match="与公钥不符"):
        PublicKeyInfo(b"\x00" * 8, info.public_key, FILING, INSTITUTION, dt.date(2020, 1, 1), None)


def test_revocations_reach_the_trust_store(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, info = keyed_station
    station.revoke("key", info.kid.hex(), "私钥泄露")
    bundle = station.trust.load()
    revocation = bundle.key_revocation(info.kid)
    assert revocation is not None and revocation.reason == "私钥泄露"
