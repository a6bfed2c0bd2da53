"""Link-key pools on disk: each pool's chunks, counters and the sender's lease mark; and the
fault a tester put on the link's channel, which outlives a restart of its transmitter as a bent
fibre would.

Layer: node domain, synchronous. ``node.pool_keeper`` decides when to write; this module only
says how. A spent or erased chunk is zeroed in place before its row is deleted.
"""

from __future__ import annotations

import json

from qkdnet.node.keystore.database import Database
from qkdnet.node.keystore.link_pool import ChunkRecord, PoolCounters

SCHEMA = """
create table if not exists link_chunks(  -- one row per block half still holding key
    link_id text not null,
    half text not null,
    frame_id integer not null,
    bits blob not null,                 -- packed; used bits are zero
    used blob not null,                 -- packed mask
    size integer not null,
    cursor integer not null,
    primary key (link_id, half, frame_id)
);
create table if not exists link_leases(   -- the sender's allocation mark: bits before it may have left
    link_id text primary key,
    frame_id integer not null,
    offset integer not null
);
create table if not exists link_impairments(  -- the transmitter's fault on the channel, if any
    link_id text primary key,
    fields text not null                -- JSON of node.impairment.Impairment's fields
);
create table if not exists link_counters(
    link_id text primary key,
    generated integer not null,
    consumed integer not null,
    discarded integer not null,
    reasons text not null
);
"""

SavedPool = tuple[list[ChunkRecord], PoolCounters]


class LinkPoolTable:
    def __init__(self, db: Database) -> None:
        self._db = db
        db.create(SCHEMA)

    def save_pool(self, link_id: str, rows: list[ChunkRecord], counters: PoolCounters) -> None:
        """Write a pool's changes (from ``LinkKeyPool.snapshot_changes``) in one transaction."""
        where = "where link_id = ? and half = ? and frame_id = ?"
        with self._db.transaction() as conn:
            for r in rows:
                if r.bits is None:
                    conn.execute(f"update link_chunks set bits = zeroblob(length(bits)) {where}",
                                 (link_id, r.half, r.frame_id))
                    conn.execute(f"delete from link_chunks {where}", (link_id, r.half, r.frame_id))
                    self._db.wants_truncate = True
                else:
                    conn.execute("insert or replace into link_chunks values (?,?,?,?,?,?,?)",
                                 (link_id, r.half, r.frame_id, r.bits, r.used, r.size, r.cursor))
            conn.execute("insert or replace into link_counters values (?,?,?,?,?)",
                         (link_id, counters.generated_bits, counters.consumed_bits, counters.discarded_bits,
                          json.dumps(counters.discard_reasons, sort_keys=True)))

    def load_pool(self, link_id: str) -> SavedPool | None:
        conn = self._db.conn
        row = conn.execute("select generated, consumed, discarded, reasons from link_counters where link_id = ?",
                           (link_id,)).fetchone()
        if row is None:
            return None
        chunks = [ChunkRecord(h, f, bytes(b), bytes(u), n, c) for h, f, b, u, n, c in conn.execute(
            "select half, frame_id, bits, used, size, cursor from link_chunks where link_id = ? order by frame_id",
            (link_id,))]
        return chunks, PoolCounters(row[0], row[1], row[2], json.loads(row[3]))

    def save_lease(self, link_id: str, frame_id: int, offset: int) -> None:
        with self._db.transaction() as conn:
            conn.execute("insert or replace into link_leases values (?,?,?)", (link_id, frame_id, offset))

    def load_lease(self, link_id: str) -> tuple[int, int] | None:
        row = self._db.conn.execute("select frame_id, offset from link_leases where link_id = ?",
                                    (link_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def erase_all(self) -> None:
        """Every pool, lease and fault of every link gone, the key zeroed first (a fresh start)."""
        with self._db.transaction() as conn:
            conn.execute("update link_chunks set bits = zeroblob(length(bits))")
            for table in ("link_chunks", "link_leases", "link_counters", "link_impairments"):
                conn.execute(f"delete from {table}")
            self._db.wants_truncate = True

    def save_impairment(self, link_id: str, fields: dict | None) -> None:
        """``None``: the channel is healthy again (the row goes)."""
        with self._db.transaction() as conn:
            if fields is None:
                conn.execute("delete from link_impairments where link_id = ?", (link_id,))
            else:
                conn.execute("insert or replace into link_impairments values (?,?)",
                             (link_id, json.dumps(fields, sort_keys=True)))

    def load_impairment(self, link_id: str) -> dict | None:
        row = self._db.conn.execute("select fields from link_impairments where link_id = ?", (link_id,)).fetchone()
        return json.loads(row[0]) if row else None
