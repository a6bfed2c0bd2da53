"""The node's durable store as the rest of the node sees it: three async rooms, one database.

Layer: node domain (asyncio, no grpc). ``keys`` holds end-to-end keys and their audit chain,
``outbox`` the relays in flight (presumed abort), ``links`` the link-key pools and leases. All
three share one SQLite database and one worker thread, because a source's commit of relayed keys
must settle their outbox rows in the same transaction. Callers use these domain methods only;
the synchronous tables (``StoreTables``) are for the worker thread and for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qkdnet.node.errors import StoreFailure
from qkdnet.node.keystore.app_store import DEFAULT_MAX_KEYS, KeyRecord, KeyStore, NewKey
from qkdnet.node.keystore.audit import AuditLog, load_or_create_key
from qkdnet.node.keystore.database import Database
from qkdnet.node.keystore.link_pool import ChunkRecord, PoolCounters
from qkdnet.node.keystore.link_table import LinkPoolTable, SavedPool
from qkdnet.node.keystore.outbox_table import Paths, RelayOutboxTable
from qkdnet.node.keystore.worker import CHECKPOINT_EVERY_S, StoreWorker
from qkdnet.node.status import KeyEntry


@dataclass(frozen=True)
class StoreTables:
    """The synchronous tables over one database (for the store's thread, and for tests)."""

    db: Database
    audit: AuditLog
    keys: KeyStore
    outbox: RelayOutboxTable
    links: LinkPoolTable

    def close(self) -> None:
        self.audit.anchor()
        self.db.close()


def open_tables(path: Path | str, max_keys: int = DEFAULT_MAX_KEYS,
                clock: Callable[[], float] = time.time) -> StoreTables:
    db = Database(path)
    audit = AuditLog(db, load_or_create_key(db.path))
    outbox = RelayOutboxTable(db, audit, clock)
    return StoreTables(db, audit, KeyStore(db, audit, outbox, max_keys, clock), outbox, LinkPoolTable(db))


class AsyncKeys:
    """End-to-end keys and their audit chain."""

    def __init__(self, worker: StoreWorker, table: KeyStore, audit: AuditLog) -> None:
        self._call = worker.call
        self._table = table
        self._audit = audit

    @property
    def max_keys(self) -> int:
        return self._table.max_keys

    @property
    def room(self) -> int:
        """How many more keys fit now (a hint; ``add`` decides)."""
        return self._table.room

    async def set_max_keys(self, max_keys: int) -> None:
        await self._call(setattr, self._table, "max_keys", max_keys)

    async def add(self, keys: list[NewKey], role: str, ttl_s: float | None = None) -> None:
        await self._call(self._table.add, keys, role, ttl_s)

    async def add_delivered(self, keys: list[NewKey]) -> None:
        await self._call(self._table.add_delivered, keys)

    async def deliver(self, key_ids: list[str], role: str, master_sae: str, slave_sae: str) -> list[tuple[str, bytes]]:
        return await self._call(self._table.deliver, key_ids, role, master_sae, slave_sae)

    async def revoke(self, key_ids: list[str], reason: str) -> None:
        await self._call(self._table.revoke, key_ids, reason)

    async def expire(self) -> int:
        return await self._call(self._table.expire)

    async def revoke_all(self, reason: str) -> int:
        return await self._call(self._table.revoke_all, reason)

    async def withdraw_arrivals(self, key_ids: list[str], source: str, reason: str) -> int:
        return await self._call(self._table.withdraw_arrivals, key_ids, source, reason)

    async def known(self, key_ids: list[str]) -> list[str]:
        return await self._call(self._table.known, key_ids)

    async def count_waiting(self, master_sae: str | None = None, slave_sae: str | None = None) -> int:
        return await self._call(self._table.count_waiting, master_sae, slave_sae)

    async def records(self, peer: str = "") -> list[KeyRecord]:
        return await self._call(self._table.records, peer)

    async def listing(self, peer: str, salt: bytes) -> list[KeyEntry]:
        return await self._call(self._table.listing, peer, salt)

    async def audit_entries(self) -> list[dict[str, Any]]:
        return await self._call(self._audit.entries)

    async def verify_audit(self) -> int | None:
        return await self._call(self._audit.verify)


class AsyncOutbox:
    """Key IDs of relays sent but not committed at their source."""

    def __init__(self, worker: StoreWorker, table: RelayOutboxTable) -> None:
        self._call = worker.call
        self._table = table

    async def open(self, key_ids: list[str], paths: Paths) -> None:
        await self._call(self._table.open, key_ids, paths)

    async def unsettled(self) -> list[tuple[list[str], Paths]]:
        return await self._call(self._table.unsettled)

    async def unsettled_among(self, key_ids: list[str]) -> list[str]:
        return await self._call(self._table.unsettled_among, key_ids)

    async def close(self, key_ids: list[str], reason: str) -> None:
        await self._call(self._table.close, key_ids, reason)


class AsyncLinkPools:
    """Link-key pools and the senders' lease marks."""

    def __init__(self, worker: StoreWorker, table: LinkPoolTable) -> None:
        self._call = worker.call
        self._table = table

    async def save_pool(self, link_id: str, rows: list[ChunkRecord], counters: PoolCounters) -> None:
        await self._call(self._table.save_pool, link_id, rows, counters)

    async def load_pool(self, link_id: str) -> SavedPool | None:
        return await self._call(self._table.load_pool, link_id)

    async def save_lease(self, link_id: str, frame_id: int, offset: int) -> None:
        await self._call(self._table.save_lease, link_id, frame_id, offset)

    async def load_lease(self, link_id: str) -> tuple[int, int] | None:
        return await self._call(self._table.load_lease, link_id)

    async def erase_all(self) -> None:
        await self._call(self._table.erase_all)

    async def save_impairment(self, link_id: str, fields: dict | None) -> None:
        await self._call(self._table.save_impairment, link_id, fields)

    async def load_impairment(self, link_id: str) -> dict | None:
        return await self._call(self._table.load_impairment, link_id)


class NodeStore:
    def __init__(self, tables: StoreTables, checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> None:
        self._worker = StoreWorker(tables.db, checkpoint_every_s, after_commit=tables.audit.anchor)
        self._audit = tables.audit
        self.commit_seconds = tables.db.commit_seconds  # observed on the store's thread
        self.keys = AsyncKeys(self._worker, tables.keys, tables.audit)
        self.outbox = AsyncOutbox(self._worker, tables.outbox)
        self.links = AsyncLinkPools(self._worker, tables.links)

    @classmethod
    def open(cls, path: Path | str, max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.time,
             checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> NodeStore:
        """The store at ``path``; refused if its audit log does not verify (a node never starts
        on a tampered log)."""
        tables = open_tables(path, max_keys, clock)
        tables.db.truncate_log()  # what a crash left in the log: into the database, then gone
        problem = tables.audit.check()
        if problem is not None:
            tables.db.close()
            raise StoreFailure(f"{path}: {problem}; see `qkdnet audit verify`")
        return cls(tables, checkpoint_every_s)

    def audit_event_counts(self) -> dict[str, int]:
        """Audit entries committed since this process opened the store, by event."""
        return dict(self._audit.event_counts)  # a copy: the store thread updates it

    async def close(self) -> None:
        await self._worker.close()
