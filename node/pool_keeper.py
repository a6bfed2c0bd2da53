"""Durable link-key pools: no pad that left a node can be sent again after a crash, and a
restarted node agrees with each neighbour on the bits both still hold.

Layer: node domain (no grpc). The store keeps every chunk's bits (used ones zeroed) and used
mask, and each pool's counters, flushed at least every ``FLUSH_S``. A sender allocates forward
through its half of the key; before a pad leaves, the store must hold a *lease* mark at or past
its end. Leases run ``LEASE_BITS`` ahead (as databases cache sequence numbers), so one
synchronous write covers hundreds of relays. After a restart every sending bit before the mark
counts as used; whatever else a crash lost is what reconciliation with the neighbour discards
(the peer holds it used, or not at all). So a pad is never used twice and every bit is accounted.
"""

from __future__ import annotations

import asyncio
import logging

from qkdnet.node.keystore.link_pool import LinkKeyId, LinkKeyPool
from qkdnet.node.keystore.store import AsyncLinkPools
from qkdnet.node.link_runtime import LinkPeer

FLUSH_S = 1.0
LEASE_BITS = 1 << 16  # a sender marks this much ahead as possibly sent: one synchronous write per lease
RECONCILED = "held on one end only after a restart"
LEASED = "leased for sending before a restart"

log = logging.getLogger("node")


class PoolKeeper:
    def __init__(self, store: AsyncLinkPools) -> None:
        self._store = store
        self._pools: dict[str, tuple[str, LinkKeyPool]] = {}  # peer -> (link ID, pool)
        self._locks: dict[object, asyncio.Lock] = {}
        self._durable_version: dict[str, int] = {}
        self._lease: dict[str, tuple[int, int]] = {}  # peer -> durable mark (frame ID, offset)
        self._flusher: asyncio.Task | None = None

    async def open(self, peer: str, link_id: str, pool: LinkKeyPool) -> bool:
        """Register a pool, loading what the store kept of it; True if there was something."""
        self._pools[peer] = (link_id, pool)
        saved = await self._store.load_pool(link_id)
        if saved is None:
            return False
        pool.restore(*saved)
        lease = await self._store.load_lease(link_id)
        if lease is not None:
            pool.apply_lease(*lease, LEASED)
            self._lease[peer] = lease
        await self.persist(peer)
        return True

    async def lease(self, peer: str, link_keys: list[LinkKeyId]) -> None:
        """Return once the store's lease covers these just-allocated pads (sender side)."""
        _, pool = self._pools[peer]
        end = max((k.frame_id, k.end) for k in link_keys)
        if end <= self._lease.get(peer, (-1, 0)):
            return
        async with self._locks.setdefault(("lease", peer), asyncio.Lock()):
            if end <= self._lease.get(peer, (-1, 0)):
                return
            frame_id, offset = end
            mark = (frame_id, min(offset + LEASE_BITS, pool.chunk_size(pool.send_half, frame_id) or offset))
            await self._store.save_lease(self._pools[peer][0], *mark)
            self._lease[peer] = mark

    async def reconcile_with(self, peer: str, remote: LinkPeer, restored: bool) -> None:
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
                await self._store.save_pool(link_id, *changes)
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

