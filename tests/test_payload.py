"""The signed QR payload against its golden vectors, a second COSE implementation and random input."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

import base45
import cbor2
import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from certgen.exceptions import PayloadError
from certgen.idtypes import gb11643_check_char
from certgen.payload import MAX_TEXT_LENGTH, QR_MAX_VERSION, decode, sign
from certgen.record import TEXT_LIMITS, CertificateRecord
from certgen.trust import PublicKeyInfo, TrustBundle
from tests.vectors.payload import make_vectors as mv
from verify.check import clean_scanned_text, verify_text

VECTORS = Path(__file__).parent / "vectors" / "payload"
TODAY = dt.date(2026, 11, 21)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def vector_trust() -> TrustBundle:
    keys = []
    for k in load(VECTORS / "trust.json")["keys"]:
        keys.append(PublicKeyInfo(
            bytes.fromhex(k["kid"]), bytes.fromhex(k["public_key"]), k["filing_number"], k["institution"],
            dt.date.fromisoformat(k["valid_from"]), None,
        ))  # fmt: skip
    return TrustBundle(tuple(keys))


POSITIVE = sorted(p for p in VECTORS.glob("*.json") if not p.name.startswith(("neg-", "trust")))
NEGATIVE = sorted(VECTORS.glob("neg-*.json"))


def test_the_vector_set_covers_what_the_format_promises() -> None:
    names = {p.stem for p in POSITIVE}
    assert {"ascii-only", "long-cjk", "rare-name-smp", "job-type-absent"} <= names
    negatives = {p.stem.removeprefix("neg-") for p in NEGATIVE}
    assert {"bitflip-signature", "wrong-kid", "truncated", "bad-base45", "alg-es256", "oversized"} <= negatives


@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.stem)
def test_encoding_reproduces_every_stage_byte_for_byte(path: Path) -> None:
    vec = load(path)
    signed = sign(CertificateRecord.from_fields(vec["record"]), vec["template"], mv.test_key(), mv.kid(mv.test_key()))
    assert signed.claims_cbor.hex() == vec["claims_cbor"]
    assert signed.protected.hex() == vec["protected"]
    assert signed.cose.hex() == vec["cose"]
    assert signed.text == vec["text"]


@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.stem)
def test_decoding_gives_back_the_record_and_a_valid_verdict(path: Path) -> None:
    vec = load(path)
    claims = decode(vec["text"]).claims.to_json()
    assert claims == vec["expected"]["claims"]
    assert claims["name"] == vec["record"]["name"]  # exact code points, no normalisation
    result = verify_text(vec["text"], vector_trust(), today=TODAY)
    assert result.status == "valid", result.findings
    assert result.institution == mv.TEST_INSTITUTION


@pytest.mark.parametrize("path", NEGATIVE, ids=lambda p: p.stem)
def test_negative_vectors(path: Path) -> None:
    vec = load(path)
    expected = vec["expected"]
    if expected["outcome"] == "error":
        with pytest.raises(PayloadError) as err:
            decode(vec["text"])
        assert (err.value.code, err.value.defect) == (expected["code"], expected["defect"])
    result = verify_text(vec["text"], vector_trust(), today=TODAY)
    assert result.status == "invalid"
    assert result.reasons[0] == (expected.get("reason") or expected["code"])


def _bstr(data: bytes) -> bytes:
    """CBOR byte-string head + data, written out by hand from RFC 8949 section 3.1."""
    n = len(data)
    if n < 24:
        head = bytes([0x40 | n])
    elif n < 256:
        head = bytes([0x58, n])
    else:
        head = bytes([0x59]) + n.to_bytes(2, "big")
    return head + data


@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.stem)
def test_sig_structure_rederived_by_hand_from_rfc9052(path: Path) -> None:
    vec = load(path)
    protected, claims = bytes.fromhex(vec["protected"]), bytes.fromhex(vec["claims_cbor"])
    kid = bytes.fromhex(vec["kid"])
    assert protected == bytes([0xA2, 0x01, 0x27, 0x04, 0x48]) + kid  # {1: -8, 4: h'kid'}
    # Sig_structure = ["Signature1", body_protected, external_aad = h'', payload]  (RFC 9052 4.4)
    by_hand = bytes([0x84, 0x6A]) + b"Signature1" + _bstr(protected) + b"\x40" + _bstr(claims)
    assert by_hand.hex() == vec["sig_structure"]
    cose = bytes.fromhex(vec["cose"])
    assert cose[0] == 0xD2  # tag 18
    signature = cose[-64:]
    Ed25519PublicKey.from_public_bytes(mv.test_key().public_key().public_bytes_raw()).verify(signature, by_hand)


@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.stem)
def test_an_independent_cose_library_accepts_the_vectors(path: Path) -> None:
    from pycose.keys import OKPKey
    from pycose.keys.curves import Ed25519
    from pycose.messages import Sign1Message

    vec = load(path)
    tagged = cbor2.loads(bytes.fromhex(vec["cose"]))
    assert tagged.tag == 18
    # pycose 1.1 wants a list and a dict, while cbor2 >= 6 returns a tagged array as a tuple
    # holding an immutable map: hand it the same four items as the types it checks for
    protected, unprotected, payload, signature = tagged.value
    message = Sign1Message.from_cose_obj([protected, dict(unprotected), payload, signature], True)
    message.key = OKPKey(crv=Ed25519, x=mv.test_key().public_key().public_bytes_raw())
    assert message.verify_signature()
    assert message.phdr_encoded == bytes.fromhex(vec["protected"])


def _largest_record() -> CertificateRecord:
    first17 = "11010519491231002"
    smp = "𫖯"
    return CertificateRecord(
        name=smp * (TEXT_LIMITS["name"].utf8 // 4),
        id_type=201,
        id_number=first17 + gb11643_check_char(first17),
        occupation_code="6-18-01-01-01",
        occupation="车" * (TEXT_LIMITS["occupation"].utf8 // 3),
        job_type="工" * (TEXT_LIMITS["job_type"].utf8 // 3),
        level=3,
        issue_date=TODAY,
        number="Y000021012001263999999",
    )


def test_the_largest_valid_record_fits_qr_version_14_at_level_m() -> None:
    record = _largest_record()
    # the longest template id, and the form claim of an electronic certificate
    signed = sign(record, "abcdefghijklmn", mv.test_key(), mv.kid(mv.test_key()), form="electronic")
    assert len(signed.text) == 528
    qr = segno.make_qr(signed.text, error="m", boost_error=False)
    assert qr.mode == "alphanumeric"
    assert qr.version <= QR_MAX_VERSION
    # so a 30 mm symbol keeps its modules at 0.40 mm or more
    assert 30 / qr.symbol_size(border=0)[0] >= 0.40


# --- property tests ---------------------------------------------------------------------------
names = st.text(
    alphabet=st.characters(categories=("Lo", "Lu", "Ll"), exclude_characters="\u0000"), min_size=1, max_size=15
)


@st.composite
def records(draw: st.DrawFn) -> CertificateRecord:
    level = draw(st.integers(1, 5))
    day = draw(st.dates(dt.date(2019, 1, 1), TODAY))
    serial = draw(st.integers(1, 999_999))
    first17 = "11010519491231002"
    return CertificateRecord(
        name=draw(names),
        id_type=201,
        id_number=first17 + gb11643_check_char(first17),
        occupation_code=draw(st.sampled_from(["6-18-01-01", "4-04-05-03", "6-31-01-03-01"])),
        occupation=draw(st.text(alphabet="车工电焊钳维修汽机械", min_size=1, max_size=20)),
        job_type=draw(st.none() | st.text(alphabet="数控车工焊接", min_size=1, max_size=15)),
        level=level,
        issue_date=day,
        number=f"Y000021012001{day.year % 100:02d}{level}{serial:06d}",
    )


@settings(max_examples=150, deadline=None)
@given(records())
def test_round_trip_of_random_valid_records(record: CertificateRecord) -> None:
    signed = sign(record, "liaoning-2020", mv.test_key(), mv.kid(mv.test_key()))
    back = decode(signed.text).claims.record()
    assert back == record
    assert len(signed.text) <= 528


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_only_ever_give_typed_errors(data: bytes) -> None:
    text = "ZJ1:" + base45.b45encode(data).decode("ascii")
    with contextlib.suppress(PayloadError):
        decode(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_only_ever_gives_typed_errors(text: str) -> None:
    for candidate in (text, "ZJ1:" + text):
        with contextlib.suppress(PayloadError):
            decode(candidate)
        result = verify_text(candidate, vector_trust(), today=TODAY)
        assert result.status == "invalid"


def test_oversized_input_is_refused_unread() -> None:
    with pytest.raises(PayloadError, match=f"上限{MAX_TEXT_LENGTH}个"):
        decode("ZJ1:" + "A" * 10_000_000)


def test_what_a_wedge_scanner_types_is_cleaned() -> None:
    text = load(VECTORS / "job-type-absent.json")["text"]
    assert clean_scanned_text(f"  {text}\r\n") == text
    assert clean_scanned_text(text.lower() + "\n") == text  # Caps Lock inverted
    assert verify_text(clean_scanned_text(text.lower()), vector_trust(), today=TODAY).valid
