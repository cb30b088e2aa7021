"""Freshness is a fact in every verify result: how old the issuer's revocation data is."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from certgen.number import format_number
from certgen.payload import sign
from certgen.station import Station
from certgen.trust import PublicKeyInfo, freshness_lines
from tests.conftest import FILING, PASSPHRASE, make_record
from tests.test_trust_bundles import T0, make_station
from verify.check import verify_text
from verify.reasons import Reason

ROOT = Path(__file__).parent.parent


@pytest.fixture
def signed_text(keyed_station: tuple[Station, PublicKeyInfo]) -> str:
    station, info = keyed_station
    record = make_record(issue_date=dt.date(2025, 6, 1)).with_number(format_number(FILING, 2025, 3, 1))
    record = record.replace(evaluator=info.institution, issuer=info.institution)
    return sign(record, "liaoning-2020", station.keystore.load(info.kid, PASSPHRASE), info.kid).text


@pytest.fixture
def verifier(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path) -> Station:
    station, _ = keyed_station
    station.export_trust(tmp_path / "b.json", PASSPHRASE, now=T0)  # issued 2026-01-10
    other = make_station(tmp_path, "employer")
    other.import_trust(tmp_path / "b.json")
    return other


def test_a_fresh_result_states_the_age_of_its_data(verifier: Station, signed_text: str) -> None:
    result = verify_text(signed_text, verifier.trust.load(), today=dt.date(2026, 1, 15))
    assert result.valid and not result.trust_stale
    assert (result.trust_age_days, result.trust_as_of) == (5, T0)
    assert "吊销数据 5 天前" in result.line()
    assert result.summary()["trust"] == {
        "as_of": T0, "age_days": 5, "current": False, "stale": False, "stale_after_days": 30, "max_age_days": None
    }  # fmt: skip


def test_old_data_is_recorded_but_the_verdict_stays_valid(verifier: Station, signed_text: str) -> None:
    result = verify_text(signed_text, verifier.trust.load(), today=dt.date(2026, 3, 1))
    assert result.valid and result.trust_stale and result.trust_age_days == 50
    assert result.line().startswith("✓ 有效（吊销数据已 50 天未更新）")
    assert result.summary()["trust"]["stale"] is True


def test_max_trust_age_makes_old_data_invalid(verifier: Station, signed_text: str) -> None:
    strict = dataclasses.replace(verifier.trust.load(), max_age_days=30)
    result = verify_text(signed_text, strict, today=dt.date(2026, 3, 1))
    assert not result.valid and result.reasons == (Reason.TRUST_DATA_TOO_OLD,)
    assert verify_text(signed_text, strict, today=dt.date(2026, 2, 9)).valid  # 30 days: still within


def test_the_configured_age_is_respected(verifier: Station, signed_text: str) -> None:
    relaxed = dataclasses.replace(verifier.trust.load(), stale_after_days=90)
    assert not verify_text(signed_text, relaxed, today=dt.date(2026, 3, 1)).trust_stale


def test_the_stations_own_institution_is_always_current(
    keyed_station: tuple[Station, PublicKeyInfo], signed_text: str
) -> None:
    station, _ = keyed_station
    strict = dataclasses.replace(station.trust.load(), max_age_days=0)
    result = verify_text(signed_text, strict, today=dt.date(2040, 1, 1))
    assert result.valid and result.trust_current and not result.trust_stale
    assert "本站机构" in result.line()


def test_trust_list_lines_show_each_institutions_age(verifier: Station) -> None:
    lines = freshness_lines(verifier.trust.load(), dt.date(2026, 3, 1))
    assert lines == [f"  {FILING} 华晨汽车集团控股有限公司：数据签发于 {T0}，50 天前（已超过 30 天，请索取新的信任包）"]


def test_verify_cli_exit_code_follows_max_trust_age(verifier: Station, signed_text: str) -> None:
    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kiosk", "--home", str(verifier.home.root), "verify", "--json",
             "--text", signed_text, "--today", "2026-03-01", *extra],
            capture_output=True, text=True, cwd=ROOT, check=False,
        )  # fmt: skip

    lenient = run()
    assert lenient.returncode == 0, lenient.stderr
    assert json.loads(lenient.stdout)["trust"]["age_days"] == 50
    strict = run("--max-trust-age", "30")
    assert strict.returncode == 1
    assert json.loads(strict.stdout)["reasons"] == ["TRUST_DATA_TOO_OLD"]
