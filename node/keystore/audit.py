"""The tamper-evident audit log of end-to-end keys: every lifecycle event, never key material.

Layer: node domain, synchronous (runs inside the caller's transaction). Each entry carries an
HMAC-SHA256, under the node's own audit key, of its content and its predecessor's MAC: editing,
dropping or reordering an entry breaks the chain there, and without the key nobody can build a
new chain that verifies. The key lives in a file of its own beside the database (``.audit-key``,
mode 0600), never in it. The chain's head is written to an anchor file (``.audit-anchor``,
MAC'd too) after commits, at most once a second and at close, so that cutting entries off the
tail is detected as well (all but the last second's, after a crash).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qkdnet.node.keystore.database import Database

GENESIS = "0" * 64
KEY_BYTES = 32

SCHEMA = """
create table if not exists audit(
    seq integer primary key,
    at real not null,
    event text not null,
    key_id text not null,
    detail text not null,
    prev text not null,
    hash text not null
);
"""

Entry = tuple[str, str, dict]  # (event, key ID, detail)


@dataclass(frozen=True)
class AuditProblem:
    seq: int  # the first entry that does not verify (for a cut tail: the first one missing)
    what: str

    def __str__(self) -> str:
        return f"audit entry {self.seq}: {self.what}"


def key_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".audit-key")


def anchor_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".audit-anchor")


def load_or_create_key(db_path: Path) -> bytes:
    """The node's audit key: made once from the OS CSPRNG, kept beside the database."""
    path = key_path(db_path)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(KEY_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
            out.flush()
            os.fsync(out.fileno())
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path}: an audit key is {KEY_BYTES} bytes")
    return key


class AuditLog:
    def __init__(self, db: Database, key: bytes) -> None:
        self._db = db
        self._key = key
        db.create(SCHEMA)
        row = db.conn.execute("select seq, hash from audit order by seq desc limit 1").fetchone()
        self._last_seq: int = row[0] if row else 0
        self._last_hash: str = row[1] if row else GENESIS
        self._anchored = -1
        self.event_counts: dict[str, int] = {}  # events appended since this process opened the log
        db.keep_in_step(self)

    def snapshot(self) -> tuple[int, str, dict[str, int]]:
        return self._last_seq, self._last_hash, dict(self.event_counts)

    def restore(self, saved: tuple[int, str, dict[str, int]]) -> None:
        self._last_seq, self._last_hash, self.event_counts = saved

    def append(self, now: float, entries: list[Entry]) -> None:
        """Append entries to the chain (call inside a transaction)."""
        rows = []
        seq, prev = self._last_seq, self._last_hash
        for event, key_id, detail in entries:
            seq += 1
            text = json.dumps(detail, sort_keys=True, separators=(",", ":"))
            digest = _entry_mac(self._key, prev, seq, now, event, key_id, text)
            rows.append((seq, now, event, key_id, text, prev, digest))
            prev = digest
            self.event_counts[event] = self.event_counts.get(event, 0) + 1
        self._db.conn.executemany("insert into audit values (?,?,?,?,?,?,?)", rows)
        self._last_seq, self._last_hash = seq, prev

    def anchor(self) -> None:
        """Record the committed head outside the database (call only between transactions)."""
        if self._anchored == self._last_seq:
            return
        _write_anchor(self._key, anchor_path(self._db.path), self._last_seq, self._last_hash)
        self._anchored = self._last_seq

    def entries(self) -> list[dict[str, Any]]:
        rows = self._db.conn.execute("select seq, at, event, key_id, detail, prev, hash from audit order by seq")
        return [dict(seq=r[0], at=r[1], event=r[2], key_id=r[3], detail=json.loads(r[4]), prev=r[5], hash=r[6])
                for r in rows]

    def check(self) -> AuditProblem | None:
        """The first problem with the chain and its anchor, or None if intact."""
        return _check(self._db.conn, self._key, anchor_path(self._db.path))

    def verify(self) -> int | None:
        """The sequence number of the first entry that breaks the chain, or None if intact."""
        problem = self.check()
        return None if problem is None else problem.seq


def verify_file(db_path: Path) -> tuple[int, AuditProblem | None]:
    """Check a node's audit log on disk without changing anything: (entries, first problem)."""
    if not db_path.exists():
        raise FileNotFoundError(db_path)
    if not key_path(db_path).exists():
        raise ValueError(f"no audit key beside it ({key_path(db_path).name})")
    key = key_path(db_path).read_bytes()
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        count = db.execute("select count(*) from audit").fetchone()[0]
        return count, _check(db, key, anchor_path(db_path))
    finally:
        db.close()


def _check(conn: sqlite3.Connection, key: bytes, anchor: Path) -> AuditProblem | None:
    prev, last = GENESIS, 0
    for seq, at, event, key_id, detail, stored_prev, stored_hash in conn.execute(
            "select seq, at, event, key_id, detail, prev, hash from audit order by seq"):
        if seq != last + 1:
            return AuditProblem(last + 1, "missing (the sequence jumps)")
        if stored_prev != prev or not hmac.compare_digest(
                stored_hash, _entry_mac(key, prev, seq, at, event, key_id, detail)):
            return AuditProblem(int(seq), "edited, re-chained or out of order (its MAC does not verify)")
        prev, last = stored_hash, seq
    head = _read_anchor(key, anchor)
    if isinstance(head, str):
        return AuditProblem(last + 1, f"the anchor file is {head}")
    if head is not None:
        anchored_seq, anchored_hash = head
        if anchored_seq > last:
            return AuditProblem(last + 1, f"missing: the log ends at {last}, the anchor names {anchored_seq}")
        row = conn.execute("select hash from audit where seq = ?", (anchored_seq,)).fetchone()
        if anchored_seq and (row is None or not hmac.compare_digest(row[0], anchored_hash)):
            return AuditProblem(anchored_seq, "differs from the anchored head")
    return None


def _entry_mac(key: bytes, prev: str, seq: int, at: float, event: str, key_id: str, detail: str) -> str:
    body = json.dumps([prev, seq, repr(at), event, key_id, detail], separators=(",", ":"))
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _write_anchor(key: bytes, path: Path, seq: int, head: str) -> None:
    text = f"{seq} {head}"
    mac = hmac.new(key, b"anchor " + text.encode(), hashlib.sha256).hexdigest()
    # A temporary name of its own per process: two processes holding the store (a node and a
    # tool reading it) never rename each other's half-written file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"{text} {mac}\n")
    tmp.replace(path)


def _read_anchor(key: bytes, path: Path) -> tuple[int, str] | str | None:
    """The anchored (seq, head); None if there is no anchor yet; a problem's text otherwise."""
    try:
        seq_text, head, mac = path.read_text().split()
        seq = int(seq_text)
    except FileNotFoundError:
        return None
    except ValueError:
        return "malformed"
    expected = hmac.new(key, f"anchor {seq_text} {head}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected):
        return "not signed with this node's audit key"
    return seq, head
