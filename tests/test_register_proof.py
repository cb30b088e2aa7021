"""A register that proves itself: sqlite3 edits of every table, a forged tail, a full rewrite with
the chain recomputed and an emptied register are all reported by ``register check``."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certgen.exceptions import RegisterError
from certgen.issuing.batch import plan_batch, run_batch
from certgen.issuing.issuer import Issuer
from certgen.issuing.roster import read_roster
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.station.register import GENESIS, Register, _canonical, entry_hash
from certgen.station.register_proof import COVERED, Checkpoint, all_row_digests, row_id
from certgen.trust import kid_of, raw_public
from tests.conftest import PASSPHRASE, make_record
from tests.test_batch import roster_rows, write_csv

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory, photo_dir: Path) -> tuple[Path, Path]:
    """A home with a key, a 3-person batch and a revoked certificate; returns (home, manifest)."""
    import datetime as dt

    base = tmp_path_factory.mktemp("proof")
    station = Station(StationHome(base / "home", "--home").ensure())
    station.new_key("Y000021012001", "华晨汽车集团控股有限公司", PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    issuer = Issuer(station, PASSPHRASE, out_dir=base / "out")
    roster = read_roster(write_csv(base / "r.csv", roster_rows(3), "utf-8"))
    with station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photo_dir)
    result = run_batch(issuer, plan)
    with station.register() as reg:
        first = reg.batch(result.batch_id)[0].number
    station.revoke("certificate", first, "信息有误", PASSPHRASE)
    assert station.check_register() == []
    return station.home.root, result.folder / "manifest.json"


def _copy(original: tuple[Path, Path], tmp_path: Path) -> Station:
    home = tmp_path / "home"
    shutil.copytree(original[0], home)
    return Station(StationHome(home, "--home"))


def _sql(station: Station, *statements: str) -> None:
    """What an attacker with the sqlite3 command line does (triggers dropped first)."""
    db = sqlite3.connect(station.home.register_path)
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


FIRST = "(SELECT min(number) FROM certificates)"
LAST = "(SELECT max(number) FROM certificates)"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(f"UPDATE certificates SET name='李鬼', record=replace(record, name, '李鬼') WHERE number={LAST}",
                     "与审计链记录的内容不符", id="holder-name"),
        pytest.param(f"UPDATE certificates SET id_number = '110105194912310037' WHERE number = {LAST}",
                     "与审计链记录的内容不符", id="holder-id"),
        pytest.param(f"UPDATE certificates SET record=replace(record,'\"level\":3','\"level\":1') WHERE number={FIRST}",
                     "与审计链记录的内容不符", id="level-in-record"),
        pytest.param(f"UPDATE certificates SET level = 1 WHERE number = {FIRST}", "与审计链记录的内容不符", id="level"),
        pytest.param("DELETE FROM revocations", "在审计链中存在，但登记库中没有", id="revocation-deleted"),
        pytest.param("UPDATE revocations SET reason = '误操作'", "与审计链记录的内容不符", id="revocation-reason"),
        pytest.param("UPDATE keys SET public_key = '" + "ab" * 32 + "'", "与审计链记录的内容不符", id="key-public"),
        pytest.param("UPDATE keys SET valid_until = '2099-12-31'", "与审计链记录的内容不符", id="key-validity"),
        pytest.param("UPDATE institutions SET name = '别的公司'", "与审计链记录的内容不符", id="institution-renamed"),
        pytest.param("UPDATE serials SET last_serial = 0", "低于已用的最大序列码", id="counter-lowered"),
        pytest.param("DELETE FROM checkpoints", "没有经机构密钥签名的检查点", id="checkpoints-deleted"),
        pytest.param("UPDATE checkpoints SET head = '00' || substr(head, 3)", "签名无效", id="checkpoint-edited"),
    ],
)  # fmt: skip
def test_every_table_edit_is_caught(original: tuple[Path, Path], tmp_path: Path, edit: str, expected: str) -> None:
    station = _copy(original, tmp_path)
    _sql(station, edit)
    problems = station.check_register()
    assert any(expected in p for p in problems), problems


def test_a_lowered_counter_stops_issuing_with_a_clear_message(
    original: tuple[Path, Path], tmp_path: Path, photo_dir: Path
) -> None:
    station = _copy(original, tmp_path)
    for value in (0, -5):
        _sql(station, f"UPDATE serials SET last_serial = {value}")
        issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
        with station.register() as reg, pytest.raises(RegisterError, match=r"序列码计数器.*低于已用的最大序列码"):
            issuer.issue(reg, make_record(level=3))
    roster = write_csv(tmp_path / "more.csv", roster_rows(4)[:1] + roster_rows(4)[4:], "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "--home", str(station.home.root), "issue", str(roster), "--out",
         str(tmp_path / "o"), "--photos", str(photo_dir)], capture_output=True, text=True, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CERTKIOSK_PASSPHRASE": PASSPHRASE},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "ValueError" not in done.stderr
    assert "序列码计数器" in done.stderr


def _rechain(station: Station, change: Callable[[sqlite3.Connection], None]) -> None:
    """The strongest attacker without the key: change rows, then recompute every row digest and
    the whole hash chain so that everything but the signature is consistent."""
    db = sqlite3.connect(station.home.register_path)
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    change(db)
    digests = all_row_digests(db)
    prev = GENESIS
    for seq, at, actor, action, detail in db.execute(
        "SELECT seq, at, actor, action, detail FROM audit ORDER BY seq"
    ).fetchall():
        facts = json.loads(detail)
        if isinstance(facts.get("rows"), dict):
            facts["rows"] = {r: digests.get(r) for r in facts["rows"]}
        text = _canonical(facts)
        digest = entry_hash(prev, seq, at, actor, action, text)
        db.execute("UPDATE audit SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?", (text, prev, digest, seq))
        prev = digest
        last = seq
    db.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (f"{last}:{prev}",))
    db.commit()
    db.close()


def test_a_full_rewrite_with_the_chain_recomputed_needs_the_key(original: tuple[Path, Path], tmp_path: Path) -> None:
    station = _copy(original, tmp_path)
    _rechain(station, lambda db: db.execute(f"UPDATE certificates SET name = '李鬼' WHERE number = {LAST}"))
    with Register(station.home.register_path) as reg:
        assert not [p for p in reg.check() if "审计日志第" in p and "哈希" in p]  # the chain itself is consistent
    problems = station.check_register()
    assert any("签名的链头与审计日志不符" in p for p in problems), problems
    # ... and signing the rewritten head with a key of one's own is not trusted
    forged = Ed25519PrivateKey.generate()
    kid = kid_of(raw_public(forged.public_key())).hex()
    with Register(station.home.register_path) as reg:
        seq, head = reg._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        latest = reg.latest_checkpoint()
        assert latest is not None
        fake = Checkpoint(seq, head, dict(latest.counts), latest.at, kid, "")
        fake = Checkpoint(seq, head, dict(latest.counts), latest.at, kid, forged.sign(fake.message()).hex())
        reg._db.execute(
            "INSERT OR REPLACE INTO checkpoints (seq, head, counts, at, kid, signature) VALUES (?,?,?,?,?,?)",
            (fake.seq, fake.head, _canonical(fake.counts), fake.at, fake.kid, fake.signature),
        )
    problems = station.check_register()
    assert any(f"由本站不信任的密钥 {kid} 签名" in p for p in problems), problems


def test_a_fake_certificate_with_audit_appended_is_caught(original: tuple[Path, Path], tmp_path: Path) -> None:
    station = _copy(original, tmp_path)
    db = sqlite3.connect(station.home.register_path)
    row = db.execute(f"SELECT * FROM certificates WHERE number = {LAST}").fetchone()
    names = [d[0] for d in db.execute("SELECT * FROM certificates LIMIT 0").description]
    fake = dict(zip(names, row, strict=True)) | {"number": row[0][:-6] + "000099", "serial": 99, "name": "冒名"}
    db.execute(
        f"INSERT INTO certificates ({','.join(fake)}) VALUES ({','.join('?' * len(fake))})", tuple(fake.values())
    )
    db.execute("UPDATE serials SET last_serial = 99 WHERE level = ?", (fake["level"],))
    seq, prev = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    rows = all_row_digests(db)
    serial_id = row_id("serials", [fake["filing_number"], fake["year"], fake["level"]])
    for action, detail in [
        ("certificate.allocate", {"number": fake["number"], "origin": "allocated", "batch_id": fake["batch_id"],
                                  "row_key": fake["row_key"]}),
        ("certificate.issue", {"number": fake["number"], "payload_sha256": fake["payload_sha256"],
                               "output_path": None, "kid": fake["kid"]}),
    ]:  # fmt: skip
        seq += 1
        cert_id = row_id("certificates", [fake["number"]])
        detail["rows"] = {cert_id: rows[cert_id], serial_id: rows[serial_id]}
        text = _canonical(detail)
        digest = entry_hash(prev, seq, "2026-01-01T00:00:00Z", "x@y", action, text)
        db.execute(
            "INSERT INTO audit VALUES (?,?,?,?,?,?,?)", (seq, "2026-01-01T00:00:00Z", "x@y", action, text, prev, digest)
        )
        prev = digest
    db.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (f"{seq}:{prev}",))
    db.commit()
    db.close()
    problems = station.check_register()
    assert any("未经签名确认" in p for p in problems), problems


def test_an_emptied_or_truncated_register_is_caught_against_the_manifest(
    original: tuple[Path, Path], tmp_path: Path
) -> None:
    _, manifest = original
    checkpoint = json.loads(manifest.read_text("utf-8"))["checkpoint"]
    assert checkpoint["seq"] > 0 and checkpoint["counts"]["issued"] == 3 and len(checkpoint["signature"]) == 128
    intact = _copy(original, tmp_path / "a")
    assert intact.check_register(manifest) == []  # the later revocation only extends the chain
    emptied = _copy(original, tmp_path / "b")
    _sql(emptied, *(f"DELETE FROM {t}" for t in [*COVERED, "audit", "checkpoints", "meta"]))
    assert emptied.check_register() == []  # an empty register is consistent in itself ...
    problems = emptied.check_register(manifest)  # ... but not with what left the station
    assert any("被清空、截断或替换" in p for p in problems), problems
    replaced = _copy(original, tmp_path / "c")
    replaced.home.register_path.unlink()
    with Register(replaced.home.register_path):
        pass
    assert any("被清空、截断或替换" in p for p in replaced.check_register(manifest))
    # a backup of the register is evidence too
    backup = tmp_path / "backup.sqlite"
    shutil.copy(original[0] / "register.sqlite", backup)
    assert any("被清空、截断或替换" in p for p in emptied.check_register(backup))


def test_register_check_from_the_command_line(original: tuple[Path, Path], tmp_path: Path) -> None:
    station = _copy(original, tmp_path)
    args = [sys.executable, "-m", "kiosk", "--home", str(station.home.root), "register", "check"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([*args, "--against", str(original[1])], capture_output=True, text=True, cwd=ROOT, env=env)
    assert ok.returncode == 0 and "链头有机构密钥的有效签名" in ok.stdout, ok.stdout + ok.stderr
    _sql(station, "UPDATE institutions SET name = '别的公司'")
    bad = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env)
    assert bad.returncode == 1 and "institutions" in bad.stdout and "记录被修改" in bad.stdout
