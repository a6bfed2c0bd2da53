"""The relay outbox on disk: key IDs a source sent but has not yet committed (presumed abort).

Layer: node domain, synchronous. Rows are written before a relay's keys leave the source and
deleted by the source's own commit of those keys (``settle``, inside that same transaction), or
by ``close`` once the destination confirmed their withdrawal. See ``node.relay.outbox``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from qkdnet.node.keystore.audit import AuditLog
from qkdnet.node.keystore.database import Database
from qkdnet.node.keystore.lifecycle import KeyState

SCHEMA = """
create table if not exists relay_outbox(
    key_id text primary key,
    paths text not null,                -- JSON: the routes the keys took, for the abort
    created_at real not null
);
"""

Paths = list[list[str]]


class RelayOutboxTable:
    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], float]) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        db.create(SCHEMA)

    def open(self, key_ids: list[str], paths: Paths) -> None:
        """Source, before any key leaves: these IDs are in flight until committed or aborted."""
        now, text = self._clock(), json.dumps(paths)
        with self._db.transaction() as conn:
            conn.executemany("insert into relay_outbox values (?,?,?)", [(k, text, now) for k in key_ids])

    def settle(self, key_ids: list[str]) -> None:
        """The source committed these keys: they are no longer in flight (caller's transaction)."""
        self._db.conn.executemany("delete from relay_outbox where key_id = ?", [(k,) for k in key_ids])

    def unsettled(self) -> list[tuple[list[str], Paths]]:
        """Key IDs left in flight (by their routes): relays that failed or a crash interrupted."""
        groups: dict[str, list[str]] = {}
        for key_id, paths in self._db.conn.execute("select key_id, paths from relay_outbox order by rowid"):
            groups.setdefault(paths, []).append(key_id)
        return [(ids, json.loads(paths)) for paths, ids in groups.items()]

    def unsettled_among(self, key_ids: list[str]) -> list[str]:
        found = {r[0] for r in self._db.select_in("select key_id from relay_outbox where key_id in ({})", key_ids)}
        return [k for k in key_ids if k in found]

    def close(self, key_ids: list[str], reason: str) -> None:
        """Source: the destination has withdrawn these keys; they are settled as revoked."""
        now = self._clock()
        with self._db.transaction():
            self.settle(key_ids)
            self._audit.append(now, [(KeyState.REVOKED.value, k, {"role": "source", "reason": reason})
                                     for k in key_ids])
