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
from typing import Awaitable, Callable, Protocol

import numpy as np

from node.coalescer import Coalescer
from node.keystore.app_store import AsyncKeyStore, NewKey, StoreError
from node.keystore.link_pool import KeyPoolError, LinkKeyPool
from node.link_runtime import FrameForPeer, LinkPeer, LinkRuntime
from node.relay import one_time_pad
from node.relay_outbox import ABORT_REASON, RelayOutbox
from node.pool_keeper import PoolKeeper
from node.shares import ExposureLog, ShareAssembler, split_key
from node.settings import LinkSettings, NodeSettings


HOP_KEY_WAIT_S = 30.0  # how long an intermediate node waits for link key to the next hop
ABORT_TIMEOUT_S = 10.0  # one attempt to carry an abort to the destination
# Relay batches per route under way at once: more keeps every hop of a long path busy (a batch
# spends most of its time in transit), fewer makes larger batches (less CPU per key).
BATCHES_IN_FLIGHT = 4


class RelayError(Exception):
    """A relay could not complete; every link key it consumed is accounted as discarded."""


@dataclass(frozen=True)
class RelayItem:
    key_id: str
    ciphertext: bytes = field(repr=False)
    link_key_id: str
    master_sae: str = ""  # set for ETSI GS QKD 014 keys: who may fetch the key at the destination
    slave_sae: str = ""
    share_index: int = 0  # multipath: which XOR share of the key this is (1-based); 0 = whole key
    share_count: int = 0


class RelayPeer(Protocol):
    async def forward(self, path: list[str], hop: int, items: list[RelayItem]) -> None: ...

    async def abort(self, path: list[str], hop: int, key_ids: list[str]) -> None: ...


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
        self.cut_links: set[str] = set()  # peers whose link was taken out of service
        self.assembler = ShareAssembler()
        self.exposure = ExposureLog()
        self.configured = False
        self._first_hop = Coalescer(self._send_first_hop, BATCHES_IN_FLIGHT)
        # Concurrent relay requests along the same routes (same key size and SAEs) share one
        # relay: one pad allocation, one hop message per hop and one store commit at each end.
        self._requests = Coalescer(self._relay_batch, BATCHES_IN_FLIGHT)
        self.keeper = PoolKeeper(store)
        self.outbox = RelayOutbox(store, self._send_abort)

    # -- configuration --------------------------------------------------------------------
    async def configure(self, settings: NodeSettings) -> None:
        if settings.name != self.name:
            raise ValueError(f"configuration for {settings.name!r} sent to node {self.name!r}")
        if self.configured:
            raise ValueError(f"node {self.name!r} is already configured")
        self.settings = settings
        if settings.kme is not None:  # the ETSI max_key_count is the store's limit
            self.store.store.max_keys = settings.kme.max_keys
        restored = set()
        for link in settings.links:
            pool = LinkKeyPool("a" if link.role == "transmitter" else "b", link.pool_capacity_bits)
            if await self.keeper.open(link.peer, link.link_id, pool):
                restored.add(link.peer)
            runtime = LinkRuntime(link, pool, settings.time_scale)
            self.pools[link.peer] = pool
            self.links[link.peer] = runtime
            self._links_by_id[link.link_id] = runtime
            self.peers[link.peer] = self._peer_factory(link.peer_address)
        self.configured = True
        await asyncio.gather(*(self.keeper.reconcile_with(peer, self.peers[peer], peer in restored)
                               for peer in self.links))
        for peer, runtime in self.links.items():
            runtime.start(self.peers[peer])
        self.keeper.start()
        await self.outbox.resume()

    async def on_reconcile(self, link_id: str, inventory: dict) -> dict:
        runtime = self._links_by_id.get(link_id)
        if runtime is None:
            raise KeyError(f"node {self.name} has no link {link_id!r}")
        return await self.keeper.on_reconcile(runtime.settings.peer, inventory)

    async def reset_link(self, link: LinkSettings) -> None:
        """The peer restarted: run the link afresh (new authentication secret); the pool stays,
        and the restarted peer reconciles it with its own durable copy."""
        old = self.links.get(link.peer)
        if old is None or old.settings.link_id != link.link_id:
            raise ValueError(f"node {self.name} has no link {link.link_id!r} to {link.peer!r}")
        await old.stop()
        pool = self.pools[link.peer]
        runtime = LinkRuntime(link, pool, self.settings.time_scale)
        self.links[link.peer] = runtime
        self._links_by_id[link.link_id] = runtime
        runtime.start(self.peers[link.peer])

    async def close(self) -> None:
        await self.outbox.close()
        for runtime in self.links.values():
            await runtime.stop()
        await self.keeper.close()
        for peer in self.peers.values():
            await peer.close()

    # -- link engine entry points (receiver side) -----------------------------------------
    def link(self, link_id: str) -> LinkRuntime:
        runtime = self._links_by_id.get(link_id)
        if runtime is None:
            raise KeyError(f"node {self.name} has no link {link_id!r}")
        if runtime.settings.peer in self.cut_links:
            raise KeyError(f"link {link_id!r} is out of service at {self.name}")
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
        return await self.relay_multipath([path], count, key_bits, timeout_s, master_sae, slave_sae)

    async def relay_multipath(self, paths: list[list[str]], count: int, key_bits: int, timeout_s: float,
                              master_sae: str = "", slave_sae: str = "") -> RelayOutcome:
        """Like ``relay``; with k > 1 node-disjoint paths each key travels as k XOR shares.

        No intermediate node then sees more than one share of a key. The key is kept only if
        every share was delivered; a share's link key is accounted on its own path either way.
        """
        self._check_paths(paths)
        if key_bits <= 0 or key_bits % 8:
            raise RelayError("key size must be a positive multiple of 8 bits")
        if count <= 0:
            raise RelayError("count must be positive")
        started = time.perf_counter()
        route = (tuple(tuple(p) for p in paths), key_bits, master_sae, slave_sae)
        (keys,) = await self._requests.send(route, [(count, timeout_s)])
        latency = time.perf_counter() - started
        return RelayOutcome([(k.key_id, k.material) for k in keys], [latency] * count,
                            count * key_bits * len(paths))

    async def _relay_batch(self, route: tuple, requests: list[tuple[int, float]]) -> list[list[NewKey]]:
        """Relay the keys of several requests at once; each request gets its own slice back.

        The batch keeps the shortest timeout among its requests, so no caller waits longer than
        it asked; if any part fails, every request of the batch fails.
        """
        paths = [list(p) for p in route[0]]
        key_bits, master_sae, slave_sae = route[1:]
        timeout_s = min(t for _, t in requests)
        total = sum(c for c, _ in requests)
        if not master_sae and self.store.store.room < total:  # refused before any pad is spent
            raise RelayError(f"{self.name}: key store full ({self.store.store.max_keys} keys)")
        keys = [NewKey(str(uuid.uuid4()), paths[0][-1], secrets.token_bytes(key_bits // 8), master_sae, slave_sae)
                for _ in range(total)]
        key_ids = [k.key_id for k in keys]
        launch = _Launch(lambda: self.outbox.open(key_ids, paths))
        try:
            await self._send_and_commit(paths, keys, timeout_s, bool(master_sae), launch)
        except BaseException:  # failed, timed out or cancelled: the destination may hold them
            if launch.started:  # else nothing left this node (no link key, say): nothing to abort
                self.outbox.abandon(key_ids, paths)
            raise
        slices, start = [], 0
        for count, _ in requests:
            slices.append(keys[start:start + count])
            start += count
        return slices

    async def _send_and_commit(self, paths: list[list[str]], keys: list[NewKey], timeout_s: float,
                               for_sae: bool, launch: _Launch) -> None:
        """Send every share; once all arrived, commit the keys here (which settles the outbox)."""
        if len(paths) == 1:
            await self._send_share(paths[0], keys, [k.material for k in keys], 0, 0, timeout_s, launch)
        else:
            shares = [split_key(k.material, len(paths)) for k in keys]
            results = await asyncio.gather(*(
                self._send_share(path, keys, [s[i] for s in shares], i + 1, len(paths), timeout_s, launch)
                for i, path in enumerate(paths)), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise RelayError("; ".join(str(f) for f in failed))
        try:
            if for_sae:
                await self.store.run(self.store.store.add_delivered, keys)
            else:
                await self.store.run(self.store.store.add, keys, "source")
        except StoreError as exc:  # the caller's abandon withdraws them at the destination
            raise RelayError(f"{self.name}: key store refused the relayed keys: {exc}") from None

    def _check_paths(self, paths: list[list[str]]) -> None:
        if not paths:
            raise RelayError("no path given")
        for path in paths:
            if len(path) < 2 or path[0] != self.name:
                raise RelayError(f"path must start at {self.name} and have at least two nodes")
            if len(set(path)) != len(path):
                raise RelayError("relay path visits a node twice")
        if len({p[-1] for p in paths}) != 1:
            raise RelayError("multipath routes must end at the same destination")
        inner = [n for p in paths for n in p[1:-1]]
        if len(set(inner)) != len(inner) or len({tuple(p) for p in paths}) != len(paths):
            raise RelayError("multipath routes must be node-disjoint")

    async def _send_share(self, path: list[str], keys: list[NewKey], payloads: list[bytes], share_index: int,
                          share_count: int, timeout_s: float, launch: _Launch) -> None:
        """Pad each payload with fresh link key to path[1] and send; on failure the pads are discarded."""
        pool = self._pool(path[1])
        try:  # all pads or none
            link_key_ids, pads = await pool.allocate_many_waiting([8 * len(p) for p in payloads], timeout_s)
        except KeyPoolError as exc:
            raise RelayError(f"{self.name}->{path[1]}: {exc}") from None
        try:
            await launch()
        except Exception as exc:
            pool.discard(pads.size, "relay not recorded at its source")
            raise RelayError(f"{self.name}: key store refused the relay: {_describe(exc)}") from None
        items = [RelayItem(key.key_id, ciphertext, link_key_id, key.master_sae, key.slave_sae, share_index, share_count)
                 for key, ciphertext, link_key_id in zip(keys, _pad_each(payloads, pads), link_key_ids)]
        try:
            await self.keeper.lease(path[1], [i.link_key_id for i in items])  # durable before they leave
            async with asyncio.timeout(timeout_s):
                await self._first_hop.send(tuple(path), items)
        except Exception as exc:
            pool.discard(sum(8 * len(i.ciphertext) for i in items), "relay failed downstream")
            raise RelayError(f"relay via {path[1]} failed: {_describe(exc)}") from None

    async def _send_first_hop(self, path: tuple[str, ...], items: list[RelayItem]) -> None:
        await self.peers[path[1]].forward(list(path), 1, items)

    async def _send_abort(self, path: list[str], key_ids: list[str]) -> None:
        async with asyncio.timeout(ABORT_TIMEOUT_S):
            await self._neighbour(path[1]).abort(path, 1, key_ids)

    def _neighbour(self, name: str) -> Peer:
        """The peer of a link, whether or not the link is in service (``_pool`` checks that)."""
        peer = self.peers.get(name)
        if peer is None:
            raise RelayError(f"node {self.name} has no link to {name}")
        return peer

    async def abort(self, path: list[str], hop: int, key_ids: list[str]) -> None:
        """Carry a source's abort one hop; at the destination, withdraw the keys.

        No link key is involved, so an abort also crosses links taken out of service.
        """
        if not 1 <= hop < len(path) or path[hop] != self.name:
            raise RelayError(f"node {self.name} is not hop {hop} of {path}")
        if hop < len(path) - 1:
            await self._neighbour(path[hop + 1]).abort(path, hop + 1, key_ids)
            return
        self.assembler.drop(key_ids)
        await self.store.run(self.store.store.withdraw_arrivals, key_ids, path[0], ABORT_REASON)

    async def forward(self, path: list[str], hop: int, items: list[RelayItem]) -> None:
        """Intermediate or destination side of one hop."""
        if not 1 <= hop < len(path) or path[hop] != self.name:
            raise RelayError(f"node {self.name} is not hop {hop} of {path}")
        if len(set(path)) != len(path):
            raise RelayError("relay path visits a node twice")
        previous = self._pool(path[hop - 1])
        try:
            pads = previous.take_many([item.link_key_id for item in items])
        except KeyPoolError as exc:
            previous.discard(exc.taken_bits, "relay rejected: bad link key")
            raise RelayError(f"{self.name}: {exc}") from None
        taken_bits = pads.size
        if any(8 * len(i.ciphertext) != int(i.link_key_id.rsplit(":", 1)[1]) for i in items):
            previous.discard(taken_bits, "relay rejected: bad link key")
            raise RelayError(f"{self.name}: a ciphertext's length differs from its link key's")
        recovered = list(zip((item.key_id for item in items), _pad_each([i.ciphertext for i in items], pads)))
        self.relays_forwarded += len(items)
        if hop == len(path) - 1:
            kme = self.settings.kme if self.settings else None
            try:
                arrived = self._whole_keys(path[0], recovered, items)
            except ValueError as exc:
                previous.discard(taken_bits, f"relay rejected: {exc}")
                raise RelayError(f"{self.name}: {exc}") from None
            if not arrived:
                return
            ttl_s = kme.key_ttl_s if kme and kme.key_ttl_s > 0 else None
            try:
                await self.store.run(self.store.store.add, arrived, "destination", ttl_s)
            except StoreError as exc:
                previous.discard(taken_bits, f"relay rejected: {exc}")
                raise RelayError(f"{self.name}: {exc}") from None
            return
        for item in items:
            self.exposure.record(item.key_id, item.share_index, item.share_count)
        try:
            following = self._pool(path[hop + 1])
        except RelayError:
            previous.discard(taken_bits, "relay failed: next link out of service")
            raise
        sent_bits = 0
        try:
            materials = [material for _, material in recovered]
            link_key_ids, pads = await following.allocate_many_waiting([8 * len(m) for m in materials], HOP_KEY_WAIT_S)
            sent_bits = pads.size
            onward = [RelayItem(item.key_id, ciphertext, link_key_id, item.master_sae, item.slave_sae,
                                item.share_index, item.share_count)
                      for item, ciphertext, link_key_id in zip(items, _pad_each(materials, pads), link_key_ids)]
            await self.keeper.lease(path[hop + 1], [i.link_key_id for i in onward])
            await self.peers[path[hop + 1]].forward(path, hop + 1, onward)
        except Exception as exc:
            previous.discard(taken_bits, "relay failed downstream")
            following.discard(sent_bits, "relay failed downstream")
            raise RelayError(f"{self.name}->{path[hop + 1]}: {_describe(exc)}") from None
        finally:
            recovered.clear()

    def _whole_keys(self, source: str, recovered: list[tuple[str, bytes]], items: list[RelayItem]) -> list[NewKey]:
        """Destination: keys that are now complete (a whole key, or the last missing share)."""
        whole = []
        for (key_id, material), item in zip(recovered, items):
            if item.share_count:
                material = self.assembler.add(key_id, item.share_index, item.share_count, material, source,
                                               item.master_sae, item.slave_sae)
                if material is None:
                    continue
            whole.append(NewKey(key_id, source, material, item.master_sae, item.slave_sae))
        return whole

    def _pool(self, peer: str) -> LinkKeyPool:
        pool = self.pools.get(peer)
        if pool is None:
            raise RelayError(f"node {self.name} has no link to {peer}")
        if peer in self.cut_links:
            raise RelayError(f"{self.name}->{peer}: link out of service")
        return pool

    async def set_link_down(self, peer: str) -> None:
        """A fibre cut on this end: stop generating, refuse relays over it, keep its pool."""
        runtime = self.links.get(peer)
        if runtime is None:
            raise ValueError(f"node {self.name} has no link to {peer!r}")
        self.cut_links.add(peer)
        await runtime.stop()
        runtime.state = "cut"

    # -- observation ----------------------------------------------------------------------
    async def status(self) -> dict:
        waiting = await self.store.run(self.store.store.count_waiting)
        return dict(name=self.name, links=[r.status() for r in self.links.values()],
                    app_keys=waiting, relays_forwarded=self.relays_forwarded,
                    keys_read_whole=self.exposure.keys_read_whole, shares_read=self.exposure.shares_read)

    async def list_keys(self, peer: str = "") -> list[tuple[str, str, bytes, int]]:
        records = await self.store.run(self.store.store.records, peer)
        return [(r.key_id, r.peer, r.digest, r.bits) for r in records]


class _Launch:
    """A batch's keys enter the outbox once, when its first share has its pads and may leave."""

    def __init__(self, record: Callable[[], Awaitable[None]]) -> None:
        self._record = record
        self._task: asyncio.Future | None = None

    @property
    def started(self) -> bool:
        return self._task is not None

    async def __call__(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._record())
        await asyncio.shield(self._task)


def _pad_each(payloads: list[bytes], pads: np.ndarray) -> list[bytes]:
    """Each payload xor its own stretch of the concatenated pads (one numpy operation for all)."""
    padded = one_time_pad(b"".join(payloads), pads)
    out, start = [], 0
    for payload in payloads:
        out.append(padded[start:start + len(payload)])
        start += len(payload)
    return out


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
