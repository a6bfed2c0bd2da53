"""Durable end-to-end keys: held until delivered to their SAE, withdrawn, or expired.

Layer: node domain, synchronous (each call one transaction of ``Database``). Every state change
goes through the lifecycle rules and writes its audit entries in the same transaction.
Destroyed material is overwritten in place before its row drops it (and ``secure_delete``
zeroes freed pages). A source's commit of relayed keys also settles their relay-outbox rows.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from qkdnet.node.errors import DuplicateKey, InvalidRequest, KeyNotAvailable, PermissionDenied, StoreFull
from qkdnet.node.keystore.audit import AuditLog, Entry
from qkdnet.node.keystore.database import Database
from qkdnet.node.keystore.lifecycle import KeyState, check_transition
from qkdnet.node.keystore.outbox_table import RelayOutboxTable
from qkdnet.node.status import KeyEntry

DEFAULT_MAX_KEYS = 100_000  # keys held awaiting delivery (the KME's max_key_count)
MIN_COMPARABLE_BITS = 128  # shorter keys are never given a comparison digest
MIN_SALT_BYTES = 16
ROLES = ("source", "destination")

SCHEMA = """
create table if not exists app_keys(
    key_id text primary key,
    peer text not null,          -- the other KME holding the same key
    master_sae text not null,    -- '' for keys relayed on the orchestrator's order
    slave_sae text not null,
    role text not null,          -- 'source' or 'destination'
    bits integer not null,
    digest blob not null,        -- unused (empty): a digest of a short key would reveal it; see listing()
    material blob,               -- NULL once destroyed
    state text not null,
    created_at real not null,
    expires_at real             -- NULL: no expiry
);
create index if not exists app_keys_waiting on app_keys(state, slave_sae, master_sae);
"""


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
    state: str


class KeyStore:
    def __init__(self, db: Database, audit: AuditLog, outbox: RelayOutboxTable,
                 max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.time) -> None:
        self.max_keys = max_keys
        self._db = db
        self._audit = audit
        self._outbox = outbox
        self._clock = clock
        db.create(SCHEMA)
        # Keys held undelivered, kept here so the max-count check per insert is O(1), not a scan.
        self._held = db.conn.execute("select count(*) from app_keys where state = ?",
                                     (KeyState.RELAYED.value,)).fetchone()[0]
        db.keep_in_step(self)

    def snapshot(self) -> int:
        return self._held

    def restore(self, saved: int) -> None:
        self._held = saved

    # -- writes (one transaction each) --------------------------------------------------
    def add(self, keys: list[NewKey], role: str, ttl_s: float | None = None) -> None:
        """Keys arriving by relay (destination) or just relayed (source): state ``relayed``.

        ``ttl_s`` applies to keys for SAEs; keys relayed on the orchestrator's order do not expire.
        """
        if role not in ROLES:
            raise InvalidRequest("role is 'source' or 'destination'")
        now = self._clock()
        with self._db.transaction() as conn:
            if self._held + len(keys) > self.max_keys:
                raise StoreFull(f"key store holds {self._held} keys; maximum is {self.max_keys}")
            self._insert(conn, [(k.key_id, k.peer, k.master_sae, k.slave_sae, role, 8 * len(k.material),
                                 b"", k.material, KeyState.RELAYED.value, now,
                                 None if ttl_s is None or not k.master_sae else now + ttl_s) for k in keys])
            self._held += len(keys)
            if role == "source":
                self._outbox.settle([k.key_id for k in keys])
            self._audit.append(now, [entry for k in keys for entry in _arrival_entries(k, role)])

    def add_delivered(self, keys: list[NewKey]) -> None:
        """Source KME of an ETSI request: the keys were relayed and go to the master SAE now.

        The source keeps no copy, so the material is never written here: the row records the
        key's size and its whole lifecycle (generated, relayed, delivered, destroyed) at once.
        """
        for old, new in ((KeyState.RELAYED, KeyState.DELIVERED), (KeyState.DELIVERED, KeyState.DESTROYED)):
            check_transition("(delivered at source)", old, new)
        now = self._clock()
        with self._db.transaction() as conn:
            self._insert(conn, [(k.key_id, k.peer, k.master_sae, k.slave_sae, "source", 8 * len(k.material),
                                 b"", None, KeyState.DESTROYED.value, now, None)
                                for k in keys])
            self._outbox.settle([k.key_id for k in keys])
            self._audit.append(now, [entry for k in keys for entry in _arrival_entries(k, "source") + [
                (KeyState.DELIVERED.value, k.key_id, {"SAE": k.master_sae}),
                (KeyState.DESTROYED.value, k.key_id, {})]])

    def withdraw_arrivals(self, key_ids: list[str], source: str, reason: str) -> int:
        """Destination: the source aborted these keys. Held ones are revoked and overwritten;
        ones not (yet) here get a tombstone row, so a late relay of them is refused. Returns
        how many held keys were withdrawn. Keys of another source are left alone."""
        now, key_ids = self._clock(), list(dict.fromkeys(key_ids))
        with self._db.transaction() as conn:
            rows = {r[0]: r[1:] for r in self._db.select_in(
                "select key_id, peer, role, state from app_keys where key_id in ({})", key_ids)}
            held = [k for k in key_ids if rows.get(k) == (source, "destination", KeyState.RELAYED.value)]
            absent = [k for k in key_ids if k not in rows]
            self._move(held, KeyState.RELAYED, KeyState.REVOKED, now, [{"reason": reason}] * len(held))
            self._destroy(held, KeyState.REVOKED, now)
            conn.executemany("insert into app_keys values (?,?,'','','destination',0,x'',null,?,?,null)",
                             [(k, source, KeyState.DESTROYED.value, now) for k in absent])
            self._audit.append(now, [(KeyState.REVOKED.value, k, {"reason": reason, "before_arrival": True})
                                     for k in absent])
            return len(held)

    def deliver(self, key_ids: list[str], role: str, master_sae: str, slave_sae: str) -> list[tuple[str, bytes]]:
        """Hand keys to their slave SAE: all or nothing; then overwrite the store's copy.

        A key that exists but is not this SAE's to fetch (its master asking, another SAE, the
        source's own record) is ``PermissionDenied`` (ETSI GS QKD 014 5.4: 401) and stays
        deliverable to its slave; an unknown, used, expired or mis-addressed one is
        ``KeyNotAvailable``.
        """
        now = self._clock()
        if len(set(key_ids)) != len(key_ids):
            raise KeyNotAvailable("a key_ID is requested twice")
        with self._db.transaction():
            rows = {r[0]: r[1:] for r in self._db.select_in(
                "select key_id, material, state, expires_at, role, master_sae, slave_sae, bits from app_keys "
                "where key_id in ({})", key_ids)}
            out = []
            for key_id in key_ids:
                row = rows.get(key_id)
                if row is None or row[6] == 0:  # unknown, or a tombstone of an aborted relay
                    raise KeyNotAvailable(f"key_ID {key_id} is not available to this SAE")
                material, state, expires_at, key_role, key_master, key_slave, _ = row
                if key_role != role or key_slave != slave_sae:
                    raise PermissionDenied(f"key_ID {key_id} is not for SAE {slave_sae}")
                if key_master != master_sae or state != KeyState.RELAYED.value or (
                        expires_at is not None and expires_at <= now):
                    raise KeyNotAvailable(f"key_ID {key_id} is not available to this SAE")
                out.append((key_id, bytes(material)))
            sae = slave_sae if role == "destination" else master_sae
            self._move(key_ids, KeyState.RELAYED, KeyState.DELIVERED, now, [{"SAE": sae}] * len(key_ids))
            self._destroy(key_ids, KeyState.DELIVERED, now)
            return out

    def revoke(self, key_ids: list[str], reason: str) -> None:
        """All or nothing: an unknown or no longer revocable key leaves every key as it was."""
        now = self._clock()
        with self._db.transaction():
            for key_id in key_ids:
                self._move([key_id], self._state(key_id), KeyState.REVOKED, now, [{"reason": reason}])
                self._destroy([key_id], KeyState.REVOKED, now)

    def revoke_all(self, reason: str) -> int:
        """Revoke and destroy every key still held, and settle every relay still in flight from
        here (a fresh start: the network it belonged to is gone); returns how many keys."""
        now = self._clock()
        with self._db.transaction() as conn:
            ids = [r[0] for r in conn.execute("select key_id from app_keys where state = ?", (KeyState.RELAYED.value,))]
            self._move(ids, KeyState.RELAYED, KeyState.REVOKED, now, [{"reason": reason}] * len(ids))
            self._destroy(ids, KeyState.REVOKED, now)
            in_flight = [k for group, _ in self._outbox.unsettled() for k in group]
            if in_flight:
                self._outbox.settle(in_flight)
                self._audit.append(now, [(KeyState.REVOKED.value, k, {"role": "source", "reason": reason})
                                         for k in in_flight])
            return len(ids)

    def expire(self) -> int:
        """Withdraw every undelivered key past its TTL; returns how many."""
        now = self._clock()
        with self._db.transaction() as conn:
            ids = [r[0] for r in conn.execute(
                "select key_id from app_keys where state = ? and expires_at is not null and expires_at <= ?",
                (KeyState.RELAYED.value, now))]
            self._move(ids, KeyState.RELAYED, KeyState.EXPIRED, now, [{}] * len(ids))
            self._destroy(ids, KeyState.EXPIRED, now)
            return len(ids)

    # -- reads --------------------------------------------------------------------------
    @property
    def room(self) -> int:
        """How many more keys the store can hold now (a hint from any thread; ``add`` decides)."""
        return self.max_keys - self._held

    def known(self, key_ids: list[str]) -> list[str]:
        """Which of these key IDs have a row here (held, delivered, withdrawn or a tombstone)."""
        found = {r[0] for r in self._db.select_in("select key_id from app_keys where key_id in ({})", key_ids)}
        return [k for k in key_ids if k in found]

    def count_waiting(self, master_sae: str | None = None, slave_sae: str | None = None) -> int:
        query, args = "select count(*) from app_keys where state = ?", [KeyState.RELAYED.value]
        if master_sae is not None:
            query, args = query + " and master_sae = ?", args + [master_sae]
        if slave_sae is not None:
            query, args = query + " and slave_sae = ?", args + [slave_sae]
        return int(self._db.conn.execute(query, args).fetchone()[0])

    def records(self, peer: str = "") -> list[KeyRecord]:
        query = "select key_id, peer, master_sae, slave_sae, role, bits, state from app_keys"
        rows = self._db.conn.execute(query + (" where peer = ?" if peer else "") + " order by rowid",
                                     (peer,) if peer else ())
        return [KeyRecord(*r) for r in rows]

    def listing(self, peer: str, salt: bytes) -> list[KeyEntry]:
        """Keys as the two ends compare them: HMAC-SHA256(salt, key), the salt chosen by whoever
        compares, fresh for each comparison. Only keys still held and of at least
        ``MIN_COMPARABLE_BITS`` get one: any function of a short key would give it away."""
        if len(salt) < MIN_SALT_BYTES:
            raise InvalidRequest(f"a comparison salt is at least {MIN_SALT_BYTES} bytes")
        query = "select key_id, peer, bits, material from app_keys"
        rows = self._db.conn.execute(query + (" where peer = ?" if peer else "") + " order by rowid",
                                     (peer,) if peer else ())
        return [KeyEntry(key_id, key_peer, _salted(salt, material) if material is not None and
                         bits >= MIN_COMPARABLE_BITS else b"", bits) for key_id, key_peer, bits, material in rows]

    # -- internals ----------------------------------------------------------------------
    def _insert(self, conn: sqlite3.Connection, rows: list[tuple]) -> None:
        try:
            conn.executemany("insert into app_keys values (?,?,?,?,?,?,?,?,?,?,?)", rows)
        except sqlite3.IntegrityError:
            raise DuplicateKey("a key ID is already held") from None

    def _state(self, key_id: str) -> KeyState:
        row = self._db.conn.execute("select state from app_keys where key_id = ?", (key_id,)).fetchone()
        if row is None:
            raise KeyNotAvailable(f"unknown key_ID {key_id}")
        return KeyState(row[0])

    def _move(self, key_ids: list[str], old: KeyState, new: KeyState, now: float, details: list[dict]) -> None:
        """Keys all in state ``old`` move to ``new``, one audit entry each."""
        if not key_ids:
            return
        check_transition(key_ids[0], old, new)
        self._db.conn.executemany("update app_keys set state = ? where key_id = ?", [(new.value, k) for k in key_ids])
        if old is KeyState.RELAYED:
            self._held -= len(key_ids)
        self._audit.append(now, [(new.value, k, d) for k, d in zip(key_ids, details, strict=True)])

    def _destroy(self, key_ids: list[str], old: KeyState, now: float) -> None:
        """Overwrite the material in place, then drop it (``secure_delete`` zeroes the freed space)."""
        if not key_ids:
            return
        check_transition(key_ids[0], old, KeyState.DESTROYED)
        ids = [(k,) for k in key_ids]
        conn = self._db.conn
        conn.executemany("update app_keys set material = zeroblob(length(material)) where key_id = ?", ids)
        conn.executemany("update app_keys set material = null, state = ? where key_id = ?",
                         [(KeyState.DESTROYED.value, k) for k in key_ids])
        self._db.wants_truncate = True
        self._audit.append(now, [(KeyState.DESTROYED.value, k, {}) for k in key_ids])


def _salted(salt: bytes, material: bytes) -> bytes:
    return hmac.new(salt, bytes(material), hashlib.sha256).digest()


def _arrival_entries(key: NewKey, role: str) -> list[Entry]:
    """Audit entries of a key entering the store: drawn here (source) and relayed."""
    relayed = ("relayed", key.key_id, {"role": role, "peer": key.peer, "master_SAE": key.master_sae,
                                       "slave_SAE": key.slave_sae})
    if role != "source":
        return [relayed]
    return [("generated", key.key_id, {"peer": key.peer, "bits": 8 * len(key.material)}), relayed]
