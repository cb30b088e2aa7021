"""Backup and restore: a station that survives the loss of its disk (issue 14)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from certgen.exceptions import BackupError, RegisterError
from certgen.station import Station
from certgen.station.backup import (
    check_backup,
    create_backup,
    last_backup_age,
    restore_backup,
    set_auto_backup,
    settle_numbers,
)
from certgen.station.home import StationHome
from certgen.station.register import Register
from certgen.trust import PublicKeyInfo, Revocation, canonical_json
from tests.conftest import FILING, INSTITUTION, PASSPHRASE, make_record, resident_id

ROOT = Path(__file__).parent.parent


PEOPLE = itertools.count(1000)
"""One person per certificate: a result is issued once (issue 12)."""


def issue_numbers(station: Station, count: int) -> list[str]:
    """Allocate and complete ``count`` numbers in the register (no PDF: the register is what counts)."""
    numbers = []
    with station.register() as reg:
        reg.signer = station.checkpoint_signer(reg, PASSPHRASE)  # issuing commits are signed (register_proof)
        for _ in range(count):
            numbered = reg.allocate(make_record(id_number=resident_id(next(PEOPLE))), FILING, batch_id="b")
            number = str(numbered.number)
            reg.complete(number, payload_sha256=hashlib.sha256(number.encode()).hexdigest(), output_path=None,
                         kid="00" * 8)  # fmt: skip
            numbers.append(number)
    return numbers


def rewrite_zip(source: Path, target: Path, change: dict[str, bytes | None]) -> None:
    """A copy of a ZIP with members replaced (bytes) or removed (None); CRCs stay valid."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for name in src.namelist():
            data = change.get(name, src.read(name))
            if data is not None:
                dst.writestr(name, data)


@pytest.fixture
def backed_up(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path) -> tuple[Station, Path]:
    station, _ = keyed_station
    issue_numbers(station, 3)
    path = tmp_path / "backup.zip"
    create_backup(station.home, path, PASSPHRASE)
    return station, path


def test_a_backup_holds_the_register_encrypted_keys_and_trust_store(backed_up: tuple[Station, Path]) -> None:
    station, path = backed_up
    check = check_backup(path)
    names = set(zipfile.ZipFile(path).namelist())
    kid = station.keystore.kids()[0].hex()
    assert {"manifest.json", "manifest.sig", "register.sqlite", "home/trust.json", f"home/keys/{kid}.pem"} <= names
    pem = zipfile.ZipFile(path).read(f"home/keys/{kid}.pem")
    assert pem.startswith(b"-----BEGIN CERTKIOSK ENCRYPTED PRIVATE KEY-----")
    assert check.signer == kid and check.audit_seq > 3
    assert last_backup_age(station.home, dt.date.fromisoformat(check.created_at[:10])) == 0


def test_a_backup_with_one_byte_changed_is_refused(backed_up: tuple[Station, Path], tmp_path: Path) -> None:
    _, path = backed_up
    trust = bytearray(zipfile.ZipFile(path).read("home/trust.json"))
    trust[10] ^= 1
    rewrite_zip(path, tmp_path / "changed.zip", {"home/trust.json": bytes(trust)})
    with pytest.raises(BackupError, match=re.escape("home/trust.json 的内容与清单中的 SHA-256 不符")):
        check_backup(tmp_path / "changed.zip")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "flipped.zip").write_bytes(bytes(raw))
    with pytest.raises(BackupError, match="不可用"):
        check_backup(tmp_path / "flipped.zip")
    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    manifest["created_at"] = "2000-01-01T00:00:00Z"
    rewrite_zip(path, tmp_path / "manifest.zip", {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(BackupError, match="清单签名无效"):
        check_backup(tmp_path / "manifest.zip")


def test_a_manifest_from_another_station_is_refused(backed_up: tuple[Station, Path], tmp_path: Path) -> None:
    _, path = backed_up
    other = Station(StationHome(tmp_path / "other", "--home").ensure())
    other.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    create_backup(other.home, tmp_path / "other.zip", PASSPHRASE)
    foreign = zipfile.ZipFile(tmp_path / "other.zip")
    change: dict[str, bytes | None] = {n: foreign.read(n) for n in ("manifest.json", "manifest.sig")}
    rewrite_zip(path, tmp_path / "mixed.zip", change)
    with pytest.raises(BackupError, match="清单来自另一站点"):
        check_backup(tmp_path / "mixed.zip")


def test_a_backup_with_a_missing_part_is_refused(backed_up: tuple[Station, Path], tmp_path: Path) -> None:
    _, path = backed_up
    rewrite_zip(path, tmp_path / "missing.zip", {"register.sqlite": None})
    with pytest.raises(BackupError, match=re.escape("缺少文件 register.sqlite")):
        check_backup(tmp_path / "missing.zip")
    rewrite_zip(path, tmp_path / "nosig.zip", {"manifest.sig": None})
    with pytest.raises(BackupError, match=re.escape("缺少 manifest.sig")):
        check_backup(tmp_path / "nosig.zip")


def test_backup_check_cli_states_the_reason(backed_up: tuple[Station, Path], tmp_path: Path) -> None:
    station, path = backed_up
    rewrite_zip(path, tmp_path / "missing.zip", {"home/trust.json": None})

    def run(target: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kiosk", "--home", str(station.home.root), "backup", "--check", str(target)],
            capture_output=True, text=True, cwd=ROOT, check=False,
        )  # fmt: skip

    good = run(path)
    assert good.returncode == 0 and "✓ 备份完整" in good.stdout
    bad = run(tmp_path / "missing.zip")
    assert bad.returncode == 2 and "缺少文件 home/trust.json" in bad.stderr


def test_a_backup_taken_while_another_process_issues_is_consistent(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, _ = keyed_station
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.allocate_loop", str(station.home.register_path)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None
    try:
        completed = 0
        while completed < 30:  # the child is mid-stream when the backup starts
            completed += child.stdout.readline().startswith("C")
        create_backup(station.home, tmp_path / "live.zip", PASSPHRASE)
        while completed < 60:  # and it kept issuing during and after
            completed += child.stdout.readline().startswith("C")
    finally:
        child.kill()
        rest, _ = child.communicate()  # the child runs ahead of what was read: count all it completed
    completed += sum(line.startswith("C") for line in rest.splitlines())
    check = check_backup(tmp_path / "live.zip")  # includes the register check
    restored = restore_backup(tmp_path / "live.zip", StationHome(tmp_path / "restored", "--to"), nothing_later=True)
    with Register(restored.home / "register.sqlite") as reg:
        assert reg.check() == []
        assert 30 <= reg.counts()["issued"] <= completed
    assert check.audit_seq > 60


def test_sigkill_during_a_backup_leaves_no_partial_file(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, _ = keyed_station
    issue_numbers(station, 2)
    dest = tmp_path / "usb" / "backup.zip"
    dest.parent.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.backup_blocked", str(station.home.root), str(dest), PASSPHRASE],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not dest.exists()
    create_backup(station.home, dest, PASSPHRASE)  # the next backup works and clears the leftover
    assert [p.name for p in dest.parent.iterdir()] == ["backup.zip"]
    check_backup(dest)


def test_restore_refuses_a_newer_register_unless_forced_and_keeps_the_old_home(
    backed_up: tuple[Station, Path],
) -> None:
    station, path = backed_up
    issue_numbers(station, 2)
    with pytest.raises(BackupError, match="当前登记库比备份新"):
        restore_backup(path, station.home)
    assert station.home.register_path.exists()
    result = restore_backup(path, station.home, force=True)
    assert result.replaced is not None and (result.replaced / "register.sqlite").exists()
    with Register(station.home.register_path) as reg:
        entries = [e for e in reg.audit_entries() if e.action == "station.restore"]
        assert len(entries) == 1 and entries[0].detail["backup"] == str(path)
        # the newer register kept aside told the restore where the counter was
        assert reg.serials()[(FILING, 2020, 3)] == 5
        assert reg.check() == []


def test_automatic_backups_after_revocations_keep_the_last_n(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, _ = keyed_station
    numbers = issue_numbers(station, 3)
    set_auto_backup(station.home, tmp_path / "auto", keep=2)
    for number in numbers:
        station.revoke("certificate", number, "错发", PASSPHRASE)
        assert station.last_backup_note is not None and "已自动备份" in station.last_backup_note
    copies = sorted((tmp_path / "auto").glob("*.zip"))
    assert len(copies) == 2
    check_backup(copies[-1])
    station.revoke("key", station.keystore.kids()[0].hex(), "测试")
    assert station.last_backup_note is not None and "需要私钥口令" in station.last_backup_note


def test_lose_the_home_restore_an_older_backup_and_never_reuse_a_number(
    issuer,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from certgen.issuing.issuer import Issuer

    station: Station = issuer.station
    written: list[str] = []

    def issue(who: Issuer, count: int) -> None:
        with who.station.register() as reg:
            for _ in range(count):
                done = who.issue(reg, make_record(id_number=resident_id(len(written))))
                written.append(str(done.record.number))

    issue(issuer, 2)
    create_backup(station.home, tmp_path / "older.zip", PASSPHRASE)
    issue(issuer, 3)
    shutil.rmtree(station.home.root)  # the disk is lost; the PDFs were written elsewhere (tmp/out)

    result = restore_backup(tmp_path / "older.zip", station.home)
    assert not result.settled
    restored = Station(station.home)
    again = Issuer(restored, PASSPHRASE, out_dir=tmp_path / "out")
    with pytest.raises(RegisterError, match="restore-settle"), restored.register() as reg:
        again.issue(reg, make_record())
    with restored.register() as reg:
        moved = settle_numbers(reg, [tmp_path / "out"], settle=True)
        assert moved and reg.check() == []
    issue(again, 2)
    pdf_numbers = [p.stem for p in (tmp_path / "out").rglob("*.pdf")]
    assert len(pdf_numbers) == len(written) == 7
    assert len(set(pdf_numbers)) == 7


def test_restore_and_settle_from_the_command_line(backed_up: tuple[Station, Path]) -> None:
    station, path = backed_up
    shutil.rmtree(station.home.root)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kiosk", "--home", str(station.home.root), *args],
            capture_output=True, text=True, cwd=ROOT, check=False,
        )  # fmt: skip

    restored = run("restore", str(path))
    assert restored.returncode == 0, restored.stderr
    assert "暂停发证" in restored.stdout
    with pytest.raises(RegisterError, match="restore-settle"), Register(station.home.register_path) as reg:
        reg.allocate(make_record(), FILING)
    bad = run("restore-settle", "--highest-serial", "2020:9:1")
    assert bad.returncode == 2 and "超出范围" in bad.stderr
    settled = run("restore-settle", "--highest-serial", "2020:3:10")
    assert settled.returncode == 0, settled.stderr
    assert "序号由 3 调至 10" in settled.stdout
    with Register(station.home.register_path) as reg:
        assert reg.allocate(make_record(), FILING).number == f"{FILING}203000011"
        assert reg.check() == []
    assert run("register", "check").returncode == 0


def _revoked(home: StationHome, number: str) -> tuple[bool, bool]:
    """Whether the station's trust store (what it verifies with and exports) and its register hold
    a revocation of certificate ``number``."""
    restored = Station(home)
    in_store = restored.trust_for_verifying().certificate_revocation(number) is not None
    with restored.register() as reg:
        in_register = any(r.scope == "certificate" and r.target == number for r in reg.revocations())
    return in_store, in_register


def test_a_restore_keeps_the_revocations_made_after_the_backup(backed_up: tuple[Station, Path]) -> None:
    # restoring an older backup over a home whose register is newer: a certificate revoked after
    # the backup stays revoked (the station verified it as valid again, and its bundles left it out)
    station, path = backed_up
    number = issue_numbers(station, 1)[0]
    station.revoke("certificate", number, "证书信息有误", PASSPHRASE)
    result = restore_backup(path, station.home, force=True)
    assert _revoked(station.home, number) == (True, False)  # issued after the backup: not in its register
    assert any(number in line for line in result.revocations)
    with Register(station.home.register_path) as reg:
        assert reg.check() == []


def test_a_kept_revocation_of_a_certificate_the_backup_knew_is_revoked_everywhere_the_station_looks(
    backed_up: tuple[Station, Path], tmp_path: Path
) -> None:
    station, path = backed_up
    with station.register() as reg:
        number = reg.batch("b")[0].number  # issued before the backup
    station.revoke("certificate", number, "证书信息有误", PASSPHRASE)
    restore_backup(path, station.home, force=True)
    # kept in the trust store as made; the register is not written without the passphrase (an
    # unsigned entry would make every later backup fail its own check)
    assert _revoked(station.home, number) == (True, False)
    restored = Station(station.home)
    revocation = restored.trust.load().certificate_revocation(number)
    assert revocation is not None and revocation.reason == "证书信息有误"
    assert [s.revoked for s in restored.find_certificates(number)] == [True]
    with Register(station.home.register_path) as reg:
        assert reg.check() == []
    create_backup(station.home, tmp_path / "after.zip", PASSPHRASE)
    check_backup(tmp_path / "after.zip")


def _planted(victim_backup: Path, out: Path, tmp: Path, revocations: list[Revocation]) -> None:
    """A backup an attacker made on a station of their own, under the victim's station id (plain
    text in every backup's manifest) and filing number (public), with revocations in its trust store."""
    sid = json.loads(zipfile.ZipFile(victim_backup).read("manifest.json"))["station_id"]
    home = StationHome(tmp / "attacker-home", "--home").ensure()
    home.station_path.write_bytes(canonical_json({"station_id": sid}))
    attacker = Station(home)
    attacker.new_key(FILING, INSTITUTION, "attacker passphrase", valid_from=dt.date(2020, 1, 1))
    attacker.trust.save(attacker.trust.load().with_revocations(revocations))
    create_backup(home, out, "attacker passphrase")


def test_a_planted_backup_signed_by_another_key_is_not_believed(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, info = keyed_station
    set_auto_backup(station.home, tmp_path / "auto", keep=5)
    numbers = issue_numbers(station, 2)
    create_backup(station.home, tmp_path / "older.zip", PASSPHRASE)
    forged = [Revocation("key", info.kid_hex, "伪造", "2024-01-01T00:00:00Z"),
              Revocation("certificate", numbers[0], "伪造", "2024-01-01T00:00:00Z")]  # fmt: skip
    _planted(tmp_path / "older.zip", tmp_path / "auto" / "certkiosk-planted.zip", tmp_path, forged)
    check_backup(tmp_path / "auto" / "certkiosk-planted.zip")  # consistent with itself: that proves nothing
    shutil.rmtree(station.home.root)
    result = restore_backup(tmp_path / "older.zip", station.home)
    trust = Station(station.home).trust.load()
    assert trust.key_revocation(info.kid) is None and trust.certificate_revocation(numbers[0]) is None
    assert any("certkiosk-planted.zip" in line and "不是本站登记库中的密钥" in line for line in result.revocations)
    create_backup(station.home, tmp_path / "next.zip", PASSPHRASE)  # the station is not crippled


@pytest.mark.parametrize("how", ["encrypted", "files-not-a-dict", "bomb"])
def test_a_planted_broken_zip_is_named_and_the_restore_goes_on(
    backed_up: tuple[Station, Path], tmp_path: Path, how: str
) -> None:
    station, path = backed_up
    (tmp_path / "usb").mkdir()
    planted = tmp_path / "usb" / "planted.zip"
    if how == "encrypted":  # the encrypted-member flag set on a copy: zipfile refuses to read it
        data = bytearray(path.read_bytes())
        for signature in (b"PK\x03\x04", b"PK\x01\x02"):
            at = data.find(signature)
            while at >= 0:
                flag = at + (6 if signature == b"PK\x03\x04" else 8)
                data[flag] |= 1
                at = data.find(signature, at + 4)
        planted.write_bytes(bytes(data))
    elif how == "files-not-a-dict":
        manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
        rewrite_zip(path, planted, {"manifest.json": canonical_json(manifest | {"files": {"x": "y"}})})
    else:  # a manifest that inflates to 256 MB from a few hundred KB
        with zipfile.ZipFile(planted, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.sig", b"x")
            with zf.open("manifest.json", "w", force_zip64=True) as fh:
                for _ in range(256):
                    fh.write(b" " * (1 << 20))
    shutil.rmtree(station.home.root)
    result = restore_backup(path, station.home, scan=[tmp_path / "usb"])
    assert any("planted.zip" in line for line in result.revocations), result.revocations
    with pytest.raises(BackupError, match=re.escape("planted.zip")):
        check_backup(planted)


def test_after_losing_the_disk_a_newer_automatic_backup_brings_the_revocation_back(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, _ = keyed_station
    set_auto_backup(station.home, tmp_path / "auto", keep=5)
    number = issue_numbers(station, 2)[0]
    create_backup(station.home, tmp_path / "older.zip", PASSPHRASE)
    station.revoke("certificate", number, "证书信息有误", PASSPHRASE)  # an automatic backup follows it
    genuine = sorted((tmp_path / "auto").glob("*.zip"))[-1]
    shutil.rmtree(station.home.root)
    # a copy whose signature does not check is not believed (nor would a forged revocation be)
    rewrite_zip(genuine, tmp_path / "auto" / "forged.zip", {"manifest.sig": b"x"})
    genuine.rename(tmp_path / "genuine.zip")
    restore_backup(tmp_path / "older.zip", station.home)  # the older backup names the automatic folder
    assert _revoked(station.home, number) == (False, False)
    (tmp_path / "genuine.zip").rename(genuine)
    shutil.rmtree(station.home.root)
    restore_backup(tmp_path / "older.zip", station.home)
    assert _revoked(station.home, number) == (True, False)


def test_restore_settle_keeps_the_revocations_in_the_backups_it_is_given(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    station, _ = keyed_station
    number = issue_numbers(station, 2)[0]
    create_backup(station.home, tmp_path / "older.zip", PASSPHRASE)
    station.revoke("certificate", number, "证书信息有误", PASSPHRASE)
    create_backup(station.home, tmp_path / "newer" / "newer.zip", PASSPHRASE)
    shutil.rmtree(station.home.root)
    restore_backup(tmp_path / "older.zip", station.home)
    assert _revoked(station.home, number) == (False, False)  # nothing told the restore where to look
    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "--home", str(station.home.root), "restore-settle", "--scan",
         str(tmp_path / "newer")],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"保留备份之后的吊销：证书 {number}" in done.stdout
    assert _revoked(station.home, number) == (True, False)


def test_a_restore_never_reuses_a_trust_bundle_sequence_exported_after_the_backup(
    backed_up: tuple[Station, Path], tmp_path: Path
) -> None:
    # a verifier that imported bundle N ignores the keys of another bundle N as older: the next
    # export after a restore must come after every bundle the station sent out
    station, path = backed_up
    assert station.export_trust(tmp_path / "b1.json", PASSPHRASE).sequence == 1
    assert station.export_trust(tmp_path / "b2.json", PASSPHRASE).sequence == 2
    create_backup(station.home, tmp_path / "newer" / "newer.zip", PASSPHRASE)
    shutil.rmtree(station.home.root)  # the disk is lost: only the newer backup knows of bundle 2
    result = restore_backup(path, station.home, scan=[tmp_path / "newer"])
    assert any("信任包序号" in line and "第1、2号" in line for line in result.revocations), result.revocations
    assert Station(station.home).export_trust(tmp_path / "b3.json", PASSPHRASE).sequence == 3


def test_a_blank_used_after_the_backup_is_never_used_again(issuer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # a blank (印制流水码) is printed once: one used after the backup stays used after a restore,
    # found in the replaced register, or after a lost disk in the batch manifests it was written to
    from certgen.exceptions import PrintSerialUsed
    from certgen.issuing.issuer import Issuer

    station: Station = issuer.station
    with station.register() as reg:
        issuer.issue(reg, make_record(id_number=resident_id(1)), print_serial="LN5001")
    create_backup(station.home, tmp_path / "older.zip", PASSPHRASE)
    with station.register() as reg:
        later = issuer.issue(reg, make_record(id_number=resident_id(2)), print_serial="LN5002")
    result = restore_backup(tmp_path / "older.zip", station.home, force=True, nothing_later=True)
    assert any("LN5002" in line for line in result.revocations), result.revocations
    again = Issuer(Station(station.home), PASSPHRASE, out_dir=tmp_path / "out2")
    with Station(station.home).register() as reg:
        with pytest.raises(PrintSerialUsed, match=f"LN-5002 已用于证书 {later.record.number}"):
            again.issue(reg, make_record(id_number=resident_id(3)), print_serial="LN-5002")
        again.issue(reg, make_record(id_number=resident_id(4)), print_serial="LN5003")  # a new blank is fine
        assert reg.check() == []


def test_after_losing_the_disk_the_batch_manifests_tell_which_blanks_were_used(
    issuer,
    tmp_path: Path,
    photo_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    from certgen.exceptions import PrintSerialUsed
    from certgen.issuing.batch import plan_batch, run_batch
    from certgen.issuing.issuer import Issuer
    from certgen.issuing.roster import read_roster
    from tests.test_print_serial import _national, _roster

    issuer = _national(issuer)
    create_backup(issuer.station.home, tmp_path / "older.zip", PASSPHRASE)
    with issuer.station.register() as reg:
        run_batch(issuer, plan_batch(issuer, reg, read_roster(_roster(tmp_path, ["LN6001", "LN6002"])), photo_dir))
    shutil.rmtree(issuer.station.home.root)
    restore_backup(tmp_path / "older.zip", issuer.station.home, scan=[issuer.out_dir])  # type: ignore[list-item]
    again = Issuer(Station(issuer.station.home), PASSPHRASE, template_name="national-2021", out_dir=tmp_path / "o2")
    with pytest.raises(PrintSerialUsed, match="LN6002 已用于证书"), Station(issuer.station.home).register() as reg:
        again.issue(reg, make_record(id_number=resident_id(7)), print_serial="LN6002")


def test_planted_manifests_and_logs_are_skipped_and_never_reach_the_screen(
    backed_up: tuple[Station, Path], tmp_path: Path
) -> None:
    station, path = backed_up
    usb = tmp_path / "usb"
    (usb / "a").mkdir(parents=True)
    (usb / "a" / "manifest.json").write_text("[" * 100_000 + "]" * 100_000, "utf-8")  # nested past the parser
    hostile = {"certificates": [{"number": "\x1b]0;pwned\x07\x1b[2J", "print_serial": "LN8001"}]}
    (usb / "b").mkdir()
    (usb / "b" / "manifest.json").write_text(json.dumps(hostile), "utf-8")
    exports = station.home.trust_exports_path
    station.export_trust(tmp_path / "b1.json", PASSPHRASE)
    log = json.loads(exports.read_text("utf-8"))
    exports.write_text(json.dumps({f: v | {"²": "x"} for f, v in log.items()}), "utf-8")  # a digit int() refuses
    station.home.trust_path.write_text("{ not json", "utf-8")  # the replaced home's trust store is broken
    result = restore_backup(path, station.home, force=True, scan=[usb])
    assert not any("\x1b" in line for line in result.revocations)
    assert any("无法读取被替换站点的信任库" in line for line in result.revocations)
    with Station(station.home).register() as reg:
        assert reg.print_serial_owner("LN8001") is None
    # the sequence log of the replaced home is carried though its trust store could not be read
    assert Station(station.home).export_trust(tmp_path / "b2.json", PASSPHRASE).sequence == 2
