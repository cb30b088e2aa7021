"""Signed trust bundles: each attack of issue 14 performed against a verifying station."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest

from certgen.bundle import BundleBody, make_bundle, open_bundle
from certgen.exceptions import TrustConflict, TrustError
from certgen.payload import sign_detached
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.trust import PublicKeyInfo, Revocation, key_fingerprint
from tests.conftest import FILING, INSTITUTION, PASSPHRASE

OTHER_FILING = "Y001121011001"
OTHER_NAME = "沈阳某职业技能评价中心"
T0 = "2026-01-10T08:00:00Z"


def make_station(root: Path, name: str) -> Station:
    return Station(StationHome(root / name, "--home").ensure())


@pytest.fixture
def issuer_station(keyed_station: tuple[Station, PublicKeyInfo]) -> Station:
    return keyed_station[0]


@pytest.fixture
def verifier(tmp_path: Path) -> Station:
    return make_station(tmp_path, "employer")


def export(station: Station, path: Path, now: str = T0, **kw: object) -> Path:
    station.export_trust(path, PASSPHRASE, now=now, **kw)  # type: ignore[arg-type]
    return path


def add_revocation(station: Station, rev: Revocation) -> None:
    station.trust.save(station.trust.load().with_revocations([rev]))


def test_a_signed_bundle_round_trips_and_carries_issuer_time_and_sequence(
    issuer_station: Station, verifier: Station, tmp_path: Path
) -> None:
    first = issuer_station.export_trust(tmp_path / "b1.json", PASSPHRASE, now=T0)
    second = issuer_station.export_trust(tmp_path / "b2.json", PASSPHRASE, now="2026-01-11T08:00:00Z")
    assert (first.sequence, second.sequence) == (1, 2)  # persisted and monotonic
    signed = open_bundle((tmp_path / "b1.json").read_bytes())
    assert (signed.body.filing_number, signed.body.issued_at, signed.body.sequence) == (FILING, T0, 1)
    result = verifier.import_trust(tmp_path / "b1.json")
    assert result.how == "first" and len(result.added_keys) == 1
    again = verifier.import_trust(tmp_path / "b1.json")
    assert again.added_keys == () and again.added_revocations == 0


def test_an_unsigned_bundle_is_refused(issuer_station: Station, verifier: Station, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.json"
    legacy.write_bytes(issuer_station.trust.load().to_bytes())
    with pytest.raises(TrustError, match="没有签名"):
        verifier.import_trust(legacy)
    assert not verifier.trust.exists()


def test_an_altered_bundle_or_signature_is_refused(issuer_station: Station, verifier: Station, tmp_path: Path) -> None:
    path = export(issuer_station, tmp_path / "b.json")
    envelope = json.loads(path.read_bytes())
    body = json.loads(base64.b64decode(envelope["body"]))
    body["institution"] = "别的公司"
    for key in body["keys"]:
        key["institution"], key["valid_from"] = "别的公司", "2000-01-01"
    altered = dict(envelope, body=base64.b64encode(json.dumps(body, ensure_ascii=False, sort_keys=True,
                                                              separators=(",", ":")).encode()).decode())  # fmt: skip
    (tmp_path / "altered.json").write_text(json.dumps(altered))
    with pytest.raises(TrustError, match="签名无效：内容在签名后被改动"):
        verifier.import_trust(tmp_path / "altered.json")
    signature = bytearray(base64.b64decode(envelope["signature"]))
    signature[-1] ^= 1
    flipped = dict(envelope, signature=base64.b64encode(bytes(signature)).decode())
    (tmp_path / "flipped.json").write_text(json.dumps(flipped))
    with pytest.raises(TrustError, match="签名无效"):
        verifier.import_trust(tmp_path / "flipped.json")
    assert not verifier.trust.exists()


def test_a_bundle_signed_by_a_key_it_does_not_contain_is_refused(issuer_station: Station, tmp_path: Path) -> None:
    intruder = make_station(tmp_path, "intruder")
    other, _ = intruder.new_key(OTHER_FILING, OTHER_NAME, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    genuine = open_bundle(export(issuer_station, tmp_path / "b.json").read_bytes()).body
    private = intruder.keystore.load(other.kid, PASSPHRASE)
    with pytest.raises(TrustError, match="不在信任包中"):
        make_bundle(genuine, private)
    content = genuine.to_bytes()
    envelope = {
        "format": "certkiosk-trust-signed/1", "signer": base64.b64encode(other.public_key).decode(),
        "body": base64.b64encode(content).decode(),
        "signature": base64.b64encode(sign_detached(content, private, other.kid)).decode(),
    }  # fmt: skip
    (tmp_path / "foreign-signer.json").write_text(json.dumps(envelope))
    with pytest.raises(TrustError, match="由不在包内的密钥"):
        open_bundle((tmp_path / "foreign-signer.json").read_bytes())


def test_an_impersonating_bundle_is_refused_unless_the_operator_confirms_its_fingerprint(
    issuer_station: Station, verifier: Station, tmp_path: Path
) -> None:
    verifier.import_trust(export(issuer_station, tmp_path / "genuine.json"))
    before = verifier.trust.path.read_bytes()
    impostor = make_station(tmp_path, "impostor")
    fake, _ = impostor.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    forged = export(impostor, tmp_path / "impostor.json")
    with pytest.raises(TrustConflict, match=r"由新密钥 .*签名，且没有已信任密钥的轮换签名"):
        verifier.import_trust(forged)
    with pytest.raises(TrustConflict, match="--accept-fingerprint 与签名密钥"):
        verifier.import_trust(forged, accept_fingerprint="00" * 32)
    assert verifier.trust.path.read_bytes() == before
    assert verifier.trust.load().key(fake.kid) is None
    # the operator called the institution and read the new fingerprint: now it is accepted
    grouped = " ".join(key_fingerprint(fake)[i : i + 4] for i in range(0, 64, 4)).upper()
    result = verifier.import_trust(forged, accept_fingerprint=grouped)
    assert result.how == "operator" and verifier.trust.load().key(fake.kid) is not None


def test_a_renamed_key_with_wider_validity_cannot_be_slipped_in(
    issuer_station: Station, verifier: Station, tmp_path: Path
) -> None:
    _, info = issuer_station.list_keys()[0].info, issuer_station.list_keys()[0].info
    verifier.import_trust(export(issuer_station, tmp_path / "genuine.json"))
    impostor = make_station(tmp_path, "impostor")
    fake, _ = impostor.new_key(FILING, "冒名机构", PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    renamed = PublicKeyInfo(info.kid, info.public_key, FILING, "冒名机构", dt.date(2000, 1, 1), None)
    body = BundleBody(FILING, "冒名机构", T0, 99, None, (renamed, fake), ())
    (tmp_path / "renamed.json").write_bytes(make_bundle(body, impostor.keystore.load(fake.kid, PASSPHRASE)))
    with pytest.raises(TrustConflict, match="没有已信任密钥的轮换签名"):
        verifier.import_trust(tmp_path / "renamed.json")
    kept = verifier.trust.load().key(info.kid)
    assert kept is not None and kept.institution == INSTITUTION and kept.valid_from == dt.date(2020, 1, 1)


def test_a_bundle_may_not_revoke_another_institutions_certificate_or_key(
    issuer_station: Station, verifier: Station, tmp_path: Path
) -> None:
    victim = issuer_station.list_keys()[0].info
    verifier.import_trust(export(issuer_station, tmp_path / "genuine.json"))
    third = make_station(tmp_path, "third")
    other, _ = third.new_key(OTHER_FILING, OTHER_NAME, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    private = third.keystore.load(other.kid, PASSPHRASE)
    attacks = [
        (Revocation("certificate", FILING + "203000001", "冒名吊销", T0), "吊销其他机构的证书"),
        (Revocation("key", victim.kid_hex, "冒名吊销", T0), "吊销不属于它的密钥"),
        (Revocation("batch", "Bdeadbeef", "冒名吊销", T0, (FILING + "203000001",)), "批次 Bdeadbeef"),
    ]
    before = verifier.trust.path.read_bytes()
    for i, (rev, message) in enumerate(attacks):
        body = BundleBody(OTHER_FILING, OTHER_NAME, T0, i + 1, None, (other,), (rev,))
        path = tmp_path / f"foreign{i}.json"
        path.write_bytes(make_bundle(body, private))
        with pytest.raises(TrustConflict, match=message):
            verifier.import_trust(path)
    assert verifier.trust.path.read_bytes() == before
    assert verifier.trust.load().key_revocation(victim.kid) is None
    assert verifier.trust.load().key(other.kid) is None  # the whole bundle was refused


def test_a_roll_over_signed_by_the_old_key_is_accepted(
    issuer_station: Station, verifier: Station, tmp_path: Path
) -> None:
    verifier.import_trust(export(issuer_station, tmp_path / "b1.json"))
    new, previous = issuer_station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2026, 1, 1))
    assert previous is not None
    result = verifier.import_trust(export(issuer_station, tmp_path / "b2.json", now="2026-02-01T00:00:00Z"))
    assert result.how == "rollover" and result.added_keys == (new.kid_hex,)
    store = verifier.trust.load()
    kept = store.key(previous.kid)
    assert kept is not None and kept.valid_until == dt.date(2025, 12, 31)  # narrowed by the institution


def test_an_older_bundle_never_undoes_a_newer_one(issuer_station: Station, verifier: Station, tmp_path: Path) -> None:
    old_key = issuer_station.list_keys()[0].info
    b1 = export(issuer_station, tmp_path / "b1.json")
    issuer_station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2026, 1, 1))
    add_revocation(issuer_station, Revocation("certificate", FILING + "263000001", "错发", "2026-02-01T00:00:00Z"))
    b2 = export(issuer_station, tmp_path / "b2.json", now="2026-02-01T00:00:00Z")
    verifier.import_trust(b2)
    replay = verifier.import_trust(b1)
    assert replay.older and replay.updated_keys == ()
    store = verifier.trust.load()
    kept = store.key(old_key.kid)
    assert kept is not None and kept.valid_until == dt.date(2025, 12, 31)  # not widened back
    assert store.certificate_revocation(FILING + "263000001") is not None  # not lost
    state = store.institution(FILING)
    assert state is not None and state.sequence == 2 and state.as_of == "2026-02-01T00:00:00Z"


def test_revocation_updates_apply_in_any_order_once_and_report_gaps(
    issuer_station: Station, verifier: Station, tmp_path: Path
) -> None:
    numbers = [f"{FILING}263{n:06d}" for n in range(1, 8)]
    export(issuer_station, tmp_path / "full1.json", now="2026-01-01T00:00:00Z")
    updates = {}
    for seq in range(2, 8):
        at = f"2026-01-{seq:02d}T00:00:00Z"
        add_revocation(issuer_station, Revocation("certificate", numbers[seq - 1], f"第{seq}号", at))
        updates[seq] = export(issuer_station, tmp_path / f"u{seq}.json", now=at[:11] + "12:00:00Z", since=seq - 1)
    small = open_bundle(updates[5].read_bytes()).body
    assert [r.target for r in small.revocations] == [numbers[4]]  # only what changed since 4
    verifier.import_trust(tmp_path / "full1.json")
    verifier.import_trust(updates[2])
    verifier.import_trust(updates[3])
    gap = verifier.import_trust(updates[7])
    assert gap.gap_text == "缺少更新 4-6"
    assert verifier.trust.load().certificate_revocation(numbers[6]) is not None  # applied anyway
    state = verifier.trust.load().institution(FILING)
    assert state is not None and state.as_of == "2026-01-03T12:00:00Z"  # fresh only up to the gap
    for seq in (6, 4, 6, 5):  # out of order and twice
        result = verifier.import_trust(updates[seq])
    assert result.gaps == ()
    store = verifier.trust.load()
    state = store.institution(FILING)
    assert state is not None and state.covered == 7 and state.as_of == "2026-01-07T12:00:00Z"
    assert sum(1 for r in store.revocations if r.scope == "certificate") == 6
    assert all(store.certificate_revocation(n) is not None for n in numbers[1:])


def test_export_since_an_unknown_sequence_is_refused(issuer_station: Station, tmp_path: Path) -> None:
    with pytest.raises(TrustError, match=r"没有导出过机构 .* 的第3号信任包"):
        issuer_station.export_trust(tmp_path / "u.json", PASSPHRASE, since=3)


def test_a_first_bundle_under_a_trusted_institutions_name_needs_the_operator(
    issuer_station: Station, verifier: Station, tmp_path: Path
) -> None:
    verifier.import_trust(export(issuer_station, tmp_path / "genuine.json"))
    namesake = make_station(tmp_path, "namesake")
    fake, _ = namesake.new_key(OTHER_FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    path = export(namesake, tmp_path / "namesake.json")
    with pytest.raises(TrustConflict, match="同名"):
        verifier.import_trust(path)
    assert verifier.import_trust(path, accept_fingerprint=key_fingerprint(fake)).added_keys == (fake.kid_hex,)


def test_a_bundle_pairing_a_key_with_another_keys_certificate_is_refused(
    issuer_station: Station, verifier: Station, tmp_path: Path
) -> None:
    """docs/electronic.md: a bundle entry's certificate must name its key's kid, institution and
    filing number. A bundle signed by its own (genuine) key but carrying another institution's
    document-signing certificate for it would make that institution's PDFs pass as this one's."""
    intruder = make_station(tmp_path, "intruder")
    other, _ = intruder.new_key(OTHER_FILING, OTHER_NAME, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    assert other.x509 is not None
    genuine = open_bundle(export(issuer_station, tmp_path / "b.json").read_bytes()).body
    own = genuine.keys[0]
    swapped = BundleBody(
        genuine.filing_number, genuine.institution, genuine.issued_at, genuine.sequence, genuine.since,
        (own.with_x509(other.x509),), genuine.revocations, genuine.endorsements,
    )  # fmt: skip
    forged = make_bundle(swapped, issuer_station.keystore.load(own.kid, PASSPHRASE))
    (tmp_path / "swapped.json").write_bytes(forged)
    with pytest.raises(TrustError, match="签名证书属于密钥"):
        verifier.import_trust(tmp_path / "swapped.json")
    assert not verifier.trust.exists()


def test_a_trust_store_edited_to_pair_a_key_with_another_certificate_names_no_signer(
    issuer_station: Station, tmp_path: Path
) -> None:
    """The local trust store's certificates are checked when used (not when read, to keep a QR
    code's verification free of X.509): an edited pairing makes that certificate no one's signer."""
    import base64 as b64

    from verify.pdfsig import _facts

    intruder = make_station(tmp_path, "intruder")
    other, _ = intruder.new_key(OTHER_FILING, OTHER_NAME, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    assert other.x509 is not None
    trust = issuer_station.trust.load()
    own = trust.keys[0]
    edited = trust.with_key(own.with_x509(other.x509))
    found = {"present": True, "intact": True, "whole_file": True, "certificate": b64.b64encode(other.x509).decode()}
    assert _facts(found, edited).signer is None
    assert _facts(dict(found, certificate=b64.b64encode(own.x509 or b"").decode()), trust).signer == own
