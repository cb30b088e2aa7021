"""A station: its home folder with keys, trust store and register, and the operations that
touch more than one of them (so the command line and the terminal UI share one implementation).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from certgen.exceptions import CertkioskError, ConfigError, RegisterError, TrustError
from certgen.files import write_bytes_atomic
from certgen.number import check_filing_number, load_profiles
from certgen.secret import Secret
from certgen.station.home import StationHome
from certgen.station.keys import DEFAULT_VALIDITY_YEARS, KeyStore, check_passphrase
from certgen.station.register import Register
from certgen.trust import MergeResult, PublicKeyInfo, Revocation, Scope, TrustBundle, TrustStore


def years_after(day: _dt.date, years: int) -> _dt.date:
    """The same day ``years`` later; 29 February becomes 1 March in a common year (so a key made on
    2024-02-29 for ten years is valid through 2034-02-28)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return _dt.date(day.year + years, 3, 1)


@dataclass(frozen=True)
class KeyListing:
    """One key as ``keys list`` shows it."""

    info: PublicKeyInfo
    """The key's public part and binding."""
    has_private: bool
    """Whether this station holds the (encrypted) private key."""
    revoked: bool
    """Whether the key is revoked."""


class Station:
    """Operations on one station home."""

    def __init__(self, home: StationHome) -> None:
        self.home = home
        self.keystore = KeyStore(home.keys_dir)
        self.trust = TrustStore(home.trust_path)

    @contextmanager
    def register(self) -> Iterator[Register]:
        self.home.ensure()
        reg = Register(self.home.register_path)
        try:
            yield reg
        finally:
            reg.close()

    # --- keys ------------------------------------------------------------------------------
    def new_key(
        self,
        filing_number: str,
        institution: str,
        passphrase: str | Secret,
        *,
        valid_from: _dt.date | None = None,
        years: int = DEFAULT_VALIDITY_YEARS,
    ) -> tuple[PublicKeyInfo, PublicKeyInfo | None]:
        """Create the institution's signing key; an existing open key is rolled over (kept for
        verification, its validity ending the day before). A key valid from before the institution's
        existing keys fills the gap: it ends the day before the earliest of them, which stay as they
        are. Returns ``(new, previous or None)``.
        """
        check = check_filing_number(filing_number, profiles=load_profiles(self.home.profiles_dir))
        if not check.valid:
            raise RegisterError(f"机构备案号「{filing_number}」无效：" + "；".join(check.errors))
        institution = institution.strip()
        if not institution:
            raise RegisterError("机构名称不能为空")
        if not 1 <= years <= 30:
            raise RegisterError(f"密钥有效年限应为1-30年，收到 {years}")
        check_passphrase(passphrase)
        start = valid_from or _dt.date.today()
        until = years_after(start, years) - _dt.timedelta(days=1)
        self.home.ensure()
        with self.register() as reg:
            later = [k.valid_from for k in reg.institution_keys(filing_number) if k.valid_from > start]
        if later:
            until = min(until, min(later) - _dt.timedelta(days=1))
        kid, public = self.keystore.generate(passphrase)
        info = PublicKeyInfo(kid, public, filing_number, institution, start, until)
        try:
            with self.register() as reg:
                previous = reg.add_key(info)
        except BaseException:
            self.keystore.path_for(kid).unlink(missing_ok=True)
            raise
        bundle = self.trust.load().with_key(info)
        if previous is not None:
            bundle = bundle.with_key(previous)
        self.trust.save(bundle)
        return info, previous

    def list_keys(self) -> list[KeyListing]:
        """Every key this station knows: its own (from the register) and trusted ones."""
        own: list[PublicKeyInfo] = []
        if self.home.register_path.exists():
            with self.register() as reg:
                own = reg.institution_keys()
        bundle = self.trust.load()
        seen = {k.kid for k in own}
        infos = own + [k for k in bundle.keys if k.kid not in seen]
        private = set(self.keystore.kids())
        return [KeyListing(k, k.kid in private, bundle.key_revocation(k.kid) is not None) for k in infos]

    # --- trust -----------------------------------------------------------------------------
    def trust_for_verifying(self) -> TrustBundle:
        """The trust bundle; ConfigError saying how to get one when the station has none."""
        if not self.trust.exists():
            raise ConfigError(
                f"本站没有信任库（{self.trust.path}）：请先导入签发机构的信任包"
                "（命令行 certkiosk trust import，或界面“密钥”页 F6）"
            )
        return self.trust.load()

    def export_trust(self, path: Path) -> str:
        """Write the trust bundle to ``path``; returns its SHA-256 fingerprint."""
        bundle = self.trust.load()
        if not bundle.keys:
            raise TrustError("信任库为空：没有可导出的密钥（请先执行 certkiosk keys new 或导入信任包）")
        data = bundle.to_bytes()
        try:
            write_bytes_atomic(path, data)
        except OSError as exc:
            raise TrustError(f"无法写入 {path}：{exc.strerror}") from None
        return bundle.fingerprint()

    def import_trust(self, path: Path) -> tuple[MergeResult, str]:
        """Merge the bundle at ``path``; returns what changed and the file's fingerprint."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TrustError(f"无法读取信任包 {path}：{exc.strerror}") from None
        incoming = TrustBundle.from_bytes(data, f"信任包 {path}")
        result = self.trust.load().merge(incoming)
        self.home.ensure()
        self.trust.save(result.bundle)
        return result, incoming.fingerprint()

    # --- revocation ------------------------------------------------------------------------
    def revoke(self, scope: Scope, target: str, reason: str) -> Revocation:
        """Revoke in the register (audited) and in this station's trust store."""
        with self.register() as reg:
            revocation = reg.revoke(scope, target, reason)
        self.trust.save(self.trust.load().with_revocations([revocation]))
        return revocation


def describe_error(exc: BaseException) -> str:
    """The message to show a user for an error raised by certkiosk."""
    if isinstance(exc, CertkioskError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"文件操作失败{where}：{exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"
