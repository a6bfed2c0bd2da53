"""The hash-chained audit log of end-to-end keys: every lifecycle event, never key material.

Layer: node domain, synchronous (runs inside the caller's transaction). Each entry hashes its
predecessor, so editing, dropping or reordering any entry breaks the chain at that point.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from node.keystore.database import Database

GENESIS = "0" * 64

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


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db
        db.create(SCHEMA)
        row = db.conn.execute("select seq, hash from audit order by seq desc limit 1").fetchone()
        self._last_seq: int = row[0] if row else 0
        self._last_hash: str = row[1] if row else GENESIS
        db.keep_in_step(self)

    def snapshot(self) -> tuple[int, str]:
        return self._last_seq, self._last_hash

    def restore(self, saved: tuple[int, str]) -> None:
        self._last_seq, self._last_hash = saved

    def append(self, now: float, entries: list[Entry]) -> None:
        """Append entries to the chain (call inside a transaction)."""
        rows = []
        seq, prev = self._last_seq, self._last_hash
        for event, key_id, detail in entries:
            seq += 1
            text = json.dumps(detail, sort_keys=True, separators=(",", ":"))
            digest = _entry_hash(prev, seq, now, event, key_id, text)
            rows.append((seq, now, event, key_id, text, prev, digest))
            prev = digest
        self._db.conn.executemany("insert into audit values (?,?,?,?,?,?,?)", rows)
        self._last_seq, self._last_hash = seq, prev

    def entries(self) -> list[dict[str, Any]]:
        rows = self._db.conn.execute("select seq, at, event, key_id, detail, prev, hash from audit order by seq")
        return [dict(seq=r[0], at=r[1], event=r[2], key_id=r[3], detail=json.loads(r[4]), prev=r[5], hash=r[6])
                for r in rows]

    def verify(self) -> int | None:
        """The sequence number of the first entry that breaks the chain, or None if intact."""
        prev = GENESIS
        for seq, at, event, key_id, detail, stored_prev, stored_hash in self._db.conn.execute(
                "select seq, at, event, key_id, detail, prev, hash from audit order by seq"):
            if stored_prev != prev or stored_hash != _entry_hash(prev, seq, at, event, key_id, detail):
                return int(seq)
            prev = stored_hash
        return None


def _entry_hash(prev: str, seq: int, at: float, event: str, key_id: str, detail: str) -> str:
    body = json.dumps([prev, seq, repr(at), event, key_id, detail], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()
