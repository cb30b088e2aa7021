"""Defects found while making certkiosk installable (issue 10): secrets in reprs and tracebacks,
29 February key validity, and the message for an issue date before the key's first day."""

from __future__ import annotations

import datetime as dt
import io
import pickle
from pathlib import Path

import pytest
from rich.console import Console
from rich.traceback import Traceback

from certgen.exceptions import RegisterError, WrongPassphrase
from certgen.issuing.issuer import Issuer
from certgen.secret import Secret
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.trust import PublicKeyInfo
from tests.conftest import FILING, INSTITUTION, PASSPHRASE, make_record
from tests.test_cli import run
from verify.check import verify_text

WRONG = "a wrong but long passphrase"


def test_an_issuer_never_shows_its_passphrase(issuer: Issuer) -> None:
    shown = [repr(issuer), str(issuer), f"{issuer}", repr(issuer.secret), f"{issuer.secret}", str(issuer.secret)]
    for text in shown:
        assert PASSPHRASE not in text
    assert "Issuer(" in shown[0] and "********" in shown[3]
    assert issuer.secret.reveal() == PASSPHRASE
    assert pickle.loads(pickle.dumps(issuer.secret)) == issuer.secret  # batch workers get it pickled


def test_a_crash_shown_with_its_locals_does_not_show_the_passphrase(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    """Textual prints a crashed worker's traceback with every frame's local variables (rich)."""
    station, _ = keyed_station
    issuer = Issuer(station, Secret(WRONG), out_dir=tmp_path / "out")
    with station.register() as reg, pytest.raises(WrongPassphrase) as caught:
        issuer.issue(reg, make_record())
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(Traceback.from_exception(caught.type, caught.value, caught.tb, show_locals=True))
    text = console.export_text()
    assert "passphrase = Secret('********')" in text  # the frames that held it, with their locals
    assert WRONG not in text


def test_a_key_made_on_29_february_is_valid_for_ten_full_years(tmp_path: Path) -> None:
    passphrase = tmp_path / "pass"
    passphrase.write_text(PASSPHRASE, "utf-8")
    code, out, err = run("keys", "new", "--institution", FILING, "--name", INSTITUTION, "--valid-from", "2024-02-29",
                         "--passphrase-file", str(passphrase), home=tmp_path / "h")  # fmt: skip
    assert code == 0, err
    station = Station(StationHome(tmp_path / "h", "--home"))
    [listing] = station.list_keys()
    assert (listing.info.valid_from, listing.info.valid_until) == (dt.date(2024, 2, 29), dt.date(2034, 2, 28))
    assert "2034-02-28" in out


def test_an_issue_date_before_the_key_says_when_the_key_starts_and_how_to_go_earlier(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, _ = keyed_station  # valid from 2020-01-01
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg, pytest.raises(RegisterError) as caught:
        issuer.issue(reg, make_record(issue_date=dt.date(2019, 6, 1)))
    message = str(caught.value)
    assert "自 2020-01-01 起才有效" in message
    assert "certkiosk keys new --valid-from 2019-06-01" in message
    assert "请先执行" not in message


def test_following_that_advice_keeps_the_existing_key_and_its_certificates_valid(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, key = keyed_station  # valid from 2020-01-01 for ten years
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        later = issuer.issue(reg, make_record(issue_date=dt.date(2021, 3, 1)))
    earlier_key, previous = station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2019, 6, 1))
    assert previous is None
    assert (earlier_key.valid_from, earlier_key.valid_until) == (dt.date(2019, 6, 1), dt.date(2019, 12, 31))
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        early = issuer.issue(reg, make_record(level=5, issue_date=dt.date(2019, 6, 1)))
        assert {k.kid: (k.valid_from, k.valid_until) for k in reg.institution_keys(FILING)}[key.kid] == (
            key.valid_from,
            key.valid_until,
        )
    trust = station.trust.load()
    for cert in (later, early):
        assert verify_text(cert.qr_text, trust, today=dt.date(2024, 5, 20)).valid
