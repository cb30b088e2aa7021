"""The register's evidence: every row that matters is covered by the audit chain, and the chain's
head is signed with the institution's Ed25519 key in a *checkpoint* at each commit that issues,
revokes or changes a key.

- Row coverage: each audit entry carries, under ``detail["rows"]``, the SHA-256 of every covered
  row it created or changed, as the row stood after the change (``None`` for a deleted row).
  Recomputing a table row's digest and comparing it with the last one the chain recorded finds an
  edited, inserted or deleted row in any covered table.
- Checkpoints: ``(seq, head, counts, at, kid)`` signed with Ed25519 over a canonical JSON text
  with its own format tag (it can never be mistaken for a certificate's COSE signature). Anyone can
  recompute a SHA-256 chain; nobody without the private key can sign the recomputed head.
- A checkpoint also leaves the station in each batch's ``manifest.json``; ``check_against`` proves
  the register still holds the chain that checkpoint vouched for (truncation, emptying).

This module holds only functions over an open SQLite connection, so the register's own code
keeps one hook per change (``rows=`` on its audit entries, a signer on the connection).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CHECKPOINT_FORMAT = "certkiosk-register-checkpoint/1"

COVERED: dict[str, tuple[str, ...]] = {
    "institutions": ("filing_number",),
    "keys": ("kid",),
    "serials": ("filing_number", "year", "level"),
    "certificates": ("number",),
    "revocations": ("scope", "target"),
    "key_certificates": ("kid",),
    "certificate_forms": ("number", "form"),
    "reissues": ("number",),
    "print_serials": ("serial",),
}
"""Every table whose rows the chain covers, with its primary key columns."""

SIGNED_ACTIONS = frozenset({"institution.add", "key.new", "key.retire", "key.x509", "certificate.issue", "revoke"})
"""Audit actions that must be followed by a signed checkpoint (what verifiers rely on)."""

COUNTED_ACTIONS = {"certificate.issue": "issued", "revoke": "revoked", "certificate.void": "voided"}

PROOF_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    head TEXT NOT NULL,
    counts TEXT NOT NULL,
    at TEXT NOT NULL,
    kid TEXT NOT NULL,
    signature TEXT NOT NULL
);
"""

RowRef = tuple[str, tuple[Any, ...]]
"""A covered row: its table and its primary key values."""


def _canonical(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def row_id(table: str, key: Iterable[Any]) -> str:
    """The name of a covered row in the chain, e.g. ``certificates:["Y0000..."]``."""
    return f"{table}:{_canonical(list(key))}"


def _digest_of(table: str, columns: Iterable[str], values: Iterable[Any]) -> str:
    material = _canonical([table, dict(zip(columns, values, strict=True))])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def row_digests(db: sqlite3.Connection, refs: Iterable[RowRef]) -> dict[str, str | None]:
    """The current digest of each row (``None`` if it does not exist), by :func:`row_id`."""
    out: dict[str, str | None] = {}
    for table, key in refs:
        columns = COVERED[table]
        where = " AND ".join(f"{c} = ?" for c in columns)
        cur = db.execute(f"SELECT * FROM {table} WHERE {where}", tuple(key))
        row = cur.fetchone()
        names = [d[0] for d in cur.description]
        out[row_id(table, key)] = _digest_of(table, names, row) if row is not None else None
    return out


def returned_digest(table: str, cur: sqlite3.Cursor, row: Sequence[Any]) -> dict[str, str | None]:
    """The digest of a covered row as a statement's ``RETURNING *`` gave it (the same columns and
    values as ``SELECT *`` after the change, without reading the row again), by :func:`row_id`."""
    names = [d[0] for d in cur.description]
    key = [row[names.index(c)] for c in COVERED[table]]
    return {row_id(table, key): _digest_of(table, names, row)}


def all_row_digests(db: sqlite3.Connection) -> dict[str, str]:
    """The digest of every covered row of every covered table."""
    out: dict[str, str] = {}
    for table, columns in COVERED.items():
        cur = db.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cur.description]
        index = [names.index(c) for c in columns]
        for row in cur:
            out[row_id(table, [row[i] for i in index])] = _digest_of(table, names, row)
    return out


@dataclass(frozen=True)
class CheckpointSigner:
    """The institution key that signs the register's checkpoints (already unlocked for issuing)."""

    kid: str
    """The key id in hex."""
    private_key: Ed25519PrivateKey = field(repr=False)
    """The unlocked private key; never printed."""


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the audit chain had ``head`` as the hash of its entry ``seq``."""

    seq: int
    """The last audit entry covered."""
    head: str
    """That entry's chain hash (hex)."""
    counts: dict[str, int]
    """Entries, issued, revoked and voided up to ``seq`` (recomputed from the chain by check)."""
    at: str
    """When it was signed (UTC)."""
    kid: str
    """The signing key's id (hex)."""
    signature: str
    """Ed25519 signature (hex) over :meth:`message`."""

    def message(self) -> bytes:
        doc = {"format": CHECKPOINT_FORMAT, "seq": self.seq, "head": self.head, "counts": self.counts,
               "at": self.at, "kid": self.kid}  # fmt: skip
        return _canonical(doc).encode("utf-8")

    def verify(self, public_key: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(bytes.fromhex(self.signature), self.message())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "seq": self.seq, "head": self.head, "counts": self.counts,
                "at": self.at, "kid": self.kid, "signature": self.signature}  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """Read one; ValueError naming what is wrong."""
        try:
            if data.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            counts = {str(k): int(v) for k, v in dict(data["counts"]).items()}
            return cls(int(data["seq"]), str(data["head"]), counts, str(data["at"]), str(data["kid"]),
                       str(data["signature"]))  # fmt: skip
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"检查点格式错误：{exc}") from None


def _counts_since(db: sqlite3.Connection, after: int, upto: int) -> Counter[str]:
    rows = db.execute(
        "SELECT action, count(*) FROM audit WHERE seq > ? AND seq <= ? GROUP BY action", (after, upto)
    ).fetchall()
    counts: Counter[str] = Counter()
    for action, n in rows:
        if action in COUNTED_ACTIONS:
            counts[COUNTED_ACTIONS[action]] += n
    return counts


def latest_checkpoint(db: sqlite3.Connection) -> Checkpoint | None:
    row = db.execute(
        "SELECT seq, head, counts, at, kid, signature FROM checkpoints ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    seq, head, counts, at, kid, signature = row
    try:
        parsed = {str(k): int(v) for k, v in json.loads(counts).items()}
    except (ValueError, AttributeError, TypeError):
        parsed = {}
    return Checkpoint(seq, head, parsed, at, kid, signature)


def write_checkpoint(
    db: sqlite3.Connection, signer: CheckpointSigner, at: str, last: tuple[int, str] | None = None
) -> Checkpoint | None:
    """Sign the chain's current head and store the checkpoint (inside the caller's transaction);
    ``last``: the chain's last ``(seq, hash)`` when the caller's transaction wrote it (else read)."""
    row = last or db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return None
    seq, head = row
    previous = latest_checkpoint(db)
    if previous is not None and previous.seq == seq:
        return previous
    counts: Counter[str] = Counter({name: 0 for name in COUNTED_ACTIONS.values()})
    after = 0
    if previous is not None and previous.counts:
        counts.update({k: v for k, v in previous.counts.items() if k != "entries"})
        after = previous.seq
    counts.update(_counts_since(db, after, seq))
    values = dict(counts) | {"entries": seq}
    unsigned = Checkpoint(seq, head, values, at, signer.kid, "")
    signature = signer.private_key.sign(unsigned.message()).hex()
    db.execute(
        "INSERT INTO checkpoints (seq, head, counts, at, kid, signature) VALUES (?,?,?,?,?,?)",
        (seq, head, _canonical(values), at, signer.kid, signature),
    )
    return Checkpoint(seq, head, values, at, signer.kid, signature)


def check_proof(db: sqlite3.Connection, trusted: Mapping[str, bytes]) -> list[str]:
    """Problems (in Chinese) with row coverage, the latest checkpoint and the serial counters.

    ``trusted`` maps a kid (hex) to the raw public key that may sign checkpoints. The audit chain's
    own hashes are checked by :meth:`certgen.station.register.Register.check`.
    """
    problems: list[str] = []
    recorded: dict[str, str | None] = {}
    last_signed_action = 0
    hashes: dict[int, str] = {}
    for seq, action, detail, digest in db.execute("SELECT seq, action, detail, hash FROM audit ORDER BY seq"):
        hashes[seq] = digest
        if action in SIGNED_ACTIONS:
            last_signed_action = seq
        try:
            facts = json.loads(detail)
        except ValueError:
            continue
        rows = facts.get("rows") if isinstance(facts, dict) else None
        if isinstance(rows, dict):
            recorded.update(rows)

    current = all_row_digests(db)
    for rid, digest in sorted(current.items()):
        if rid not in recorded:
            problems.append(f"登记表行 {rid} 不在审计链中：可能是被直接插入的")
        elif recorded[rid] != digest:
            problems.append(f"登记表行 {rid} 与审计链记录的内容不符：记录被修改")
    for rid in sorted(r for r, d in recorded.items() if d is not None and r not in current):
        problems.append(f"登记表行 {rid} 在审计链中存在，但登记库中没有：记录被删除")

    checkpoint = latest_checkpoint(db)
    if checkpoint is None:
        if last_signed_action:
            problems.append("登记库没有经机构密钥签名的检查点：发证、吊销或密钥记录无法证明未被改写")
    else:
        problems += _check_checkpoint(db, checkpoint, trusted, hashes)
        if last_signed_action > checkpoint.seq:
            problems.append(
                f"审计日志第{checkpoint.seq}条之后有发证、吊销或密钥变更未经签名确认（最后签名的检查点为第"
                f"{checkpoint.seq}条）：可能是被追加的记录"
            )

    for filing, year, level, highest in db.execute(
        "SELECT filing_number, year, level, max(serial) FROM certificates GROUP BY filing_number, year, level"
    ).fetchall():
        row = db.execute(
            "SELECT last_serial FROM serials WHERE filing_number = ? AND year = ? AND level = ?", (filing, year, level)
        ).fetchone()
        if row is None or row[0] < highest:
            problems.append(
                f"机构 {filing} {year}年{level}级的序列码计数器为{row[0] if row else '（缺失）'}，"
                f"低于已用的最大序列码{highest}：计数器被改动，继续发证会重复编号"
            )
    return problems


def _check_checkpoint(
    db: sqlite3.Connection, checkpoint: Checkpoint, trusted: Mapping[str, bytes], hashes: Mapping[int, str]
) -> list[str]:
    problems = []
    where = f"检查点（第{checkpoint.seq}条，{checkpoint.at}）"
    public = trusted.get(checkpoint.kid)
    if public is None:
        problems.append(f"{where}由本站不信任的密钥 {checkpoint.kid} 签名")
    elif not checkpoint.verify(public):
        problems.append(f"{where}的签名无效：检查点被伪造或修改")
    if hashes.get(checkpoint.seq) != checkpoint.head:
        problems.append(f"{where}签名的链头与审计日志不符：审计日志在签名后被改写")
    expected = dict(_counts_since(db, 0, checkpoint.seq)) | {"entries": checkpoint.seq}
    if {k: v for k, v in checkpoint.counts.items() if v} != {k: v for k, v in expected.items() if v}:
        problems.append(f"{where}记录的数量 {checkpoint.counts} 与审计日志 {expected} 不符")
    return problems


def load_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint a batch manifest (JSON) or a register backup (SQLite) carries; ValueError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"无法读取 {path}：{exc.strerror}") from None
    if data.startswith(b"SQLite format 3\x00"):
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                found = latest_checkpoint(db)
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{path} 不是可读的登记库备份：{exc}") from None
        if found is None:
            raise ValueError(f"登记库备份 {path} 中没有签名的检查点")
        return found
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError(f"{path} 既不是批次清单（manifest.json）也不是登记库备份") from None
    if not isinstance(doc, dict) or "checkpoint" not in doc:
        raise ValueError(f"{path} 中没有登记库检查点（应为批次的 manifest.json 或登记库备份）")
    return Checkpoint.from_json(doc["checkpoint"])


def check_against(db: sqlite3.Connection, checkpoint: Checkpoint, trusted: Mapping[str, bytes]) -> list[str]:
    """Problems if the register no longer holds the chain ``checkpoint`` (from outside) vouched for."""
    problems = []
    where = f"外部检查点（第{checkpoint.seq}条，{checkpoint.at}）"
    public = trusted.get(checkpoint.kid)
    if public is None:
        return [f"{where}由本站不信任的密钥 {checkpoint.kid} 签名，无法作为证据"]
    if not checkpoint.verify(public):
        return [f"{where}的签名无效：该清单或备份被修改"]
    row = db.execute("SELECT hash FROM audit WHERE seq = ?", (checkpoint.seq,)).fetchone()
    last = db.execute("SELECT max(seq) FROM audit").fetchone()[0] or 0
    if row is None:
        problems.append(
            f"登记库只有{last}条审计记录，不再包含{where}所证明的第{checkpoint.seq}条：登记库被清空、截断或替换"
        )
    elif row[0] != checkpoint.head:
        problems.append(f"登记库第{checkpoint.seq}条审计记录与{where}不符：登记库被改写或替换")
    return problems
