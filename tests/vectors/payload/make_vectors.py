"""Regenerate the payload golden vectors: ``python -m tests.vectors.payload.make_vectors``.

Every file is produced from the record it lists, with the TEST-ONLY keys below (Ed25519 is
deterministic, so the bytes never change unless the format does). Do not run this to make a
failing test pass: a changed vector means the wire format changed, which breaks printed codes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import base45
import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certgen.payload import sig_structure, sign, to_text
from certgen.record import CertificateRecord
from certgen.trust import kid_of, raw_public

HERE = Path(__file__).parent

# TEST-ONLY KEYS. Their private halves are public (derived from these strings); never trust them.
TEST_KEY_SEED = hashlib.sha256(b"certkiosk TEST-ONLY key 1, never use for real certificates").digest()
OTHER_KEY_SEED = hashlib.sha256(b"certkiosk TEST-ONLY key 2, another institution").digest()
TEST_FILING = "Y000021012001"
TEST_INSTITUTION = "示例职业技能等级认定中心（测试用）"
OTHER_FILING = "Y001121011001"
OTHER_INSTITUTION = "另一示例机构（测试用）"


def test_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(TEST_KEY_SEED)


def other_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(OTHER_KEY_SEED)


def kid(key: Ed25519PrivateKey) -> bytes:
    return kid_of(raw_public(key.public_key()))


POSITIVE: dict[str, dict[str, Any]] = {
    "ascii-only": {
        "description": "A foreign passport holder: every printed field but the occupation is ASCII.",
        "template": "national-2021",
        "record": {
            "name": "JOHN SMITH", "id_type": 208, "id_number": "P1234567", "occupation_code": "4-04-05-03",
            "occupation": "计算机程序设计员", "job_type": None, "level": 4, "issue_date": "2024-06-30",
            "number": "Y000021012001244000017",
        },
    },
    "long-cjk": {
        "description": "The longest text every signed field allows, in BMP Chinese characters.",
        "template": "liaoning-2020",
        "record": {
            "name": "欧阳" + "明" * 18, "id_type": 201, "id_number": "11010519491231002X",
            "occupation_code": "6-31-01-03-01", "occupation": "汽车维修工" * 4, "job_type": "汽车机械维修工" * 2 + "工",
            "level": 3, "issue_date": "2020-11-15", "number": "Y000021012001203000001",
        },
    },
    "rare-name-smp": {
        "description": "A name with U+2B5AF 𫖯 (outside the BMP, 4 bytes in UTF-8) and a compatibility ideograph.",
        "template": "liaoning-2020",
        "record": {
            "name": "赵孟𫖯\uf900", "id_type": 201, "id_number": "440524198001010013",
            "occupation_code": "6-18-01-01", "occupation": "车工", "job_type": "数控车工",
            "level": 2, "issue_date": "2021-03-08", "number": "Y000021012001212000009",
        },
    },
    "job-type-absent": {
        "description": "An occupation without job types: claim 9 is left out, printed as ——.",
        "template": "national-2021",
        "record": {
            "name": "李四", "id_type": 201, "id_number": "11010519491231002X", "occupation_code": "6-18-01-01",
            "occupation": "车工", "job_type": None, "level": 5, "issue_date": "2022-01-04",
            "number": "Y000021012001225000123",
        },
    },
}  # fmt: skip


def record_of(fields: dict[str, Any]) -> CertificateRecord:
    return CertificateRecord.from_fields(fields)


def _cose(protected: bytes, unprotected: Any, claims: bytes, signature: bytes, tag: int | None = 18) -> bytes:
    body = [protected, unprotected, claims, signature]
    return cbor2.dumps(cbor2.CBORTag(tag, body) if tag is not None else body, canonical=True)


def _resign(protected: bytes, claims: bytes, key: Ed25519PrivateKey) -> bytes:
    return _cose(protected, {}, claims, key.sign(sig_structure(protected, claims)))


def negatives(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each negative case, named after its defect, derived from the ``job-type-absent`` vector."""
    claims = bytes.fromhex(base["claims_cbor"])
    protected = bytes.fromhex(base["protected"])
    cose = bytearray(bytes.fromhex(base["cose"]))
    text = base["text"]
    key = test_key()
    flipped = bytearray(cose)
    flipped[-1] ^= 0x01
    claims_map = cbor2.loads(claims)
    dup = bytearray(claims)
    dup[0] += 1  # one more entry in the map header ...
    dup += cbor2.dumps(4) + cbor2.dumps("王五")  # ... and a second claim 4 (name)
    unknown = dict(claims_map) | {99: "x"}
    wrong_type = dict(claims_map) | {10: "3"}
    bad_template = dict(claims_map) | {2: "National_2021"}
    empty_template = dict(claims_map) | {2: ""}
    reordered = dict(sorted(claims_map.items(), reverse=True))  # keys 11 ... 1: not deterministic CBOR
    cases: dict[str, tuple[str, str, dict[str, Any]]] = {
        "bitflip-signature": (
            "The last bit of the signature flipped.",
            to_text(bytes(flipped)), {"outcome": "invalid", "reason": "BAD_SIGNATURE"},
        ),
        "wrong-kid": (
            "Signed by the test key, but the protected header names the other key's kid.",
            to_text(_resign(cbor2.dumps({1: -8, 4: kid(other_key())}, canonical=True), claims, key)),
            {"outcome": "invalid", "reason": "BAD_SIGNATURE"},
        ),
        "unknown-kid": (
            "A well-formed payload signed by a key nobody trusts.",
            to_text(_resign(cbor2.dumps({1: -8, 4: b"\x01" * 8}, canonical=True), claims, key)),
            {"outcome": "invalid", "reason": "UNKNOWN_KEY"},
        ),
        "other-institution": (
            "Signed by another trusted institution's key, for this institution's number.",
            to_text(_resign(cbor2.dumps({1: -8, 4: kid(other_key())}, canonical=True), claims, other_key())),
            {"outcome": "invalid", "reason": "NUMBER_KEY_MISMATCH"},
        ),
        "truncated": (
            "The text cut after 60% of its characters (at a base45 group boundary).",
            text[: 4 + (len(text) - 4) * 6 // 10 // 3 * 3], {"outcome": "error", "code": "MALFORMED", "defect": "cbor"},
        ),
        "bad-base45": (
            "A character outside the base45 alphabet ('#') in the middle.",
            text[:20] + "#" + text[21:], {"outcome": "error", "code": "MALFORMED", "defect": "base45"},
        ),
        "trailing-bytes": (
            "Two bytes after the COSE structure.",
            to_text(bytes(cose) + b"\x00\x00"), {"outcome": "error", "code": "MALFORMED", "defect": "trailing"},
        ),
        "untagged": (
            "The COSE_Sign1 array without its tag 18.",
            to_text(_cose(protected, {}, claims, b"\x00" * 64, tag=None)),
            {"outcome": "error", "code": "MALFORMED", "defect": "tag"},
        ),
        "alg-es256": (
            "The protected header says ES256 (-7); signed with the Ed25519 test key anyway.",
            to_text(_resign(cbor2.dumps({1: -7, 4: kid(key)}, canonical=True), claims, key)),
            {"outcome": "error", "code": "MALFORMED", "defect": "alg"},
        ),
        "kid-4-bytes": (
            "A 4-byte kid.",
            to_text(_resign(cbor2.dumps({1: -8, 4: b"\x01\x02\x03\x04"}, canonical=True), claims, key)),
            {"outcome": "error", "code": "MALFORMED", "defect": "kid"},
        ),
        "duplicate-claim": (
            "Claim 4 (name) twice in the claims map; correctly signed.",
            to_text(_resign(protected, bytes(dup), key)),
            {"outcome": "error", "code": "MALFORMED", "defect": "duplicate_key"},
        ),
        "unknown-claim": (
            "An extra claim 99; correctly signed.",
            to_text(_resign(protected, cbor2.dumps(unknown, canonical=True), key)),
            {"outcome": "error", "code": "MALFORMED", "defect": "unknown_claim"},
        ),
        "wrong-type": (
            "Level (claim 10) as the text '3'; correctly signed.",
            to_text(_resign(protected, cbor2.dumps(wrong_type, canonical=True), key)),
            {"outcome": "error", "code": "MALFORMED", "defect": "type"},
        ),
        "template-charset": (
            "Template id 'National_2021' (upper case and '_' are outside a-z 0-9 -); correctly signed.",
            to_text(_resign(protected, cbor2.dumps(bad_template, canonical=True), key)),
            {"outcome": "error", "code": "MALFORMED", "defect": "template"},
        ),
        "template-empty": (
            "An empty template id; correctly signed.",
            to_text(_resign(protected, cbor2.dumps(empty_template, canonical=True), key)),
            {"outcome": "error", "code": "MALFORMED", "defect": "template"},
        ),
        "claims-key-order": (
            "The same claims with their keys in descending order (not deterministic CBOR); correctly signed.",
            to_text(_resign(protected, cbor2.dumps(reordered), key)),
            {"outcome": "error", "code": "MALFORMED", "defect": "not_canonical"},
        ),
        "oversized": (
            "4,097 characters: refused before decoding.",
            "ZJ1:" + "0" * 4093, {"outcome": "error", "code": "MALFORMED", "defect": "oversized"},
        ),
        "other-prefix": (
            "An EU Digital COVID Certificate prefix.",
            "HC1:" + text[4:], {"outcome": "error", "code": "NOT_OUR_FORMAT", "defect": "prefix"},
        ),
        "future-version": (
            "Our prefix with envelope version 2.",
            "ZJ2:" + text[4:], {"outcome": "error", "code": "NOT_OUR_FORMAT", "defect": "version"},
        ),
    }  # fmt: skip
    return {
        name: {"description": desc, "derived_from": "job-type-absent", "text": t, "expected": exp}
        for name, (desc, t, exp) in cases.items()
    }


def positive(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    record = record_of(spec["record"])
    signed = sign(record, spec["template"], test_key(), kid(test_key()))
    assert base45.b45decode(signed.text[4:]) == signed.cose
    return {
        "description": spec["description"],
        "record": spec["record"],
        "template": spec["template"],
        "kid": kid(test_key()).hex(),
        "claims_cbor": signed.claims_cbor.hex(),
        "protected": signed.protected.hex(),
        "sig_structure": sig_structure(signed.protected, signed.claims_cbor).hex(),
        "cose": signed.cose.hex(),
        "text": signed.text,
        "expected": {"outcome": "valid", "claims": spec["record"] | {"version": 1, "template": spec["template"]}},
    }


def write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", "utf-8")


def main() -> None:
    trust = {
        "note": "TEST-ONLY keys: their private halves are published in make_vectors.py.",
        "keys": [
            {"kid": kid(k).hex(), "public_key": raw_public(k.public_key()).hex(), "filing_number": f,
             "institution": n, "valid_from": "2020-01-01", "valid_until": None}
            for k, f, n in ((test_key(), TEST_FILING, TEST_INSTITUTION), (other_key(), OTHER_FILING, OTHER_INSTITUTION))
        ],
    }  # fmt: skip
    write(HERE / "trust.json", trust)
    made = {name: positive(name, spec) for name, spec in POSITIVE.items()}
    for name, data in made.items():
        write(HERE / f"{name}.json", data)
    for name, data in negatives(made["job-type-absent"]).items():
        write(HERE / f"neg-{name}.json", data)


if __name__ == "__main__":
    main()
