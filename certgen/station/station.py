"""A station: its home folder with keys, trust store and register, and the operations that
touch more than one of them (so the command line and the terminal UI share one implementation).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certgen.bounded import read_regular
from certgen.exceptions import (
    CertkioskError,
    ConfigError,
    InputRefused,
    KeyStoreError,
    RegisterError,
    TrustError,
    WrongPassphrase,
)
from certgen.files import is_disk_full, write_bytes_atomic
from certgen.number import ProvinceProfile, check_filing_number, load_profiles
from certgen.payload import sign_detached
from certgen.secret import Secret
from certgen.station.home import StationHome
from certgen.station.keys import DEFAULT_VALIDITY_YEARS, KeyStore, check_passphrase
from certgen.station.revoking import caught_up, learn_revocations, revoking, trust_lock
from certgen.trust import (
    BUNDLE_MAX_BYTES,
    Endorsement,
    InstitutionTrust,
    PublicKeyInfo,
    Revocation,
    Scope,
    TrustBundle,
    TrustStore,
    endorsement_content,
    utc_now,
)

if TYPE_CHECKING:  # the register (SQLite) is imported when first opened: `verify --text` never opens it
    from certgen.bundle import ImportResult, SignedBundle  # trust bundles: imported when one is made or read
    from certgen.station.register import IssuedCertificate, Register
    from certgen.station.register_proof import Checkpoint, CheckpointSigner


@dataclass(frozen=True)
class ExportResult:
    """A trust bundle written by ``trust export``."""

    path: Path
    """Where it was written."""
    sequence: int
    """Its sequence number."""
    since: int | None
    """For an update: the sequence it continues."""
    fingerprint: str
    """SHA-256 of the file."""
    keys: int
    """Keys it carries."""
    revocations: int
    """Revocations it carries."""


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


@dataclass(frozen=True)
class CertificateState:
    """One certificate of the register with whatever revokes it, as ``register find`` shows it."""

    certificate: IssuedCertificate
    """The register's row: number, status, record, batch, key."""
    revocation: Revocation | None
    """The revocation that covers it (its own, its batch's or its key's), or None."""

    @property
    def revoked(self) -> bool:
        return self.revocation is not None


class Station:
    """Operations on one station home."""

    def __init__(self, home: StationHome) -> None:
        self.home = home
        self.keystore = KeyStore(home.keys_dir)
        self.trust = TrustStore(home.trust_path)
        self.last_backup_note: str | None = None

    @contextmanager
    def register(self) -> Iterator[Register]:
        from certgen.station.register import Register

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
        old_passphrase: str | Secret | None = None,
    ) -> tuple[PublicKeyInfo, PublicKeyInfo | None]:
        """Create the institution's signing key; an existing open key is rolled over (kept for
        verification, its validity ending the day before) and signs a roll-over statement for
        the new key (with ``old_passphrase``, else ``passphrase``). A key valid from before the
        institution's existing keys fills the gap: it ends the day before the earliest of them, which
        stay as they are. Returns ``(new, previous or None)``.
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
        endorser = self._endorser(filing_number, old_passphrase or passphrase)
        new_private = Ed25519PrivateKey.generate()
        kid, public = self.keystore.store(new_private, passphrase)
        info = PublicKeyInfo(kid, public, filing_number, institution, start, until)
        try:
            info = info.with_x509(self._make_x509(info, passphrase))
            with self.register() as reg:
                from certgen.station.register_proof import CheckpointSigner

                reg.signer = CheckpointSigner(kid.hex(), new_private)
                previous = reg.add_key(info)
        except BaseException:
            self.keystore.path_for(kid).unlink(missing_ok=True)
            self.keystore.x509_key_path(kid).unlink(missing_ok=True)
            raise
        with trust_lock(self.home):
            bundle = self.trust.load().with_key(info)
            if previous is not None:
                bundle = bundle.with_key(previous)
            if endorser is not None:
                old, private = endorser
                signature = sign_detached(endorsement_content(info), private, old.kid)
                bundle = bundle.with_endorsement(Endorsement(info.kid, old.kid, signature))
            state = bundle.institution(filing_number) or InstitutionTrust(filing_number)
            bundle = bundle.with_institution(replace(state, own=True))
            self.trust.save(bundle)
        return info, previous

    def _endorser(self, filing_number: str, passphrase: str | Secret) -> tuple[PublicKeyInfo, Ed25519PrivateKey] | None:
        """The institution's newest unrevoked key this station holds, decrypted to sign a roll-over."""
        if not self.home.register_path.exists():
            return None
        with self.register() as reg:
            revoked = {r.target for r in reg.revocations() if r.scope == "key"}
            keys = [k for k in reg.institution_keys(filing_number) if k.kid.hex() not in revoked]
        keys = [k for k in keys if self.keystore.path_for(k.kid).exists()]
        if not keys:
            return None
        old = keys[-1]
        try:
            return old, self.keystore.load(old.kid, passphrase)
        except WrongPassphrase:
            raise WrongPassphrase(
                f"口令无法解密原密钥 {old.kid_hex}：轮换时原密钥要签署轮换声明，请提供原密钥的口令"
                "（命令行 --old-passphrase-file）"
            ) from None

    def _make_x509(self, info: PublicKeyInfo, passphrase: str | Secret) -> bytes:
        """Create the key's P-256 document-signing key (encrypted) and its certificate (DER)."""
        from certgen.docsign import make_certificate

        private = self.keystore.generate_x509_key(info.kid, passphrase)
        return make_certificate(
            private, institution=info.institution, filing_number=info.filing_number, kid=info.kid,
            valid_from=info.valid_from, valid_until=info.valid_until,
        )  # fmt: skip

    def add_x509(self, passphrase: str | Secret) -> list[PublicKeyInfo]:
        """Give every own key without a document-signing certificate one (``keys x509``).

        The passphrase must open the key (so only its holder adds a certificate to it); the
        trust store gets the updated entries. Returns the keys that got a certificate.
        """
        with self.register() as reg:
            pending = [k for k in reg.institution_keys() if k.x509 is None and k.kid in self.keystore.kids()]
        done: list[PublicKeyInfo] = []
        for info in pending:
            self.keystore.load(info.kid, passphrase)  # WrongPassphrase before anything is written
            path = self.keystore.x509_key_path(info.kid)
            if path.exists():
                raise KeyStoreError(f"密钥 {info.kid.hex()} 已有文档签名私钥 {path}，但登记库中没有其证书")
            try:
                updated = info.with_x509(self._make_x509(info, passphrase))
                with self.register() as reg:
                    from certgen.station.register_proof import CheckpointSigner

                    reg.signer = CheckpointSigner(info.kid_hex, self.keystore.load(info.kid, passphrase))
                    reg.add_key_certificate(info.kid, updated.x509 or b"")
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            with trust_lock(self.home):
                bundle = self.trust.load()
                if bundle.key(info.kid) is not None:
                    self.trust.save(bundle.with_key(bundle.key(info.kid).with_x509(updated.x509)))  # type: ignore[union-attr]
            done.append(updated)
        return done

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
        return caught_up(self.home, self.trust)  # a revocation a killed process left half-made is finished first

    def verification_data(self) -> tuple[TrustBundle, dict[str, ProvinceProfile]]:
        """What every verification on this station uses: the trust bundle and the province profiles
        (bundled and the station's own), the same for the CLI, the UI and the workers."""
        return self.trust_for_verifying(), load_profiles(self.home.profiles_dir)

    @property
    def exports_path(self) -> Path:
        """The issuing side's bundle sequence counters and their issue times (JSON)."""
        return self.home.trust_exports_path

    def _export_log(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.exports_path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise TrustError(f"无法读取信任包序号记录 {self.exports_path}：{exc}") from None
        if not isinstance(data, dict):
            raise TrustError(f"信任包序号记录 {self.exports_path} 格式错误")
        return data

    def export_trust(
        self,
        path: Path,
        passphrase: str | Secret,
        *,
        filing_number: str | None = None,
        since: int | None = None,
        now: str | None = None,
    ) -> ExportResult:
        """Sign and write the institution's bundle (or, with ``since``, only what changed after
        bundle ``since``); the sequence counter is saved before the file is written.
        """
        now = now or utc_now()
        with self.register() as reg:
            key = reg.signing_key(filing_number, _dt.date.fromisoformat(now[:10]))
            private = self.keystore.load(key.kid, passphrase)
            keys = tuple(reg.institution_keys(key.filing_number))
            with trust_lock(self.home):  # every revocation of the register is exported, whatever was interrupted
                store = learn_revocations(self.home, self.trust, reg)
        f = key.filing_number
        log = self._export_log()
        issued = log.get(f, {})
        sequence = max((int(n) for n in issued), default=0) + 1
        if since is not None and str(since) not in issued:
            known = ", ".join(sorted(issued, key=int)) or "无"
            raise TrustError(f"本站没有导出过机构 {f} 的第{since}号信任包（已导出：{known}）")
        kids = {k.kid.hex() for k in keys}
        revocations = tuple(
            r for r in store.revocations
            if (r.scope == "certificate" and r.target.startswith(f)) or (r.scope == "key" and r.target in kids)
            or (r.scope == "batch" and r.numbers and all(n.startswith(f) for n in r.numbers))
        )  # fmt: skip
        if since is not None:
            cut = issued[str(since)]
            revocations = tuple(r for r in revocations if r.revoked_at >= cut)
        endorsements = tuple(e for e in store.endorsements if e.kid.hex() in kids)
        from certgen.bundle import BundleBody, make_bundle

        body = BundleBody(f, key.institution, now, sequence, since, keys, revocations, endorsements)
        data = make_bundle(body, private)
        log[f] = issued | {str(sequence): now}
        write_bytes_atomic(self.exports_path, json.dumps(log, ensure_ascii=False, indent=1).encode("utf-8"))
        try:
            write_bytes_atomic(path, data)
        except OSError as exc:
            raise TrustError(f"无法写入 {path}：{exc.strerror}") from None
        return ExportResult(path, sequence, since, hashlib.sha256(data).hexdigest(), len(keys), len(revocations))

    def read_bundle(self, path: Path) -> SignedBundle:
        """The signed bundle at ``path``, its signature checked (nothing is imported)."""
        try:
            data = read_regular(path, BUNDLE_MAX_BYTES)
        except InputRefused as exc:
            raise TrustError(f"无法读取信任包（未导入）：{exc}") from None
        from certgen.bundle import open_bundle

        return open_bundle(data, f"信任包 {path}")

    def set_stale_after(self, days: int) -> None:
        """Report an institution's revocation data older than ``days`` as old (``trust stale-after``)."""
        self.home.ensure()
        with trust_lock(self.home):
            self.trust.save(replace(self.trust.load(), stale_after_days=days))

    def import_trust(self, path: Path, *, accept_fingerprint: str | None = None) -> ImportResult:
        """Verify and merge the signed bundle at ``path`` (docs/trust.md has the rules)."""
        from certgen.bundle import apply_bundle

        signed = self.read_bundle(path)
        self.home.ensure()
        with trust_lock(self.home):
            result = apply_bundle(self.trust.load(), signed, accept_fingerprint=accept_fingerprint)
            self.trust.save(result.bundle)
        return result

    # --- the register ----------------------------------------------------------------------
    def find_certificates(self, text: str) -> list[CertificateState]:
        """Certificates whose number, name or ID number contains ``text``, each with its revocation.

        A certificate is revoked by its own revocation, its batch's, or its signing key's: the same
        lookup verify makes (``TrustBundle``), so the station and a verifier agree.
        """
        with self.register() as reg:
            found = reg.find(text)
            revocations = self.revocations_known(reg)
        states = []
        for item in found:
            states.append(CertificateState(item, revocations.revocation_of(item.number, item.kid)))
        return states

    # --- revocation ------------------------------------------------------------------------
    def revocations_known(self, reg: Register) -> TrustBundle:
        """Every revocation this station knows: the register's and the trust store's (a restore
        keeps those made after its backup in the trust store only), as a bundle to look them up in."""
        held = self.trust.load().revocations if self.trust.exists() else ()
        return TrustBundle(revocations=held).with_revocations(reg.revocations())

    def revoke(self, scope: Scope, target: str, reason: str, passphrase: str | Secret | None = None) -> Revocation:
        """Revoke in the register (audited) and in this station's trust store; then the automatic
        backup, if configured (``last_backup_note`` says how it went).

        With the ``passphrase`` the revocation's commit is signed (a checkpoint); without it the
        register reports it as unsigned until the next signed commit (``register sign``).
        """
        with self.register() as reg:
            if passphrase is not None:
                reg.signer = self.checkpoint_signer(reg, passphrase)
            with revoking(self.home, self.trust, reg):  # the trust store learns it even after a kill here
                revocation = reg.revoke(scope, target, reason)
        self.after_change(passphrase, f"吊销{target}")
        return revocation

    # --- the register's evidence (register_proof) -------------------------------------------
    def checkpoint_signer(
        self, reg: Register, passphrase: str | Secret, unlocked: dict[bytes, Ed25519PrivateKey] | None = None
    ) -> CheckpointSigner:
        """The newest unrevoked institution key this station holds, unlocked to sign checkpoints.

        ``unlocked``: keys the caller has already decrypted, by kid (used and added to: the key
        derivation is the slow part, about 0.3 s)."""
        revoked = {r.target for r in reg.revocations() if r.scope == "key"}
        held = set(self.keystore.kids())
        keys = [k for k in reversed(reg.institution_keys()) if k.kid in held]
        if not keys:
            raise RegisterError("本站没有机构私钥，无法签名登记库检查点")
        chosen = next((k for k in keys if k.kid_hex not in revoked), keys[0])
        from certgen.station.register_proof import CheckpointSigner

        unlocked = {} if unlocked is None else unlocked
        if chosen.kid not in unlocked:
            unlocked[chosen.kid] = self.keystore.load(chosen.kid, passphrase)
        return CheckpointSigner(chosen.kid_hex, unlocked[chosen.kid])

    def trusted_public_keys(self) -> dict[str, bytes]:
        """Kid (hex) -> public key of every key in the trust store: who may sign checkpoints."""
        return {k.kid_hex: k.public_key for k in self.trust.load().keys}

    def check_register(self, against: Path | None = None) -> list[str]:
        """``register check``: every problem of the register, and of it against a manifest/backup."""
        if not self.home.register_path.exists():
            raise ConfigError(f"登记库 {self.home.register_path} 不存在")
        trusted = self.trusted_public_keys() if self.trust.exists() else None
        with self.register() as reg:
            problems = reg.check(trusted)
            if against is not None:
                problems += reg.check_against(against, trusted)
        return problems

    def sign_register(self, passphrase: str | Secret) -> Checkpoint | None:
        """Sign the register's current head (after revocations made without the passphrase)."""
        with self.register() as reg:
            return reg.sign_head(self.checkpoint_signer(reg, passphrase))

    def after_change(self, passphrase: str | Secret | None, why: str) -> str | None:
        """The hook after every batch and revocation: the automatic backup (docs/backup.md)."""
        from certgen.station.backup import auto_backup

        self.last_backup_note = auto_backup(self.home, passphrase, why)
        return self.last_backup_note

    def after_run(self, passphrase: str | Secret | None) -> str | None:
        """The hook as an issuing run ends (holding the issuing lock): the automatic backup a
        revocation made while it issued had to leave for it (docs/backup.md), if one is owed."""
        from certgen.station.backup import owed_backup

        note = owed_backup(self.home, passphrase)
        if note is not None:
            self.last_backup_note = note
        return note


def describe_error(exc: BaseException) -> str:
    """The message to show a user for an error raised by certkiosk."""
    if isinstance(exc, CertkioskError):
        return str(exc)
    if is_disk_full(exc):
        where = getattr(exc, "filename", None)
        return f"磁盘已满{f'：无法写入 {where}' if where else ''}。请清理磁盘空间后重试"
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"文件操作失败{where}：{exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"
