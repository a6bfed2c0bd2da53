"""Durable link-key pools: what a node has spent reaches its store before a pad leaves, and a
restarted node agrees with each neighbour on the bits both still hold.

Layer: node domain (no grpc). The store keeps every chunk's bits (used ones zeroed) and used
mask, and each pool's counters. A sender persists before sending, so a pad that left the node
is marked used on disk; a receiver's takes and new blocks are flushed at least every
``FLUSH_S``: what a crash loses there is exactly what reconciliation discards (the peer holds
it used or not at all), so a pad is never used twice and every bit stays accounted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from node.keystore.app_store import AsyncKeyStore
from node.keystore.link_pool import LinkKeyPool

FLUSH_S = 1.0
RECONCILED = "held on one end only after a restart"

log = logging.getLogger("node")


class PoolKeeper:
    def __init__(self, store: AsyncKeyStore) -> None:
        self.store = store
        self._pools: dict[str, tuple[str, LinkKeyPool]] = {}  # peer -> (link ID, pool)
        self._locks: dict[str, asyncio.Lock] = {}
        self._durable_version: dict[str, int] = {}
        self._flusher: asyncio.Task | None = None

    async def open(self, peer: str, link_id: str, pool: LinkKeyPool) -> bool:
        """Register a pool, loading what the store kept of it; True if there was something."""
        self._pools[peer] = (link_id, pool)
        saved = await self.store.run(self.store.store.load_link_pool, link_id)
        if saved is None:
            return False
        pool.restore(*saved)
        self._durable_version[peer] = pool.version
        return True

    async def reconcile_with(self, peer: str, remote: Any, restored: bool) -> None:
        """Ask the peer (``remote.reconcile``) which bits it holds; keep only the common ones."""
        link_id, pool = self._pools[peer]
        try:
            theirs = await remote.reconcile(link_id, pool.inventory())
        except Exception:  # the peer is not configured yet (a first start) or unreachable
            if restored and pool.level_bits:
                pool.discard_all("peer unreachable at restart: link key not confirmed on both ends")
        else:
            pool.reconcile(theirs, RECONCILED)
        await self.persist(peer)

    async def on_reconcile(self, peer: str, inventory: dict) -> dict:
        _, pool = self._pools[peer]
        pool.reconcile(inventory, RECONCILED)
        await self.persist(peer)
        return pool.inventory()

    async def persist(self, peer: str) -> None:
        """Make every change of this pool so far durable.

        Concurrent callers share one write: whoever takes the lock writes everything changed up
        to then, and a caller whose changes that write covered returns at once.
        """
        link_id, pool = self._pools[peer]
        target = pool.version
        async with self._locks.setdefault(peer, asyncio.Lock()):
            if self._durable_version.get(peer, -1) >= target:
                return
            version = pool.version
            changes = pool.snapshot_changes()
            if changes is not None:
                await self.store.run(self.store.store.save_link_pool, link_id, *changes)
            self._durable_version[peer] = version

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_forever(), name="pool-flusher")

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await self.flush_all()

    async def flush_all(self) -> None:
        for peer in list(self._pools):
            try:
                await self.persist(peer)
            except Exception as exc:  # keep the others; the next round retries
                log.warning("link pool %s not saved: %s", peer, exc)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self.flush_all()
