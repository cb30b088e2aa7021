"""A revocation reaches the trust store even when the process is killed between the two writes.

The register is written first, then the trust store (what this station verifies with and what
``trust export`` signs for every other verifier). Each test SIGKILLs a real ``python -m kiosk``
process right after the register's commit (the test-only point ``after_revoke``, or
``after_commit`` for a correction, whose issuing commit revokes the old certificate), then checks
that the station's own verification and the next exported bundle say revoked, not valid.
"""

from __future__ import annotations

import json
import signal
import sys
import zipfile
from pathlib import Path

import pytest

from certgen.station import Station
from certgen.station.register import Register
from certgen.trust import PublicKeyInfo
from tests.test_issuing_protocol import Site, leaked_pdf_of_a_void_number, stopped
from tests.test_trust_bundles import make_station
from verify.files import verify_bytes
from verify.reasons import Reason


@pytest.fixture
def site(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path) -> Site:
    return Site(keyed_station[0], tmp_path)


def _correct(site: Site, number: str, **env: str) -> int:
    """``certkiosk reissue NUMBER --reason correction`` (the name corrected); its exit code."""
    fix = site.command("reissue", number, "--reason", "correction", "--set", "name=王伟强", "--issue-date",
                       "2021-04-01", "--out", str(site.out), "--passphrase-file", str(site.passfile))  # fmt: skip
    return site.run(fix, **env)[0]


def _revoke(site: Site, number: str, **env: str) -> int:
    """``certkiosk register revoke --certificate NUMBER``; its exit code."""
    revoke = site.command("register", "revoke", "--certificate", number, "--reason", "证书信息有误",
                          "--passphrase-file", str(site.passfile))  # fmt: skip
    return site.run(revoke, **env)[0]


def _issued(site: Site) -> tuple[str, Path]:
    """Issue the site's roster; the first certificate's number and PDF."""
    code, _, err = site.run(site.issue_args())
    assert code == 0, err
    with Register(site.home.register_path) as reg:
        cert = reg.find(site.rows[1][2])[0]
    assert cert.output_path is not None
    return cert.number, Path(cert.output_path)


def _revoked_in_register(site: Site, number: str) -> bool:
    with Register(site.home.register_path) as reg:
        return any(r.scope == "certificate" and r.target == number for r in reg.revocations())


def _station_says(site: Site, pdf: Path) -> tuple[int, str]:
    """The station's own ``certkiosk verify --json`` of ``pdf``: exit code and reason codes."""
    code, out, err = site.run(site.command("verify", "--json", str(pdf)))
    assert code in (0, 1), err
    reasons = [r for line in out.splitlines() if line.startswith("{") for r in json.loads(line).get("reasons", [])]
    return code, " ".join(str(r) for r in reasons)


def _exported_says(site: Site, pdf: Path, name: str) -> tuple[Reason, ...]:
    """What an employer's station that imported the next exported bundle says about ``pdf``."""
    bundle_path = site.out.parent / name
    code, _, err = site.run(site.command("trust", "export", str(bundle_path), "--passphrase-file", str(site.passfile)))
    assert code == 0, err
    employer = make_station(site.out.parent, f"employer-{name}")
    employer.import_trust(bundle_path)
    return verify_bytes(pdf.read_bytes(), pdf.name, employer.trust.load())[0].reasons


def test_a_revoke_killed_after_its_commit_still_reaches_the_station_and_the_export(site: Site) -> None:
    number, pdf = _issued(site)
    assert _revoke(site, number, CERTKIOSK_TEST_CRASH_AT="after_revoke") == -signal.SIGKILL
    assert _revoked_in_register(site, number)
    assert site.home.trust_behind_path.exists(), "the marker says the trust store may be behind"
    assert not any(r.target == number for r in site.station.trust.load().revocations), "the kill left the gap"
    # the station's own verification finishes the job first: revoked, not valid
    code, reasons = _station_says(site, pdf)
    assert code == 1 and Reason.REVOKED.value in reasons, reasons
    assert any(r.target == number for r in site.station.trust.load().revocations)
    assert not site.home.trust_behind_path.exists()
    assert Reason.REVOKED in _exported_says(site, pdf, "bundle.json")


def test_an_export_carries_every_revocation_of_the_register(site: Site) -> None:
    """Even with the marker gone (a trust store restored or edited by hand), the export is the register's."""
    number, pdf = _issued(site)
    assert _revoke(site, number, CERTKIOSK_TEST_CRASH_AT="after_revoke") == -signal.SIGKILL
    site.home.trust_behind_path.unlink()  # as if the marker were lost: the export still reads the register
    assert Reason.REVOKED in _exported_says(site, pdf, "bundle.json")
    assert any(r.target == number for r in site.station.trust.load().revocations), "and the store learnt it"


def test_a_correction_killed_after_its_commit_still_revokes_the_old_certificate(site: Site) -> None:
    number, pdf = _issued(site)
    assert _correct(site, number, CERTKIOSK_TEST_CRASH_AT="after_commit") == -signal.SIGKILL
    assert _revoked_in_register(site, number), "the issuing commit revoked the old certificate"
    assert not any(r.target == number for r in site.station.trust.load().revocations), "the kill left the gap"
    code, reasons = _station_says(site, pdf)
    assert code == 1 and Reason.REVOKED.value in reasons, reasons
    assert Reason.REVOKED in _exported_says(site, pdf, "bundle.json")


def test_the_next_issuing_run_finishes_a_correction_killed_after_it_was_published(site: Site) -> None:
    number, pdf = _issued(site)
    assert _correct(site, number, CERTKIOSK_TEST_CRASH_AT="after_revoke") == -signal.SIGKILL
    assert not any(r.target == number for r in site.station.trust.load().revocations)
    code, _, err = site.run(site.issue_args())  # its recovery catches the trust store up
    assert code == 0, err
    assert any(r.target == number for r in site.station.trust.load().revocations)
    assert verify_bytes(pdf.read_bytes(), pdf.name, site.station.trust.load())[0].reasons == (Reason.REVOKED,)
    assert not site.home.trust_behind_path.exists()


def test_a_quarantine_killed_after_its_revocation_is_finished_by_the_next_run(site: Site) -> None:
    """Recovery revokes the number of a published PDF whose number is void: killed right after that
    commit, the copy that left the station still becomes revoked."""
    number, leaked = leaked_pdf_of_a_void_number(site)
    copy = leaked.read_bytes()
    code, _, _ = site.run(site.issue_args(), CERTKIOSK_TEST_CRASH_AT="after_revoke")
    assert code == -signal.SIGKILL
    assert _revoked_in_register(site, number)
    assert not any(r.target == number for r in site.station.trust.load().revocations), "the kill left the gap"
    code, _, err = site.run(site.issue_args())
    assert code == 0, err
    assert verify_bytes(copy, "copy.pdf", site.station.trust.load())[0].reasons == (Reason.REVOKED,)


# --- found by an adversarial review of the first version ----------------------------------------------
def test_a_stopped_revocation_does_not_hang_a_verification_and_it_says_revoked(site: Site) -> None:
    """A revoke stopped (Ctrl-Z) right after its commit holds the trust-store lock: a verification on
    the station (the CLI, and the path the kiosk screens take) does not wait for it, and already
    counts the committed revocation."""
    number, pdf = _issued(site)
    revoke = site.command("register", "revoke", "--certificate", number, "--reason", "证书信息有误",
                          "--passphrase-file", str(site.passfile))  # fmt: skip
    child = site.start(revoke, CERTKIOSK_TEST_STOP_AT="after_revoke")
    try:
        stopped(child)
        verify = site.start(site.command("verify", "--json", str(pdf)))
        out, err = verify.communicate(timeout=120)  # a hang would wait here until SIGCONT, which never comes
        assert verify.returncode == 1 and Reason.REVOKED.value in out, out + err
        bundle, _ = site.station.verification_data()
        assert verify_bytes(pdf.read_bytes(), pdf.name, bundle)[0].reasons == (Reason.REVOKED,)
    finally:
        child.send_signal(signal.SIGCONT)
        child.communicate(timeout=120)
    assert child.returncode == 0 and not site.home.trust_behind_path.exists()


def test_a_refused_revoke_leaves_no_marker(site: Site) -> None:
    number, _ = _issued(site)
    assert _revoke(site, number) == 0
    assert _revoke(site, number) == 2  # 已被吊销: nothing committed
    assert not site.home.trust_behind_path.exists(), "a verification would open the register for nothing"


def test_a_gap_no_marker_tells_of_is_closed_by_the_next_issuing_run(site: Site) -> None:
    """As an older version killed between the two writes left it: revoked in the register only."""
    number, pdf = _issued(site)
    with Register(site.home.register_path) as reg:
        reg.revoke("certificate", number, "证书信息有误")
    assert not site.home.trust_behind_path.exists()
    code, _, err = site.run(site.issue_args())
    assert code == 0, err
    code, reasons = _station_says(site, pdf)
    assert code == 1 and Reason.REVOKED.value in reasons, reasons


def test_another_trust_store_change_never_writes_back_a_copy_without_a_revocation(site: Site) -> None:
    """`trust stale-after` reads the store, then (stopped before it writes) a revoke runs: the revoke
    waits for it instead of being overwritten by its older copy."""
    number, pdf = _issued(site)
    stale = site.start([sys.executable, "-m", "tests.helpers.stop_before_trust_save", "--home",
                        str(site.home.root), "trust", "stale-after", "10"])  # fmt: skip
    stopped(stale)
    revoke = site.start(site.command("register", "revoke", "--certificate", number, "--reason", "证书信息有误",
                                     "--passphrase-file", str(site.passfile)))  # fmt: skip
    stale.send_signal(signal.SIGCONT)
    assert stale.wait(120) == 0
    assert revoke.wait(120) == 0
    store = site.station.trust.load()
    assert store.stale_after_days == 10 and any(r.target == number for r in store.revocations)
    assert _station_says(site, pdf)[0] == 1


def test_a_backup_taken_during_a_revocation_holds_it_consistently(site: Site, tmp_path: Path) -> None:
    """A backup started while a revoke is stopped after its commit waits for it, then holds the
    register and the trust store as of one moment (and no lock file)."""
    number, _ = _issued(site)
    revoke = site.command("register", "revoke", "--certificate", number, "--reason", "证书信息有误",
                          "--passphrase-file", str(site.passfile))  # fmt: skip
    child = site.start(revoke, CERTKIOSK_TEST_STOP_AT="after_revoke")
    stopped(child)
    backup = site.start(site.command("backup", str(tmp_path / "b.zip"), "--passphrase-file", str(site.passfile)))
    child.send_signal(signal.SIGCONT)
    assert child.wait(120) == 0
    out, err = backup.communicate(timeout=300)
    assert backup.returncode == 0, out + err
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        names = zf.namelist()
        trust = json.loads(zf.read(next(n for n in names if n.endswith("/trust.json"))))
    assert not any(n.endswith("trust.lock") for n in names)
    assert any(r["target"] == number for r in trust["revocations"])
