"""The station home: the one folder that holds a station's keys, trust store and register."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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


@contextmanager
def atomic_write(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file in the same folder, fsync it and rename it over.

    Readers see the old file or the new one, never half of one; on error the old file stays.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Atomically replace ``path`` with ``data`` (see :func:`atomic_write`)."""
    with atomic_write(path, mode) as fh:
        fh.write(data)
