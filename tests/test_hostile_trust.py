"""Issue 11 (10, 11): trust bundles read strictly, payloads held to docs/payload.md."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from certgen.exceptions import MalformedPayload, TrustError
from certgen.payload import decode, sign_detached
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.trust import BUNDLE_FORMAT, PublicKeyInfo, TrustBundle, canonical_json
from kiosk.cli import cli
from tests.conftest import PASSPHRASE
from tests.test_verify import base_claims, signed_text


def _bundle(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "keys": [],
        "revocations": [
            {"scope": "batch", "target": "B1", "reason": "考场违纪", "revoked_at": "2026-01-01T00:00:00Z",
             "numbers": ["Y000021012001203000001"]},
        ],
    }  # fmt: skip
    doc.update(changes)
    return doc


def test_a_batch_revocation_with_numbers_as_a_string_is_refused_whole(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    # validly signed by the institution itself, so only strict reading stands between the bundle and
    # a revocation that revokes nothing (iterating a string gave one "number" per character)
    issuing, key = keyed_station
    issuing.export_trust(tmp_path / "good.json", PASSPHRASE)
    envelope = json.loads((tmp_path / "good.json").read_bytes())
    body = json.loads(base64.b64decode(envelope["body"]))
    body["revocations"] = [{"scope": "batch", "target": "B1", "reason": "考场违纪",
                            "revoked_at": "2026-01-01T00:00:00Z", "numbers": "Y000021012001203000001"}]  # fmt: skip
    content = canonical_json(body)
    private = issuing.keystore.load(key.kid, PASSPHRASE)
    envelope["body"] = base64.b64encode(content).decode("ascii")
    envelope["signature"] = base64.b64encode(sign_detached(content, private, key.kid)).decode("ascii")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(envelope), "utf-8")
    verifier = Station(StationHome(tmp_path / "verifier", "--home"))
    result = CliRunner().invoke(cli, ["--home", str(verifier.home.root), "trust", "import", str(path)])
    assert result.exit_code == 2 and "numbers" in result.stderr and "Traceback" not in result.output
    assert not verifier.trust.exists() or verifier.trust.load().revocations == ()  # nothing imported
    doc = _bundle()  # the trust store file is read as strictly
    doc["revocations"][0]["numbers"] = "Y000021012001203000001"
    with pytest.raises(TrustError, match="numbers"):
        TrustBundle.from_bytes(json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"revocations": {"scope": "key"}}, "revocations"),
        ({"keys": "abc"}, "keys"),
        ({"revocations": [{"scope": "batch", "target": 7, "reason": "x", "revoked_at": "t", "numbers": ["A"]}]},
         "target"),
        ({"revocations": [{"scope": "batch", "target": "B", "reason": "x", "revoked_at": "t", "numbers": [1]}]},
         "numbers"),
        ({"revocations": [{"scope": "batch", "target": "B", "reason": "x", "revoked_at": "t"}]}, "numbers"),
        ({"revocations": [{"scope": "everything", "target": "B", "reason": "x", "revoked_at": "t"}]}, "scope"),
        ({"keys": [{"kid": "00", "public_key": "AA==", "filing_number": 12, "institution": "x",
                    "valid_from": "2020-01-01", "valid_until": None}]}, "filing_number"),
    ],
)  # fmt: skip
def test_wrong_json_types_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(TrustError, match=field):
        TrustBundle.from_bytes(json.dumps(_bundle(**change)).encode())


def test_deeply_nested_and_huge_bundles_are_refused_without_a_traceback(station: Station, tmp_path: Path) -> None:
    deep = b'{"format": "' + BUNDLE_FORMAT.encode() + b'", "keys": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(TrustError, match="嵌套过深"):
        TrustBundle.from_bytes(deep)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:
        f.truncate(17 * 1024 * 1024)  # sparse: 17 MiB of zero bytes
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(station.home.root), "trust", "import", str(huge)])
    assert result.exit_code == 2 and "过大" in result.stderr
    fifo = tmp_path / "bundle.fifo"
    os.mkfifo(fifo)
    result = runner.invoke(cli, ["--home", str(station.home.root), "trust", "import", str(fifo)])  # never blocks
    assert result.exit_code == 2 and "不是普通文件" in result.stderr


@pytest.mark.parametrize(
    ("template", "defect"), [("Liaoning_2020", "template"), ("", "template"), ("a" * 17, "template")]
)
def test_issuer_signed_codes_with_a_bad_template_id_are_malformed(template: str, defect: str) -> None:
    with pytest.raises(MalformedPayload) as caught:
        decode(signed_text(base_claims(template=template)))
    assert caught.value.defect == defect
