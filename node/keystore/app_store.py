"""Durable store of end-to-end keys with a hash-chained audit log (SQLite, WAL, synchronous).

Layer: node domain, synchronous and single-threaded by design: ``AsyncKeyStore`` runs every
call on one worker thread, each call one transaction, so a SIGKILL at any moment leaves either
the whole change or none of it. Every state change goes through the lifecycle rules and writes
an audit entry in the same transaction. The audit log never holds key material: only key IDs,
events and metadata, each entry hashing its predecessor so any edit breaks the chain.
Destroyed material is overwritten in place before its row drops it (and ``secure_delete``
zeroes freed pages).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from node.keystore.link_pool import ChunkRecord, PoolCounters
from node.keystore.lifecycle import KeyState, check_transition

GENESIS = "0" * 64
CHECKPOINT_EVERY_S = 1.0  # AsyncKeyStore: how often its own thread copies the log into the database
T = TypeVar("T")

SCHEMA = """
create table if not exists app_keys(
    key_id text primary key,
    peer text not null,          -- the other KME holding the same key
    master_sae text not null,    -- '' for keys relayed on the orchestrator's order
    slave_sae text not null,
    role text not null,          -- 'source' or 'destination'
    bits integer not null,
    digest blob not null,        -- SHA-256 of the key: lets ends be compared without the key
    material blob,               -- NULL once destroyed
    state text not null,
    created_at real not null,
    expires_at real             -- NULL: no expiry
);
create index if not exists app_keys_waiting on app_keys(state, slave_sae, master_sae);
create table if not exists audit(
    seq integer primary key,
    at real not null,
    event text not null,
    key_id text not null,
    detail text not null,
    prev text not null,
    hash text not null
);
create table if not exists relay_outbox(  -- source: keys sent, not yet committed here (presumed abort)
    key_id text primary key,
    paths text not null,                -- JSON: the routes the keys took, for the abort
    created_at real not null
);
create table if not exists link_chunks(  -- link-key pools: one row per block half still holding key
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
create table if not exists link_counters(
    link_id text primary key,
    generated integer not null,
    consumed integer not null,
    discarded integer not null,
    reasons text not null
);
"""


class StoreError(Exception):
    """A request the store refuses; nothing was changed."""


class StoreFull(StoreError):
    """Taking these keys would exceed the store's maximum key count."""


class KeyNotAvailable(StoreError):
    """A key ID that is unknown, not the caller's, or no longer deliverable."""


@dataclass(frozen=True)
class NewKey:
    key_id: str
    peer: str
    material: bytes = field(repr=False)
    master_sae: str = ""
    slave_sae: str = ""


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    peer: str
    master_sae: str
    slave_sae: str
    role: str
    bits: int
    digest: bytes
    state: str


class KeyStore:
    def __init__(self, path: Path | str, max_keys: int = 1_000_000, clock: Callable[[], float] = time.time) -> None:
        self.max_keys = max_keys
        self._clock = clock
        self.path = Path(path)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=full")
        self._db.execute("pragma secure_delete=on")
        self._db.executescript(SCHEMA)
        row = self._db.execute("select seq, hash from audit order by seq desc limit 1").fetchone()
        self._last_seq, self._last_hash = row if row else (0, GENESIS)
        # Keys held undelivered, kept here so the max-count check per insert is O(1), not a scan.
        self._held = self._db.execute("select count(*) from app_keys where state = ?",
                                      (KeyState.RELAYED.value,)).fetchone()[0]
        self._in_group = False

    def group(self, calls: list[tuple[Callable[..., Any], tuple]]) -> list[tuple[bool, Any]]:
        """Several calls in one transaction, so one synchronous commit covers them all.

        Each call runs in its own savepoint: one that fails is rolled back alone and its
        exception returned in its place. If the commit itself fails, it raises for all.
        """
        results: list[tuple[bool, Any]] = []
        with self._transaction():
            self._in_group = True
            try:
                for fn, args in calls:
                    try:
                        results.append((True, fn(*args)))
                    except Exception as exc:  # the caller gets it back
                        results.append((False, exc))
            finally:
                self._in_group = False
        return results

    def close(self) -> None:
        self._db.close()

    # -- writes (one transaction each) --------------------------------------------------
    def add(self, keys: list[NewKey], role: str, ttl_s: float | None = None) -> None:
        """Keys arriving by relay (destination) or just relayed (source): state ``relayed``.

        ``ttl_s`` applies to keys for SAEs; keys relayed on the orchestrator's order do not expire.
        """
        if role not in ("source", "destination"):
            raise ValueError("role is 'source' or 'destination'")
        now = self._clock()
        with self._transaction():
            self._insert(keys, role, now, ttl_s)

    def add_delivered(self, keys: list[NewKey]) -> None:
        """Source KME of an ETSI request: the keys were relayed and go to the master SAE now.

        The source keeps no copy, so the material is never written here: the row records the
        key's digest and its whole lifecycle (generated, relayed, delivered, destroyed) at once.
        """
        for old, new in ((KeyState.RELAYED, KeyState.DELIVERED), (KeyState.DELIVERED, KeyState.DESTROYED)):
            check_transition("(delivered at source)", old, new)
        now = self._clock()
        with self._transaction():
            try:
                self._db.executemany(
                    "insert into app_keys values (?,?,?,?,'source',?,?,null,?,?,null)",
                    [(k.key_id, k.peer, k.master_sae, k.slave_sae, 8 * len(k.material),
                      hashlib.sha256(k.material).digest(), KeyState.DESTROYED.value, now) for k in keys])
            except sqlite3.IntegrityError:
                raise StoreError("a key ID is already held") from None
            self._close_outbox(keys)
            self._audit_many(now, [entry for k in keys for entry in _arrival_entries(k, "source") + [
                (KeyState.DELIVERED.value, k.key_id, {"SAE": k.master_sae}),
                (KeyState.DESTROYED.value, k.key_id, {})]])

    # -- presumed abort of relays (see node.relay_outbox) -------------------------------
    def open_relays(self, key_ids: list[str], paths: list[list[str]]) -> None:
        """Source, before any key leaves: these IDs are in flight until committed or aborted."""
        now, text = self._clock(), json.dumps(paths)
        with self._transaction():
            self._db.executemany("insert into relay_outbox values (?,?,?)", [(k, text, now) for k in key_ids])

    def unsettled_relays(self) -> list[tuple[list[str], list[list[str]]]]:
        """Key IDs left in flight (by their routes): relays that failed or a crash interrupted."""
        groups: dict[str, list[str]] = {}
        for key_id, paths in self._db.execute("select key_id, paths from relay_outbox order by rowid"):
            groups.setdefault(paths, []).append(key_id)
        return [(ids, json.loads(paths)) for paths, ids in groups.items()]

    def unsettled_among(self, key_ids: list[str]) -> list[str]:
        found = {r[0] for r in self._select_in("select key_id from relay_outbox where key_id in ({})", key_ids)}
        return [k for k in key_ids if k in found]

    def close_relays(self, key_ids: list[str], reason: str) -> None:
        """Source: the destination has withdrawn these keys; they are settled as revoked."""
        now = self._clock()
        with self._transaction():
            self._db.executemany("delete from relay_outbox where key_id = ?", [(k,) for k in key_ids])
            self._audit_many(now, [(KeyState.REVOKED.value, k, {"role": "source", "reason": reason}) for k in key_ids])

    def withdraw_arrivals(self, key_ids: list[str], source: str, reason: str) -> int:
        """Destination: the source aborted these keys. Held ones are revoked and overwritten;
        ones not (yet) here get a tombstone row, so a late relay of them is refused. Returns
        how many held keys were withdrawn. Keys of another source are left alone."""
        now, key_ids = self._clock(), list(dict.fromkeys(key_ids))
        with self._transaction():
            rows = {r[0]: r[1:] for r in self._select_in(
                "select key_id, peer, role, state from app_keys where key_id in ({})", key_ids)}
            held = [k for k in key_ids if rows.get(k) == (source, "destination", KeyState.RELAYED.value)]
            absent = [k for k in key_ids if k not in rows]
            self._move_many(held, KeyState.RELAYED, KeyState.REVOKED, now, [{"reason": reason}] * len(held))
            self._destroy_many(held, KeyState.REVOKED, now)
            self._db.executemany("insert into app_keys values (?,?,'','','destination',0,x'',null,?,?,null)",
                                 [(k, source, KeyState.DESTROYED.value, now) for k in absent])
            self._audit_many(now, [(KeyState.REVOKED.value, k, {"reason": reason, "before_arrival": True})
                                   for k in absent])
            return len(held)

    def _close_outbox(self, keys: list[NewKey]) -> None:
        self._db.executemany("delete from relay_outbox where key_id = ?", [(k.key_id,) for k in keys])

    def _insert(self, keys: list[NewKey], role: str, now: float, ttl_s: float | None) -> None:
        if self._held + len(keys) > self.max_keys:
            raise StoreFull(f"key store holds {self._held} keys; maximum is {self.max_keys}")
        try:
            self._db.executemany(
                "insert into app_keys values (?,?,?,?,?,?,?,?,?,?,?)",
                [(k.key_id, k.peer, k.master_sae, k.slave_sae, role, 8 * len(k.material),
                  hashlib.sha256(k.material).digest(), k.material, KeyState.RELAYED.value, now,
                  None if ttl_s is None or not k.master_sae else now + ttl_s) for k in keys])
        except sqlite3.IntegrityError:
            raise StoreError("a key ID is already held") from None
        self._held += len(keys)
        if role == "source":
            self._close_outbox(keys)
        self._audit_many(now, [entry for k in keys for entry in _arrival_entries(k, role)])

    def save_link_pool(self, link_id: str, rows: list[ChunkRecord], counters: PoolCounters) -> None:
        """Write a pool's changes (from ``LinkKeyPool.snapshot_changes``) in one transaction."""
        with self._transaction():
            for r in rows:
                if r.bits is None:
                    # Zero the blobs in place first, as for end-to-end keys (secure_delete does the pages).
                    self._db.execute("update link_chunks set bits = zeroblob(length(bits)) where link_id = ? and "
                                     "half = ? and frame_id = ?", (link_id, r.half, r.frame_id))
                    self._db.execute("delete from link_chunks where link_id = ? and half = ? and frame_id = ?",
                                     (link_id, r.half, r.frame_id))
                else:
                    self._db.execute("insert or replace into link_chunks values (?,?,?,?,?,?,?)",
                                     (link_id, r.half, r.frame_id, r.bits, r.used, r.size, r.cursor))
            self._db.execute("insert or replace into link_counters values (?,?,?,?,?)",
                             (link_id, counters.generated_bits, counters.consumed_bits, counters.discarded_bits,
                              json.dumps(counters.discard_reasons, sort_keys=True)))

    def save_lease(self, link_id: str, frame_id: int, offset: int) -> None:
        with self._transaction():
            self._db.execute("insert or replace into link_leases values (?,?,?)", (link_id, frame_id, offset))

    def load_lease(self, link_id: str) -> tuple[int, int] | None:
        row = self._db.execute("select frame_id, offset from link_leases where link_id = ?", (link_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def load_link_pool(self, link_id: str) -> tuple[list[ChunkRecord], PoolCounters] | None:
        row = self._db.execute("select generated, consumed, discarded, reasons from link_counters where link_id = ?",
                               (link_id,)).fetchone()
        if row is None:
            return None
        chunks = [ChunkRecord(h, f, bytes(b), bytes(u), n, c) for h, f, b, u, n, c in self._db.execute(
            "select half, frame_id, bits, used, size, cursor from link_chunks where link_id = ? order by frame_id",
            (link_id,))]
        return chunks, PoolCounters(row[0], row[1], row[2], json.loads(row[3]))

    def deliver(self, key_ids: list[str], role: str, master_sae: str, slave_sae: str) -> list[tuple[str, bytes]]:
        """Hand keys to their SAE: all or nothing; then overwrite the store's copy."""
        now = self._clock()
        if len(set(key_ids)) != len(key_ids):
            raise KeyNotAvailable("a key_ID is requested twice")
        with self._transaction():
            rows = {r[0]: r[1:] for r in self._select_in(
                "select key_id, material, state, expires_at from app_keys where key_id in ({}) and role = ? and "
                "master_sae = ? and slave_sae = ?", key_ids, (role, master_sae, slave_sae))}
            out = []
            for key_id in key_ids:
                row = rows.get(key_id)
                if row is None or row[1] != KeyState.RELAYED.value or (row[2] is not None and row[2] <= now):
                    raise KeyNotAvailable(f"key_ID {key_id} is not available to this SAE")
                out.append((key_id, bytes(row[0])))
            sae = slave_sae if role == "destination" else master_sae
            self._move_many(key_ids, KeyState.RELAYED, KeyState.DELIVERED, now, [{"SAE": sae}] * len(key_ids))
            self._destroy_many(key_ids, KeyState.DELIVERED, now)
            return out

    def revoke(self, key_id: str, reason: str) -> None:
        self.revoke_many([key_id], reason)

    def revoke_many(self, key_ids: list[str], reason: str) -> None:
        """All or nothing: an unknown or no longer revocable key leaves every key as it was."""
        now = self._clock()
        with self._transaction():
            for key_id in key_ids:
                self._move_many([key_id], self._state(key_id), KeyState.REVOKED, now, [{"reason": reason}])
                self._destroy_many([key_id], KeyState.REVOKED, now)

    def expire(self) -> int:
        """Withdraw every undelivered key past its TTL; returns how many."""
        now = self._clock()
        with self._transaction():
            ids = [r[0] for r in self._db.execute(
                "select key_id from app_keys where state = ? and expires_at is not null and expires_at <= ?",
                (KeyState.RELAYED.value, now))]
            self._move_many(ids, KeyState.RELAYED, KeyState.EXPIRED, now, [{}] * len(ids))
            self._destroy_many(ids, KeyState.EXPIRED, now)
            return len(ids)

    # -- reads --------------------------------------------------------------------------
    @property
    def room(self) -> int:
        """How many more keys the store can hold now (a hint from any thread; ``add`` decides)."""
        return self.max_keys - self._held

    def count_waiting(self, master_sae: str | None = None, slave_sae: str | None = None) -> int:
        query, args = "select count(*) from app_keys where state = ?", [KeyState.RELAYED.value]
        if master_sae is not None:
            query, args = query + " and master_sae = ?", args + [master_sae]
        if slave_sae is not None:
            query, args = query + " and slave_sae = ?", args + [slave_sae]
        return self._db.execute(query, args).fetchone()[0]

    def records(self, peer: str = "") -> list[KeyRecord]:
        query = "select key_id, peer, master_sae, slave_sae, role, bits, digest, state from app_keys"
        rows = self._db.execute(query + (" where peer = ?" if peer else "") + " order by rowid", (peer,) if peer else ())
        return [KeyRecord(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]), r[7]) for r in rows]

    def audit_entries(self) -> list[dict[str, Any]]:
        rows = self._db.execute("select seq, at, event, key_id, detail, prev, hash from audit order by seq")
        return [dict(seq=r[0], at=r[1], event=r[2], key_id=r[3], detail=json.loads(r[4]), prev=r[5], hash=r[6])
                for r in rows]

    def verify_audit(self) -> int | None:
        """The sequence number of the first entry that breaks the chain, or None if intact."""
        prev = GENESIS
        for seq, at, event, key_id, detail, stored_prev, stored_hash in self._db.execute(
                "select seq, at, event, key_id, detail, prev, hash from audit order by seq"):
            if stored_prev != prev or stored_hash != _entry_hash(prev, seq, at, event, key_id, detail):
                return seq
            prev = stored_hash
        return None

    # -- internals ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        saved = self._last_hash, self._last_seq, self._held
        if self._in_group:
            self._db.execute("savepoint call")
            try:
                yield
            except BaseException:
                self._db.execute("rollback to call")
                self._db.execute("release call")
                self._last_hash, self._last_seq, self._held = saved
                raise
            self._db.execute("release call")
            return
        self._db.execute("begin immediate")
        try:
            yield
        except BaseException:
            self._db.execute("rollback")
            self._last_hash, self._last_seq, self._held = saved
            raise
        self._db.execute("commit")

    def _state(self, key_id: str) -> KeyState:
        row = self._db.execute("select state from app_keys where key_id = ?", (key_id,)).fetchone()
        if row is None:
            raise KeyNotAvailable(f"unknown key_ID {key_id}")
        return KeyState(row[0])

    def _select_in(self, query: str, key_ids: list[str], args: tuple = ()) -> list[tuple]:
        """``query`` with its ``in ({})`` filled for key_ids (in slices, within SQLite's limits)."""
        rows: list[tuple] = []
        for start in range(0, len(key_ids), 500):
            part = key_ids[start:start + 500]
            rows += self._db.execute(query.format(",".join("?" * len(part))), (*part, *args)).fetchall()
        return rows

    def _move_many(self, key_ids: list[str], old: KeyState, new: KeyState, now: float, details: list[dict]) -> None:
        """Keys all in state ``old`` move to ``new``, one audit entry each."""
        if not key_ids:
            return
        check_transition(key_ids[0], old, new)
        self._db.executemany("update app_keys set state = ? where key_id = ?", [(new.value, k) for k in key_ids])
        if old is KeyState.RELAYED:
            self._held -= len(key_ids)
        self._audit_many(now, [(new.value, k, d) for k, d in zip(key_ids, details)])

    def _destroy_many(self, key_ids: list[str], old: KeyState, now: float) -> None:
        """Overwrite the material in place, then drop it (``secure_delete`` zeroes the freed space)."""
        if not key_ids:
            return
        check_transition(key_ids[0], old, KeyState.DESTROYED)
        ids = [(k,) for k in key_ids]
        self._db.executemany("update app_keys set material = zeroblob(length(material)) where key_id = ?", ids)
        self._db.executemany("update app_keys set material = null, state = ? where key_id = ?",
                             [(KeyState.DESTROYED.value, k) for k in key_ids])
        self._audit_many(now, [(KeyState.DESTROYED.value, k, {}) for k in key_ids])

    def _audit_many(self, now: float, entries: list[tuple[str, str, dict]]) -> None:
        """Append (event, key ID, detail) entries to the chain, each hashing its predecessor."""
        rows = []
        seq, prev = self._last_seq, self._last_hash
        for event, key_id, detail in entries:
            seq += 1
            text = json.dumps(detail, sort_keys=True, separators=(",", ":"))
            digest = _entry_hash(prev, seq, now, event, key_id, text)
            rows.append((seq, now, event, key_id, text, prev, digest))
            prev = digest
        self._db.executemany("insert into audit values (?,?,?,?,?,?,?)", rows)
        self._last_seq, self._last_hash = seq, prev


def _arrival_entries(key: NewKey, role: str) -> list[tuple[str, str, dict]]:
    """Audit entries of a key entering the store: drawn here (source) and relayed."""
    relayed = ("relayed", key.key_id, {"role": role, "peer": key.peer, "master_SAE": key.master_sae,
                                       "slave_SAE": key.slave_sae})
    if role != "source":
        return [relayed]
    return [("generated", key.key_id, {"peer": key.peer, "bits": 8 * len(key.material)}), relayed]


def _entry_hash(prev: str, seq: int, at: float, event: str, key_id: str, detail: str) -> str:
    body = json.dumps([prev, seq, repr(at), event, key_id, detail], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class AsyncKeyStore:
    """The store for the event loop: every call runs on one dedicated thread, in order.

    Calls that arrive while the thread is busy are run together in one transaction (group
    commit): many concurrent relays then share one fsync instead of paying one each. The thread
    is woken through a queue rather than an executor, and a batch's results go back to the loop
    in one callback: both are per-call costs on the relay path.
    """

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        # Checkpoints (copying the write-ahead log into the database, with an fsync) run on a
        # thread and connection of their own, not inside whichever commit crosses SQLite's
        # threshold: that commit, and every call queued behind it, would wait tens of ms.
        store._db.execute("pragma wal_autocheckpoint=0")
        self._checkpoints_stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_forever, name="keystore-checkpoint",
                                              daemon=True)
        self._checkpointer.start()
        self._pending: list[tuple[Callable[..., Any], tuple, asyncio.Future]] = []
        self._lock = threading.Lock()
        self._wake: queue.SimpleQueue[asyncio.AbstractEventLoop | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="keystore", daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("the key store is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            self._pending.append((fn, args, future))
            first = len(self._pending) == 1
        if first:
            self._wake.put(loop)
        return await future

    def _serve(self) -> None:
        while (loop := self._wake.get()) is not None:
            self._drain(loop)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            if len(batch) == 1:
                fn, args, _ = batch[0]
                try:
                    results = [(True, fn(*args))]
                except Exception as exc:
                    results = [(False, exc)]
            else:
                results = self.store.group([(fn, args) for fn, args, _ in batch])
        except Exception as exc:  # the shared commit failed: nothing of the batch was kept
            results = [(False, exc)] * len(batch)
        try:
            loop.call_soon_threadsafe(_settle_all, [future for _, _, future in batch], results)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass

    def _checkpoint_forever(self) -> None:
        db = sqlite3.connect(str(self.store.path), isolation_level=None, check_same_thread=False)
        try:
            while not self._checkpoints_stop.wait(CHECKPOINT_EVERY_S):
                try:
                    db.execute("pragma wal_checkpoint(PASSIVE)")  # never blocks the writer
                except sqlite3.Error:  # busy or I/O trouble: the next round tries again
                    pass
        finally:
            db.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._checkpoints_stop.set()
        await asyncio.to_thread(self._checkpointer.join)
        await self.run(self.store.close)  # the last connection to close checkpoints what is left
        self._closed = True
        self._wake.put(None)
        await asyncio.to_thread(self._thread.join)


def _settle_all(futures: list[asyncio.Future], results: list[tuple[bool, Any]]) -> None:
    for future, (ok, value) in zip(futures, results):
        _settle(future, ok, value)


def _settle(future: asyncio.Future, ok: bool, value: Any) -> None:
    if future.done():  # the caller was cancelled; the call itself has happened (or not) all the same
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
