"""Backup and restore of a station home (docs/backup.md).

A backup is one ZIP file: ``manifest.json`` (canonical JSON: the station's id, the register's audit
head, and the SHA-256 of every other member), ``manifest.sig`` (a detached COSE_Sign1 over the
manifest by one of the station's institution keys), ``register.sqlite`` (a consistent copy made by
SQLite's online backup API, safe while a batch is issuing) and ``home/...``: the encrypted keys,
the trust store and every setting, template, font and profile the station added; with
``--with-pdfs`` also ``issued/...``. It is written to a temporary name and renamed.

A restore checks the signature, every digest and the register's own proof before touching
anything, builds the new home beside the old one and swaps them (the old one kept aside). After
an older backup the counters are moved past every number found issued after it; until that is
settled the register refuses to issue.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import fnmatch
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from certgen.exceptions import (
    BackupBusy,
    BackupError,
    CertkioskError,
    ConfigError,
    IssueBusy,
    PayloadError,
    RegisterError,
)
from certgen.files import atomic_write, write_bytes_atomic
from certgen.number import check_number
from certgen.payload import parse_cose, sign_detached
from certgen.printserial import normal_print_serial
from certgen.secret import Secret
from certgen.station.home import StationHome
from certgen.station.issuelock import issuing_lock
from certgen.station.register import Register
from certgen.station.revoking import trust_lock
from certgen.trust import SCOPE_TEXT, PublicKeyInfo, Revocation, TrustStore, canonical_json, kid_of, utc_now

BACKUP_FORMAT = "certkiosk-backup/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
REGISTER = "register.sqlite"
HOME_PREFIX = "home/"
MANIFEST_MAX_BYTES = 64 * 1024 * 1024
"""The largest manifest (or signature) read: a backup with 100,000 PDFs lists them in ~15 MB."""
EVIDENCE_MAX_BYTES = 4 * 1024 * 1024 * 1024
"""The most a backup found where a restore looks for revocations may hold, uncompressed."""
PDF_PREFIX = "issued/"
_SKIPPED = {"register.sqlite", "register.sqlite-wal", "register.sqlite-shm", "register.sqlite-journal",
            "issued", "verify-runs", "trust.lock", "issue.lock"}  # fmt: skip
_NUMBER = re.compile(r"(?<![0-9A-Z])[0-9A-Z]{13}[0-9]{2}[1-5][0-9]{6}(?![0-9])")


@dataclass(frozen=True)
class BackupCheck:
    """A backup file whose signature, digests and register proof have been checked."""

    path: Path
    """The backup file."""
    manifest: dict[str, Any]
    """Its manifest."""
    signer: str
    """The kid (hex) of the key that signed it."""

    @property
    def created_at(self) -> str:
        return str(self.manifest["created_at"])

    @property
    def audit_seq(self) -> int:
        return int(self.manifest["audit_head"].split(":")[0])

    @property
    def station_id(self) -> str:
        return str(self.manifest["station_id"])


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did."""

    home: Path
    """The restored home."""
    replaced: Path | None
    """Where the previous home was moved, if there was one."""
    raised: tuple[str, ...]
    """Counters moved past numbers issued after the backup, in Chinese."""
    settled: bool
    """Whether issuing is allowed again (else ``restore-settle`` is still needed)."""
    sources: tuple[str, ...] = field(default=())
    """Where numbers issued after the backup were looked for."""
    revocations: tuple[str, ...] = field(default=())
    """Revocations made after the backup found there and kept, in Chinese."""


# --- station identity and settings -------------------------------------------------------------
def station_id(home: StationHome) -> str:
    """The station's random id (created on first use): a backup names the station it came from."""
    path = home.station_path
    try:
        return str(json.loads(path.read_text("utf-8"))["station_id"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"站点标识文件 {path} 损坏：{exc}") from None
    sid = uuid.uuid4().hex
    write_bytes_atomic(path, canonical_json({"station_id": sid}))
    return sid


def load_settings(home: StationHome) -> dict[str, Any]:
    """``backup.json``: the automatic backup folder and count, and the last backup."""
    path = home.backup_settings_path
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"备份设置 {path} 损坏：{exc}") from None
    return data if isinstance(data, dict) else {}


def save_settings(home: StationHome, settings: dict[str, Any]) -> None:
    home.ensure()
    write_bytes_atomic(home.backup_settings_path, json.dumps(settings, ensure_ascii=False, indent=1).encode("utf-8"))


def set_auto_backup(home: StationHome, folder: Path | None, keep: int = 10) -> None:
    """Write a backup to ``folder`` after every batch and revocation, keeping the last ``keep``."""
    if not 1 <= keep <= 1000:
        raise BackupError(f"保留份数应为1-1000，收到 {keep}")
    settings = load_settings(home)
    if folder is None:
        settings.pop("auto", None)
    else:
        settings["auto"] = {"folder": str(folder.expanduser().absolute()), "keep": keep}
    save_settings(home, settings)


def auto_backup_configured(home: StationHome) -> bool:
    return isinstance(load_settings(home).get("auto"), dict)


def last_backup_age(home: StationHome, today: _dt.date) -> int | None:
    """Days since the last backup; None when there has never been one."""
    last = load_settings(home).get("last")
    if not isinstance(last, dict) or "at" not in last:
        return None
    return (today - _dt.date.fromisoformat(str(last["at"])[:10])).days


# --- writing ---------------------------------------------------------------------------------
def _signing_key(home: StationHome, passphrase: str | Secret) -> tuple[PublicKeyInfo, Ed25519PrivateKey]:
    from certgen.station.keys import KeyStore

    store = KeyStore(home.keys_dir)
    held = set(store.kids())
    with Register(home.register_path) as reg:
        revoked = {r.target for r in reg.revocations() if r.scope == "key"}
        keys = [k for k in reg.institution_keys() if k.kid in held and k.kid_hex not in revoked]
    if not keys:
        raise BackupError("本站没有可用的机构私钥来签署备份清单：请先执行 certkiosk keys new")
    key = keys[-1]
    return key, store.load(key.kid, passphrase)


def _home_files(home: StationHome, with_pdfs: bool, skip: Iterable[Path] = ()) -> dict[str, Path]:
    """Every file of the home to back up, by member name."""
    skipped = {p.resolve() for p in skip}
    found: dict[str, Path] = {}
    for path in sorted(home.root.rglob("*")):
        rel = path.relative_to(home.root)
        if not path.is_file() or path.is_symlink() or path.resolve() in skipped:
            continue
        if rel.parts[0] in _SKIPPED or path.name.endswith(".tmp"):
            continue
        found[HOME_PREFIX + rel.as_posix()] = path
    if with_pdfs and home.output_dir.is_dir():
        for path in sorted(home.output_dir.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.endswith(".tmp"):
                found[PDF_PREFIX + path.relative_to(home.output_dir).as_posix()] = path
    return found


def _snapshot_register(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's online backup API (a read snapshot: a running batch
    keeps writing, the copy holds every transaction committed before it began and none after)."""
    src = sqlite3.connect(source, timeout=30.0)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def create_backup(
    home: StationHome, dest: Path, passphrase: str | Secret, *, with_pdfs: bool = False, now: str | None = None
) -> BackupCheck:
    """Write a signed backup of ``home`` to ``dest`` (temporary name, then rename)."""
    if not home.register_path.exists():
        raise BackupError(f"站点目录 {home.root} 没有登记库：没有可备份的内容")
    now = now or utc_now()
    key, private = _signing_key(home, passphrase)
    sid = station_id(home)
    dest = dest.expanduser().absolute()
    for stale in dest.parent.glob(f".{dest.name}.*.tmp"):  # left by a backup that was killed
        stale.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="certkiosk-backup-") as tmp:
        snapshot = Path(tmp) / REGISTER
        # never in the middle of an issuing run: its numbers in flight, restored, would be voided and
        # their certificates, issued after the copy, revoked by the recovery of the restored home
        with _not_issuing(home), trust_lock(home):  # the register, the trust store and its marker as of one moment
            _snapshot_register(home.register_path, snapshot)
            members = {REGISTER: snapshot} | _home_files(home, with_pdfs, skip=[dest])
            for name, path in members.items():
                if path in (home.trust_path, home.trust_behind_path):  # rewritten by revocations: copied now
                    members[name] = Path(tmp) / path.name
                    shutil.copyfile(path, members[name])
        with Register(snapshot) as reg:
            seq, head = reg.audit_head()
        manifest = {
            "format": BACKUP_FORMAT, "station_id": sid, "created_at": now, "audit_head": f"{seq}:{head}",
            "with_pdfs": with_pdfs,
            "signer": {"kid": key.kid_hex, "public_key": base64.b64encode(key.public_key).decode("ascii"),
                       "filing_number": key.filing_number},
            "files": {name: {"sha256": _sha256(path), "size": path.stat().st_size} for name, path in members.items()},
        }  # fmt: skip
        content = canonical_json(manifest)
        try:
            with atomic_write(dest, 0o600) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(MANIFEST, content)
                zf.writestr(SIGNATURE, sign_detached(content, private, key.kid))
                for name, path in members.items():
                    zf.write(path, name)
        except OSError as exc:
            raise BackupError(f"无法写入备份 {dest}：{exc.strerror or exc}") from None
    settings = load_settings(home)
    settings["last"] = {"at": now, "path": str(dest)}
    save_settings(home, settings)
    return BackupCheck(dest, manifest, key.kid_hex)


@contextlib.contextmanager
def _not_issuing(home: StationHome) -> Iterator[None]:
    """Hold the station's issuing lock (re-entrant: a run that backs up itself holds it already);
    :class:`BackupBusy` while another run or thread issues."""
    try:
        with issuing_lock(home.issue_lock_path):
            yield
    except IssueBusy as exc:
        raise BackupBusy(f"发证进行中，现在不能备份（{exc}）：请在发证结束后再备份") from None


def auto_backup(home: StationHome, passphrase: str | Secret | None, why: str) -> str | None:
    """The automatic copy after a batch or a revocation, if configured; a message for the operator
    (never an exception: the batch or revocation itself has succeeded)."""
    auto = load_settings(home).get("auto")
    if not isinstance(auto, dict):
        return None
    folder, keep = Path(auto["folder"]), int(auto.get("keep", 10))
    if not passphrase:
        return f"未能自动备份（{why}）：需要私钥口令，请执行 certkiosk backup"
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    prefix = f"certkiosk-{station_id(home)[:8]}-"
    dest = folder / f"{prefix}{stamp}.zip"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        create_backup(home, dest, passphrase)
        for old in sorted(folder.glob(f"{prefix}*.zip"))[:-keep]:
            old.unlink(missing_ok=True)
        _owe(home, None)
    except BackupBusy:
        with contextlib.suppress(CertkioskError, OSError):
            _owe(home, why)
            return f"自动备份推迟（{why}）：发证进行中，发证结束后自动补做"
        return f"未能自动备份（{why}）：发证进行中，请在发证结束后执行 certkiosk backup"
    except (CertkioskError, OSError) as exc:
        return f"自动备份失败（{why}）：{exc}"
    return f"已自动备份到 {dest}"


def _owe(home: StationHome, why: str | None) -> None:
    """Record (``why``) or forget (None) an automatic backup that an issuing run made wait."""
    settings = load_settings(home)
    if settings.get("owed") != why:
        if why is None:
            settings.pop("owed", None)
        else:
            settings["owed"] = why
        save_settings(home, settings)


def owed_backup(home: StationHome, passphrase: str | Secret | None) -> str | None:
    """The automatic backup an issuing run made wait (a revocation made while it issued), taken
    now (by that run as it ends, holding the issuing lock itself); None when none is owed."""
    why = load_settings(home).get("owed")
    if not isinstance(why, str):
        return None
    return auto_backup(home, passphrase, why)


# --- checking --------------------------------------------------------------------------------
def _refuse(path: Path, why: str) -> BackupError:
    return BackupError(f"备份 {path} 不可用：{why}")


def check_backup(path: Path, *, extract_to: Path | None = None) -> BackupCheck:
    """Verify a backup without restoring it: signature, station identity, every digest, no member
    missing or added, and the register's own proof. With ``extract_to``, also extract it there."""
    try:
        return _check_backup(path, extract_to)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _refuse(path, f"文件已损坏（{exc}）") from None
    except (RuntimeError, NotImplementedError) as exc:  # an encrypted member, a compression zipfile lacks
        raise _refuse(path, f"不是本程序写的备份（{exc}）") from None


def _check_backup(path: Path, extract_to: Path | None) -> BackupCheck:
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise BackupError(f"备份文件 {path} 不存在") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(path, f"不是有效的备份文件（{exc}）") from None
    with zf, tempfile.TemporaryDirectory(prefix="certkiosk-check-") as tmp:
        names = set(zf.namelist())
        for needed in (MANIFEST, SIGNATURE):
            if needed not in names:
                raise _refuse(path, f"缺少 {needed}")
        for small in (MANIFEST, SIGNATURE):
            if zf.getinfo(small).file_size > MANIFEST_MAX_BYTES:
                raise _refuse(path, f"{small} 大于 {MANIFEST_MAX_BYTES} 字节（{zf.getinfo(small).file_size} 字节）")
        content = zf.read(MANIFEST)
        try:
            manifest = json.loads(content)
            signer = manifest["signer"]
            public = base64.b64decode(signer["public_key"], validate=True)
            files: dict[str, dict[str, Any]] = manifest["files"]
            if manifest["format"] != BACKUP_FORMAT or len(public) != 32:
                raise ValueError(manifest["format"])
            if not isinstance(files, dict) or not all(isinstance(f, dict) for f in files.values()):
                raise TypeError("files")
        except (ValueError, KeyError, TypeError) as exc:
            raise _refuse(path, f"清单格式错误（{exc}）") from None
        try:
            cose = parse_cose(zf.read(SIGNATURE), detached=content)
        except PayloadError as exc:
            raise _refuse(path, f"清单签名结构无效：{exc}") from None
        if cose.kid != kid_of(public) or not cose.verify(Ed25519PublicKey.from_public_bytes(public)):
            raise _refuse(path, "清单签名无效：清单在签名后被改动")
        kid = cose.kid.hex()
        station_member = HOME_PREFIX + StationHome(Path(), "backup").station_path.name
        key_member = f"{HOME_PREFIX}keys/{kid}.pem"
        if station_member not in names or key_member not in files or key_member not in names:
            raise _refuse(path, f"清单由不属于此备份的密钥 {kid} 签名：清单来自另一站点")
        try:
            sid = json.loads(zf.read(station_member))["station_id"]
        except (ValueError, KeyError, TypeError):
            sid = None
        if (
            sid != manifest.get("station_id")
            or files.get(station_member, {}).get("sha256") != hashlib.sha256(zf.read(station_member)).hexdigest()
        ):
            raise _refuse(path, f"清单属于站点 {manifest.get('station_id')}，备份内容属于站点 {sid}：清单来自另一站点")
        missing = sorted(set(files) - names)
        if missing:
            raise _refuse(path, f"缺少文件 {', '.join(missing[:5])}")
        extra = sorted(names - set(files) - {MANIFEST, SIGNATURE})
        if extra:
            raise _refuse(path, f"含有清单未列出的文件 {', '.join(extra[:5])}")
        root = Path(tmp) if extract_to is None else extract_to
        for name, facts in files.items():
            target = (root / name).resolve()
            if not target.is_relative_to(root.resolve()):
                raise _refuse(path, f"文件名 {name} 指向备份目录之外")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)
            if _sha256(target) != facts.get("sha256"):
                raise _refuse(path, f"{name} 的内容与清单中的 SHA-256 不符（被改动或损坏）")
        try:
            with Register(root / REGISTER) as reg:
                problems = reg.check()
                listed = {k.kid_hex: k for k in reg.institution_keys()}
                seq, head = reg.audit_head()
        except RegisterError as exc:
            raise _refuse(path, str(exc)) from None
        if problems:
            raise _refuse(path, "登记库校验未通过：" + "；".join(problems[:5]))
        if kid not in listed or listed[kid].public_key != public:
            raise _refuse(path, f"签名密钥 {kid} 不在备份的登记库中：清单来自另一站点")
        if f"{seq}:{head}" != manifest.get("audit_head"):
            raise _refuse(path, "登记库的审计链头与清单不符")
        for leftover in (REGISTER + "-wal", REGISTER + "-shm"):
            (root / leftover).unlink(missing_ok=True)
    return BackupCheck(path, manifest, kid)


# --- restoring -------------------------------------------------------------------------------
def find_issued_numbers(places: Iterable[Path]) -> dict[tuple[str, int, int], tuple[int, str]]:
    """The highest serial per (filing number, year, level) found in ``places``: PDF and other
    files named by a certificate number, numbers inside batch manifests and reports (JSON, CSV),
    and the registers inside backup ZIPs."""
    found: dict[tuple[str, int, int], tuple[int, str]] = {}

    def note(number: str, where: str) -> None:
        check = check_number(number)
        if not check.valid:
            return
        parsed = check.parsed()
        key = (parsed.filing_number, parsed.year, parsed.level)
        if parsed.serial > found.get(key, (0, ""))[0]:
            found[key] = (parsed.serial, where)

    for place in places:
        files = _files_at(place, "*")
        for path in files:
            for match in _NUMBER.findall(path.name):
                note(match, str(path))
            suffix = path.suffix.lower()
            if suffix in (".json", ".csv", ".txt") and path.stat().st_size < 50 * 1024 * 1024:
                for match in _NUMBER.findall(path.read_text("utf-8", errors="replace")):
                    note(match, str(path))
            elif suffix == ".zip":
                for key, (serial, _) in _serials_in_backup(path).items():
                    if serial > found.get(key, (0, ""))[0]:
                        found[key] = (serial, str(path))
    return found


def _files_at(place: Path, pattern: str) -> list[Path]:
    """The files a place given to look in stands for: itself when it is a file whose name matches
    ``pattern`` (fnmatch), else the matching files under it, sorted (OSError: it cannot be read)."""
    if place.is_file():
        return [place] if fnmatch.fnmatch(place.name, pattern) else []
    return sorted(p for p in place.rglob(pattern) if p.is_file()) if place.is_dir() else []


def _serials_in_backup(path: Path) -> dict[tuple[str, int, int], tuple[int, str]]:
    try:
        with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory() as tmp:
            if REGISTER not in zf.namelist():
                return {}
            zf.extract(REGISTER, tmp)
            db = sqlite3.connect(Path(tmp) / REGISTER)
            try:
                rows = db.execute("SELECT filing_number, year, level, last_serial FROM serials").fetchall()
            finally:
                db.close()
    except (
        zipfile.BadZipFile,
        OSError,
        sqlite3.DatabaseError,
        RuntimeError,
        NotImplementedError,
        zlib.error,
        EOFError,
    ):
        return {}  # not a backup this program wrote (encrypted, another compression, broken): no evidence
    return {(f, y, lv): (s, str(path)) for f, y, lv, s in rows}


def parse_highest(text: str, filing_numbers: list[str]) -> tuple[str, int, int, int]:
    """``YEAR:LEVEL:SERIAL`` (or ``FILING:YEAR:LEVEL:SERIAL``) from ``--highest-serial``."""
    parts = text.strip().split(":")
    try:
        if len(parts) == 4:
            filing, year, level, serial = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
        elif len(parts) == 3 and len(filing_numbers) == 1:
            filing, year, level, serial = filing_numbers[0], int(parts[0]), int(parts[1]), int(parts[2])
        else:
            raise ValueError
    except ValueError:
        raise BackupError(
            f"--highest-serial「{text}」格式应为 年份:等级:序号（如 2026:3:120），"
            "本站有多个机构时为 备案号:年份:等级:序号"
        ) from None
    if not (2000 <= year <= 2099 and 1 <= level <= 5 and 1 <= serial <= 999_999):
        raise BackupError(f"--highest-serial「{text}」超出范围：年份2000-2099，等级1-5，序号1-999999")
    return filing, year, level, serial


def settle_numbers(
    reg: Register,
    places: Iterable[Path],
    highest: Iterable[str] = (),
    *,
    settle: bool = False,
) -> list[str]:
    """Move every counter past the numbers found in ``places`` and the operator's ``highest``;
    with ``settle`` (the operator named where to look, or confirmed nothing was issued after the
    backup), allow issuing again."""
    places = [p for p in places if p.exists()]
    highest = list(highest)
    filings = sorted({k.filing_number for k in reg.institution_keys()})
    found = find_issued_numbers(places)
    for text in highest:
        filing, year, level, serial = parse_highest(text, filings)
        if serial > found.get((filing, year, level), (0, ""))[0]:
            found[(filing, year, level)] = (serial, f"操作员输入 {text}")
    moved = []
    for (filing, year, level), (serial, where) in sorted(found.items()):
        old = reg.raise_serial(filing, year, level, serial, where)
        if old is not None:
            moved.append(f"机构 {filing} {year}年{level}级：序号由 {old} 调至 {serial}（依据 {where}）")
    if settle and reg.unsettled():
        reg.settle({"places": [str(p) for p in places], "highest": highest, "moved": moved})
    return moved


def restore_backup(
    backup: Path,
    target: StationHome,
    *,
    force: bool = False,
    scan: Iterable[Path] = (),
    highest: Iterable[str] = (),
    nothing_later: bool = False,
) -> RestoreResult:
    """Restore ``backup`` into ``target`` (new, or replaced with the old home kept aside)."""
    root = target.root
    scan, highest = list(scan), list(highest)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    staging = root.with_name(f"{root.name}.restoring-{stamp}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        check = check_backup(backup, extract_to=staging)
        evidence = [*scan]
        if root.exists() and (root / "register.sqlite").exists():
            with Register(root / "register.sqlite") as current:
                seq, _ = current.audit_head()
            if seq > check.audit_seq and not force:
                raise BackupError(
                    f"当前登记库比备份新（审计日志 {seq} 条，备份 {check.audit_seq} 条）：拒绝覆盖。"
                    "确需恢复这份较旧的备份请加 --force（当前目录会保留在一旁）"
                )
            evidence.append(root / "register.sqlite")
            evidence.append(root / "issued")
        settings = load_settings(StationHome(staging / "home", "restore"))
        auto = settings.get("auto")
        if isinstance(auto, dict):
            evidence.append(Path(auto["folder"]))
        home = staging / "home"
        (staging / REGISTER).replace(home / REGISTER)
        os.chmod(home, 0o700)
        if (home / "keys").is_dir():
            os.chmod(home / "keys", 0o700)
            for pem in (home / "keys").glob("*.pem"):
                os.chmod(pem, 0o600)
        if (staging / "issued").is_dir():
            (staging / "issued").replace(home / "issued")
        settled = bool(scan) or bool(highest) or nothing_later
        with Register(home / REGISTER) as reg:
            reg.mark_restored(
                {"backup": str(backup), "created_at": check.created_at, "audit_head": check.manifest["audit_head"],
                 "station_id": check.station_id},
                settled=False,
            )  # fmt: skip
            moved = _raise_from_register(reg, [p for p in evidence if p.suffix == ".sqlite"])
            moved += settle_numbers(reg, [p for p in evidence if p.suffix != ".sqlite"], highest, settle=settled)
        replaced_register = root / REGISTER if (root / REGISTER).exists() else None
        kept = carry_after_backup(
            StationHome(home, "restore"), [p for p in evidence if p.suffix != ".sqlite" and p.exists()],
            check.station_id, replaced_register,
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replaced = None
    if root.exists():
        replaced = root.with_name(f"{root.name}.replaced-{stamp}")
        root.rename(replaced)
    home.rename(root)
    shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(root, replaced, tuple(moved), settled, tuple(str(p) for p in evidence), tuple(kept))


def carry_after_backup(
    home: StationHome, places: Iterable[Path], station: str, replaced: Path | None = None
) -> list[str]:
    """Revocations made after the backup, kept: a restored station that forgot them would verify
    a revoked certificate as valid, and its next bundle would leave them out. Found in the
    register and trust store of the home being replaced (``replaced``: its register file), and in
    the backups in ``places`` (the automatic backup folder, ``--scan``) that check, belong to this
    station (``station``, its id) and are signed by one of its own keys (the restored or replaced
    register's: the station id alone is written in every backup and proves nothing). They are added
    to the restored trust store as made (time, reason); the register is not written (a revocation
    recorded there without the passphrase would be unsigned). Returns lines for the operator:
    each revocation kept, and each place that could not be read."""
    with Register(home.register_path) as reg:
        return _carry_into(reg, home, places, station, replaced)


def _carry_into(
    reg: Register, home: StationHome, places: Iterable[Path], station: str, replaced: Path | None
) -> list[str]:
    """:func:`carry_after_backup` with the restored home's register ``reg`` open."""
    kids = {k.kid_hex for k in reg.institution_keys()}
    found: list[Revocation] = []
    exports: list[dict[str, Any]] = []
    blanks: list[tuple[str, str, str]] = []
    lines: list[str] = []
    if replaced is not None and replaced.is_file():
        exports.append(_export_log_at(replaced.parent / "trust-exports.json"))  # each source on its own
        try:
            with Register(replaced) as old:
                kids |= {k.kid_hex for k in old.institution_keys()}
                found += old.revocations()
                blanks += [(serial, number, str(replaced)) for serial, number in old.print_serials_used()]
        except (CertkioskError, sqlite3.Error) as exc:
            lines.append(f"无法读取被替换站点的登记库（{exc}）：其中备份之后的吊销和已用证书用纸未能保留")
        try:
            found += TrustStore(replaced.parent / "trust.json").load().revocations
        except CertkioskError as exc:
            lines.append(f"无法读取被替换站点的信任库（{exc}）：其中备份之后的吊销未能保留")
    for place in places:
        try:
            zips = _files_at(place, "*.zip")
        except OSError as exc:
            lines.append(f"无法读取 {place}（{exc.strerror}）：其中备份里的吊销未能保留")
            continue
        for path in zips:
            try:
                revocations, log, used = _later_in_backup(path, station, kids)
            except Exception as exc:  # a planted or broken file: named, never a traceback
                lines.append(f"未采信备份 {path}：{exc}")
                continue
            found += revocations
            exports.append(log)
            blanks += [(serial, number, str(path)) for serial, number in used]
        blanks += _blanks_in_manifests(place)
    with trust_lock(home):
        trust = TrustStore(home.trust_path)
        store = trust.load()
        merged = store.with_revocations(found)
        added = merged.revocations[len(store.revocations) :]
        if added:
            trust.save(merged)
    kept = [f"保留备份之后的吊销：{SCOPE_TEXT[r.scope]} {r.target}（{r.revoked_at}，{r.reason}）" for r in added]
    return kept + _carry_export_log(home, exports) + _carry_blanks(reg, blanks) + lines


def _carry_blanks(reg: Register, blanks: list[tuple[str, str, str]]) -> list[str]:
    """The blanks (印制流水码) used after the backup are never used again: a blank is printed once."""
    noted = reg.note_blanks_used(blanks)
    lines = [f"保留备份之后已用的证书用纸：印制流水码 {s}（证书 {n}，依据 {where}）" for s, n, where in noted[:20]]
    if len(noted) > 20:
        lines.append(f"……共保留 {len(noted)} 张已用的证书用纸")
    return lines


def _blanks_in_manifests(place: Path) -> list[tuple[str, str, str]]:
    """``(serial, number, manifest)`` of every blank a batch manifest in ``place`` lists."""
    found: list[tuple[str, str, str]] = []
    try:
        manifests = _files_at(place, "manifest.json")
    except OSError:
        return found
    for path in manifests:
        try:
            if path.stat().st_size > MANIFEST_MAX_BYTES:
                continue
            items = json.loads(path.read_text("utf-8")).get("certificates", [])
        except (OSError, ValueError, AttributeError, RecursionError):  # not a manifest this program wrote
            continue
        for item in items if isinstance(items, list) else []:
            if (
                isinstance(item, dict)
                and isinstance(item.get("print_serial"), str)
                and isinstance(item.get("number"), str)
                and check_number(item["number"]).valid  # a certificate number: nothing else reaches the screen
            ):
                with contextlib.suppress(ValueError):
                    serial = normal_print_serial(item["print_serial"])
                    if serial is not None:
                        found.append((serial, item["number"], str(path)))
    return found


def _export_log_at(path: Path) -> dict[str, Any]:
    """The trust-bundle sequence log at ``path`` ({} when missing or not one)."""
    try:
        log = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return log if isinstance(log, dict) else {}


def _carry_export_log(home: StationHome, logs: list[dict[str, Any]]) -> list[str]:
    """The trust bundles exported after the backup stay counted: their sequence numbers are added
    to the restored log, so the next export never reuses one (a verifier that imported bundle N
    ignores the keys of another bundle N as older)."""
    path = home.trust_exports_path
    mine = _export_log_at(path)
    lines = []
    for log in logs:
        for filing, issued in log.items():
            if not isinstance(issued, dict):
                continue
            known = mine.setdefault(filing, {})
            later = {seq: at for seq, at in issued.items() if seq not in known and re.fullmatch("[0-9]{1,9}", seq)}
            if later:
                known.update(later)
                lines.append(f"保留备份之后导出的信任包序号：机构 {filing} 第{'、'.join(sorted(later, key=int))}号")
    if lines:
        write_bytes_atomic(path, json.dumps(mine, ensure_ascii=False, indent=1).encode("utf-8"))
    return lines


def _later_in_backup(
    path: Path, station: str, kids: set[str]
) -> tuple[list[Revocation], dict[str, Any], list[tuple[str, str]]]:
    """The revocations of the register and trust store, and the trust-bundle sequence log, in the
    backup ``path``; nothing when it is another station's; BackupError when it does not check or
    is not signed by a key in ``kids``."""
    with zipfile.ZipFile(path) as zf:
        if sum(i.file_size for i in zf.infolist()) > EVIDENCE_MAX_BYTES:
            raise _refuse(path, f"解压后大于 {EVIDENCE_MAX_BYTES} 字节")
        info = zf.getinfo(MANIFEST) if MANIFEST in zf.namelist() else None
        if info is not None and info.file_size <= MANIFEST_MAX_BYTES:
            with contextlib.suppress(ValueError, AttributeError):  # unreadable: the full check below names it
                if json.loads(zf.read(MANIFEST)).get("station_id") != station:
                    return [], {}, []  # another station's backup: not read any further (only a filter, not proof)
    check = check_backup(path)
    if check.station_id != station:
        return [], {}, []
    if check.signer not in kids:
        raise _refuse(path, f"签名密钥 {check.signer} 不是本站登记库中的密钥")
    found: list[Revocation] = []
    with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory() as tmp:
        zf.extract(REGISTER, tmp)
        with Register(Path(tmp) / REGISTER) as reg:
            found += reg.revocations()
            used = reg.print_serials_used()
        names = set(zf.namelist())
        if HOME_PREFIX + "trust.json" in names:
            zf.extract(HOME_PREFIX + "trust.json", tmp)
            found += TrustStore(Path(tmp) / HOME_PREFIX / "trust.json").load().revocations
        log: dict[str, Any] = {}
        if HOME_PREFIX + "trust-exports.json" in names:
            zf.extract(HOME_PREFIX + "trust-exports.json", tmp)
            log = _export_log_at(Path(tmp) / HOME_PREFIX / "trust-exports.json")
    return found, log, used


def _raise_from_register(reg: Register, registers: list[Path]) -> list[str]:
    moved = []
    for path in registers:
        with Register(path) as other:
            counters = other.serials()
        for (filing, year, level), serial in sorted(counters.items()):
            old = reg.raise_serial(filing, year, level, serial, str(path))
            if old is not None:
                moved.append(f"机构 {filing} {year}年{level}级：序号由 {old} 调至 {serial}（依据 {path}）")
    return moved
