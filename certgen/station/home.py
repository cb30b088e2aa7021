"""The station home: the one folder that holds a station's keys, trust store and register."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from certgen.exceptions import ConfigError

ENV_HOME = "CERTKIOSK_HOME"


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
    def profiles_dir(self) -> Path:
        """The station's own province profiles (``*.toml``), added to the bundled ones."""
        return self.root / "profiles"

    def ensure(self) -> StationHome:
        """Create the home folder (private to the user) if needed; ConfigError if impossible."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.keys_dir.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"无法创建站点目录 {self.root}：{exc.strerror or exc}") from None
        if not os.access(self.root, os.W_OK):
            raise ConfigError(f"站点目录 {self.root} 不可写")
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
        }
