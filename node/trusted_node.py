"""A trusted node: its QKD devices, link-key pools, end-to-end keys and the relay engine.

Layer: node domain; no grpc imports. Peers are reached through objects that implement
``LinkPeer`` and ``RelayPeer`` (the RPC layer supplies them). Key material stays here: status
and key listings carry counts, IDs and SHA-256 digests only.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Protocol

from node.coalescer import Coalescer
from node.keystore.app_store import AsyncKeyStore, NewKey, StoreError
from node.keystore.link_pool import KeyPoolError, LinkKeyPool
from node.link_runtime import FrameForPeer, LinkPeer, LinkRuntime
from node.relay import one_time_pad
from node.settings import LinkSettings, NodeSettings


HOP_KEY_WAIT_S = 30.0  # how long an intermediate node waits for link key to the next hop


class RelayError(Exception):
    """A relay could not complete; every link key it consumed is accounted as discarded."""


@dataclass(frozen=True)
class RelayItem:
    key_id: str
    ciphertext: bytes = field(repr=False)
    link_key_id: str
    master_sae: str = ""  # set for ETSI GS QKD 014 keys: who may fetch the key at the destination
    slave_sae: str = ""


class RelayPeer(Protocol):
    async def forward(self, path: list[str], hop: int, items: list[RelayItem]) -> None: ...


class Peer(LinkPeer, RelayPeer, Protocol):
    async def close(self) -> None: ...


@dataclass(frozen=True)
class RelayOutcome:
    keys: list[tuple[str, bytes]] = field(repr=False)  # (key ID, key); never leaves the node but to an SAE
    latencies_s: list[float]
    link_bits_consumed: int

    @property
    def key_ids(self) -> list[str]:
        return [key_id for key_id, _ in self.keys]


class TrustedNode:
    def __init__(self, name: str, peer_factory: Callable[[str], Peer], store: AsyncKeyStore) -> None:
        self.name = name
        self.store = store
        self.settings: NodeSettings | None = None
        self._peer_factory = peer_factory
        self.links: dict[str, LinkRuntime] = {}  # by peer name
        self._links_by_id: dict[str, LinkRuntime] = {}
        self.pools: dict[str, LinkKeyPool] = {}
        self.peers: dict[str, Peer] = {}
        self.relays_forwarded = 0
        self.configured = False
        self._first_hop = Coalescer(self._send_first_hop)

    # -- configuration --------------------------------------------------------------------
    async def configure(self, settings: NodeSettings) -> None:
        if settings.name != self.name:
            raise ValueError(f"configuration for {settings.name!r} sent to node {self.name!r}")
        if self.configured:
            raise ValueError(f"node {self.name!r} is already configured")
        self.settings = settings
        for link in settings.links:
            pool = LinkKeyPool("a" if link.role == "transmitter" else "b", link.pool_capacity_bits)
            runtime = LinkRuntime(link, pool, settings.time_scale)
            self.pools[link.peer] = pool
            self.links[link.peer] = runtime
            self._links_by_id[link.link_id] = runtime
            self.peers[link.peer] = self._peer_factory(link.peer_address)
        self.configured = True
        for peer, runtime in self.links.items():
            runtime.start(self.peers[peer])

    async def reset_link(self, link: LinkSettings) -> None:
        """The peer restarted without this link's key: discard ours, run the link afresh."""
        old = self.links.get(link.peer)
        if old is None or old.settings.link_id != link.link_id:
            raise ValueError(f"node {self.name} has no link {link.link_id!r} to {link.peer!r}")
        await old.stop()
        pool = self.pools[link.peer]
        pool.discard_all("peer restarted: link key no longer held on both ends")
        runtime = LinkRuntime(link, pool, self.settings.time_scale)
        self.links[link.peer] = runtime
        self._links_by_id[link.link_id] = runtime
        runtime.start(self.peers[link.peer])

    async def close(self) -> None:
        for runtime in self.links.values():
            await runtime.stop()
        for peer in self.peers.values():
            await peer.close()

    # -- link engine entry points (receiver side) -----------------------------------------
    def link(self, link_id: str) -> LinkRuntime:
        runtime = self._links_by_id.get(link_id)
        if runtime is None:
            raise KeyError(f"node {self.name} has no link {link_id!r}")
        return runtime

    async def on_frame(self, frame: FrameForPeer) -> list[bytes]:
        return await self.link(frame.link_id).on_frame(frame)

    async def on_exchange(self, link_id: str, frame_id: int, envelopes: list[bytes]) -> tuple[list[bytes], bool]:
        return await self.link(link_id).on_exchange(frame_id, envelopes)

    # -- relay ----------------------------------------------------------------------------
    async def relay(self, path: list[str], count: int, key_bits: int, timeout_s: float,
                    master_sae: str = "", slave_sae: str = "") -> RelayOutcome:
        """Source side: draw keys, pad them for the first hop, forward, keep them if delivered.

        With SAEs named (an ETSI request) the keys go to the master SAE, so this node records
        them as delivered and keeps no copy; otherwise it keeps them for comparison.
        """
        if len(path) < 2 or path[0] != self.name:
            raise RelayError(f"path must start at {self.name} and have at least two nodes")
        if key_bits <= 0 or key_bits % 8:
            raise RelayError("key size must be a positive multiple of 8 bits")
        if count <= 0:
            raise RelayError("count must be positive")
        pool = self._pool(path[1])
        started = time.perf_counter()
        keys, items = [], []
        for _ in range(count):
            material = secrets.token_bytes(key_bits // 8)
            key_id = str(uuid.uuid4())
            try:
                link_key_id, pad = await pool.allocate_waiting(key_bits, timeout_s)
            except KeyPoolError as exc:
                pool.discard(len(items) * key_bits, "relay aborted: no link key")
                raise RelayError(f"{self.name}->{path[1]}: {exc}") from None
            items.append(RelayItem(key_id, one_time_pad(material, pad), link_key_id, master_sae, slave_sae))
            keys.append(NewKey(key_id, path[-1], material, master_sae, slave_sae))
        try:
            await asyncio.wait_for(self._first_hop.send(tuple(path), items), timeout_s)
        except Exception as exc:
            pool.discard(count * key_bits, "relay failed downstream")
            raise RelayError(f"relay via {path[1]} failed: {exc}") from None
        try:
            if master_sae:
                await self.store.run(self.store.store.add_delivered, keys)
            else:
                await self.store.run(self.store.store.add, keys, "source")
        except StoreError as exc:  # the destination holds keys this end could not record: they expire there
            raise RelayError(f"{self.name}: key store refused the relayed keys: {exc}") from None
        latency = time.perf_counter() - started
        return RelayOutcome([(k.key_id, k.material) for k in keys], [latency] * count, count * key_bits)

    async def _send_first_hop(self, path: tuple[str, ...], items: list[RelayItem]) -> None:
        await self.peers[path[1]].forward(list(path), 1, items)

    async def forward(self, path: list[str], hop: int, items: list[RelayItem]) -> None:
        """Intermediate or destination side of one hop."""
        if not 1 <= hop < len(path) or path[hop] != self.name:
            raise RelayError(f"node {self.name} is not hop {hop} of {path}")
        if len(set(path)) != len(path):
            raise RelayError("relay path visits a node twice")
        previous = self._pool(path[hop - 1])
        recovered: list[tuple[str, bytes]] = []
        taken_bits = 0
        try:
            for item in items:
                pad = previous.take_by_id(item.link_key_id)
                taken_bits += pad.size
                recovered.append((item.key_id, one_time_pad(item.ciphertext, pad)))
        except (KeyPoolError, ValueError) as exc:
            previous.discard(taken_bits, "relay rejected: bad link key")
            raise RelayError(f"{self.name}: {exc}") from None
        self.relays_forwarded += len(items)
        if hop == len(path) - 1:
            kme = self.settings.kme if self.settings else None
            arrived = [NewKey(key_id, path[0], material, item.master_sae, item.slave_sae)
                       for (key_id, material), item in zip(recovered, items)]
            ttl_s = kme.key_ttl_s if kme and kme.key_ttl_s > 0 else None
            try:
                await self.store.run(self.store.store.add, arrived, "destination", ttl_s)
            except StoreError as exc:
                previous.discard(taken_bits, f"relay rejected: {exc}")
                raise RelayError(f"{self.name}: {exc}") from None
            return
        following = self._pool(path[hop + 1])
        onward, sent_bits = [], 0
        try:
            for (key_id, material), item in zip(recovered, items):
                link_key_id, pad = await following.allocate_waiting(8 * len(material), HOP_KEY_WAIT_S)
                sent_bits += pad.size
                onward.append(RelayItem(key_id, one_time_pad(material, pad), link_key_id, item.master_sae,
                                        item.slave_sae))
            await self.peers[path[hop + 1]].forward(path, hop + 1, onward)
        except Exception as exc:
            previous.discard(taken_bits, "relay failed downstream")
            following.discard(sent_bits, "relay failed downstream")
            raise RelayError(f"{self.name}->{path[hop + 1]}: {exc}") from None
        finally:
            recovered.clear()

    def _pool(self, peer: str) -> LinkKeyPool:
        pool = self.pools.get(peer)
        if pool is None:
            raise RelayError(f"node {self.name} has no link to {peer}")
        return pool

    # -- observation ----------------------------------------------------------------------
    async def status(self) -> dict:
        waiting = await self.store.run(self.store.store.count_waiting)
        return dict(name=self.name, links=[r.status() for r in self.links.values()],
                    app_keys=waiting, relays_forwarded=self.relays_forwarded)

    async def list_keys(self, peer: str = "") -> list[tuple[str, str, bytes, int]]:
        records = await self.store.run(self.store.store.records, peer)
        return [(r.key_id, r.peer, r.digest, r.bits) for r in records]
