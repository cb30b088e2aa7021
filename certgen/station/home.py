"""The station home: the one folder that holds a station's keys, trust store and register."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from certgen.exceptions import ConfigError

ENV_HOME = "CERTKIOSK_HOME"
LOCATION_LABELS: dict[str, str] = {
    "home": "站点目录", "keys": "私钥目录", "trust": "信任库", "register": "登记库", "issued": "证书输出",
    "profiles": "省份规则", "templates": "本站模板", "fonts": "本站字体", "seal": "机构印章",
    "quarantine": "隔离文件", "verify-runs": "核验记录", "printing": "打印校准", "settings": "站点设置",
    "backup-settings": "自动备份设置", "station": "站点标识", "trust-exports": "信任包序号",
    "kiosk-log": "自助核验日志", "kiosk-pin": "自助核验口令", "issue-lock": "发证锁",
    "trust-lock": "信任库锁", "trust-behind": "吊销待写入信任库标记",
}  # fmt: skip
"""What ``certkiosk locate`` calls each of :meth:`StationHome.locations`."""


@dataclass(frozen=True)
class StationHome:
    """Where a station keeps everything; all paths derive from ``root``."""

    root: Path
    """The home folder itself."""
    source: str
    """How it was chosen: ``--home``, ``CERTKIOSK_HOME`` or ``platformdirs``."""

    @classmethod
    def resolve(cls, option: str | os.PathLike[str] | None = None) -> StationHome:
        """``--home DIR``, else ``$CERTKIOSK_HOME``, else the platform's user data folder."""
        if option:
            return cls(Path(option).expanduser().absolute(), "--home")
        env = os.environ.get(ENV_HOME)
        if env:
            return cls(Path(env).expanduser().absolute(), ENV_HOME)
        import platformdirs  # only when neither --home nor CERTKIOSK_HOME says where

        return cls(Path(platformdirs.user_data_dir("certkiosk", appauthor=False)), "platformdirs")

    @property
    def keys_dir(self) -> Path:
        """Encrypted private keys, one PKCS#8 PEM file per key (mode 0600)."""
        return self.root / "keys"

    @property
    def trust_path(self) -> Path:
        """The trust store: trusted public keys and revocations (JSON)."""
        return self.root / "trust.json"

    @property
    def register_path(self) -> Path:
        """The issuance register (SQLite)."""
        return self.root / "register.sqlite"

    @property
    def seal_path(self) -> Path:
        """The station's own seal (PNG, transparent background), used when no ``--seal`` is given."""
        return self.root / "seal.png"

    @property
    def output_dir(self) -> Path:
        """Default folder for issued certificates and batch reports."""
        return self.root / "issued"

    @property
    def templates_dir(self) -> Path:
        """The station's own certificate templates (``*.toml``), before the shipped ones."""
        return self.root / "templates"

    @property
    def fonts_dir(self) -> Path:
        """The station's own fonts (e.g. a licensed STKaiti), before the bundled one."""
        return self.root / "fonts"

    @property
    def issue_lock_path(self) -> Path:
        """The issuing lock: one issuing run per station (``flock``; holds the owner's pid)."""
        return self.root / "issue.lock"

    @property
    def quarantine_dir(self) -> Path:
        """Certificate files recovery found for numbers that are not issued (moved here, listed)."""
        return self.root / "quarantine"

    @property
    def verify_runs_dir(self) -> Path:
        """Resumable archive runs: facts about file contents, keyed by SHA-256 (never verdicts)."""
        return self.root / "verify-runs"

    @property
    def printing_path(self) -> Path:
        """Printer queues' calibration offsets (JSON)."""
        return self.root / "printing.json"

    @property
    def station_path(self) -> Path:
        """Which institution this station is, for backups (JSON)."""
        return self.root / "station.json"

    @property
    def backup_settings_path(self) -> Path:
        """Automatic backups: the folder and how many to keep (JSON)."""
        return self.root / "backup.json"

    @property
    def settings_path(self) -> Path:
        """Station settings: retention, the kiosk's clear delay (JSON)."""
        return self.root / "settings.json"

    @property
    def trust_exports_path(self) -> Path:
        """The issuing side's trust-bundle sequence numbers and their issue times (JSON)."""
        return self.root / "trust-exports.json"

    @property
    def trust_lock_path(self) -> Path:
        """The lock held while the trust store is read, changed and written (certgen.station.revoking)."""
        return self.root / "trust.lock"

    @property
    def trust_behind_path(self) -> Path:
        """Present while the trust store may lack a revocation the register holds (certgen.station.revoking)."""
        return self.root / "trust-behind"

    @property
    def kiosk_log_path(self) -> Path:
        """The kiosk's log of checks (JSON lines; never names or ID numbers)."""
        return self.root / "kiosk-log.jsonl"

    @property
    def kiosk_pin_path(self) -> Path:
        """The kiosk operator PIN's salted scrypt hash (JSON, mode 0600)."""
        return self.root / "kiosk-pin.json"

    @property
    def profiles_dir(self) -> Path:
        """The station's own province profiles (``*.toml``), added to the bundled ones."""
        return self.root / "profiles"

    def ensure(self) -> StationHome:
        """Create the home folder if needed and make it private (0700, whoever created it), with
        its files of personal data or keys 0600; ConfigError if impossible."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.keys_dir.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"无法创建站点目录 {self.root}：{exc.strerror or exc}") from None
        if not os.access(self.root, os.W_OK):
            raise ConfigError(f"站点目录 {self.root} 不可写")
        make_private(self.root)
        make_private(self.keys_dir)
        for path in (self.register_path, *sqlite_companions(self.register_path), self.trust_path):
            make_private(path)
        for key in self.keys_dir.glob("*.pem"):
            make_private(key)
        return self

    def locations(self) -> dict[str, Path]:
        """Every place the station uses, for ``certkiosk locate``."""
        return {
            "home": self.root,
            "keys": self.keys_dir,
            "trust": self.trust_path,
            "register": self.register_path,
            "issued": self.output_dir,
            "profiles": self.profiles_dir,
            "templates": self.templates_dir,
            "fonts": self.fonts_dir,
            "seal": self.seal_path,
            "quarantine": self.quarantine_dir,
            "verify-runs": self.verify_runs_dir,
            "printing": self.printing_path,
            "settings": self.settings_path,
            "backup-settings": self.backup_settings_path,
            "station": self.station_path,
            "trust-exports": self.trust_exports_path,
            "kiosk-log": self.kiosk_log_path,
            "kiosk-pin": self.kiosk_pin_path,
            "issue-lock": self.issue_lock_path,
            "trust-lock": self.trust_lock_path,
            "trust-behind": self.trust_behind_path,
        }


def sqlite_companions(path: Path) -> tuple[Path, ...]:
    """The files SQLite keeps beside a database (they hold its data too)."""
    return tuple(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))


def make_private(path: Path) -> None:
    """Tighten an existing folder to 0700 or file to 0600 (others may not even list or read it).

    ConfigError when it cannot be tightened, and for a shared folder (sticky bit, e.g. /tmp)
    that must not be taken over as a station's private folder.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"无法检查 {path} 的权限：{exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        return  # the target is checked where it is opened
    wanted = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
    if stat.S_IMODE(info.st_mode) & 0o077 == 0:
        return
    if stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX:
        raise ConfigError(f"{path} 是共享目录（如 /tmp），不能作为站点目录：请用 --home 指定一个专用目录")
    try:
        os.chmod(path, wanted)
    except OSError as exc:
        raise ConfigError(
            f"{path} 的权限为 {stat.S_IMODE(info.st_mode):o}，其他用户可读，且无法改为 {wanted:o}：{exc.strerror}"
        ) from None
