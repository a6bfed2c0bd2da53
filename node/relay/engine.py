"""The relay engine: source, forward and abort of end-to-end keys, hop by hop with one-time pads.

Layer: node domain (no grpc). Everything it works with is given to its constructor: the links
(pools in service and neighbours), the lease keeper that makes pads durable before they leave,
the key store (end-to-end keys and the relay outbox), and what a destination and an
intermediate keep (share assembler, exposure log).

One relay, at the source: concurrent requests for the same route, key size and SAEs share one
batch (``Coalescer``); the batch draws its keys, records their IDs in the outbox once the first
pads are drawn, pads each share for its first hop, leases the pads, and sends one message per
hop (a second ``Coalescer`` shares first-hop messages between batches). Each hop takes the
pads by ID, decrypts, re-pads for the next hop and forwards; the destination stores the key (or,
for multipath, the last share completes it). Once every share arrived the source commits the
keys, which settles the outbox in the same transaction; a failed, timed-out or cancelled batch
is aborted at the destination instead (presumed abort, ``node.relay.outbox``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter, Histogram

from qkdnet.node import hold_points
from qkdnet.node.errors import (
    BadLinkKey,
    InvalidRequest,
    KeyPoolError,
    LinkKeyShortage,
    NodeError,
    RelayError,
    StoreError,
)
from qkdnet.node.identity import check_neighbour
from qkdnet.node.keystore.app_store import NewKey
from qkdnet.node.keystore.link_pool import LinkKeyPool
from qkdnet.node.keystore.store import NodeStore
from qkdnet.node.relay.coalescer import Coalescer
from qkdnet.node.relay.otp import pad_each
from qkdnet.node.relay.outbox import ABORT_REASON, RelayOutbox
from qkdnet.node.relay.result import Path, RelayItem, RelayResult, Route
from qkdnet.node.relay.shares import ExposureLog, ShareAssembler, split_key

HOP_KEY_WAIT_S = 30.0  # how long an intermediate node waits for link key to the next hop
# How long a hop waits for a block its neighbour already sends from: a link's receiver keeps a
# block as it sends its last answer, the transmitter only once that answer has arrived, so a
# relay from the receiver can come first by a few milliseconds.
BLOCK_ARRIVAL_WAIT_S = 2.0
ABORT_TIMEOUT_S = 10.0  # one attempt to carry an abort to the destination
# Relay batches per route under way at once: more keeps every hop of a long path busy (a batch
# spends most of its time in transit), fewer makes larger batches (less CPU per key).
BATCHES_IN_FLIGHT = 4
RELAY_OUTCOMES = ("delivered", "timed_out", "no_link_key", "store", "failed")
RELAY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RelayPeer(Protocol):
    async def forward(self, path: Path, hop: int, items: list[RelayItem]) -> None: ...

    async def abort(self, path: Path, hop: int, key_ids: list[str]) -> None: ...


class RelayLinks(Protocol):
    """What the engine needs of the node's links (``node.links.LinkSet``)."""

    def pool_in_service(self, peer: str) -> LinkKeyPool: ...

    def neighbour(self, peer: str) -> RelayPeer: ...


class LeaseKeeper(Protocol):
    """Makes allocated pads durable before they leave (``node.pool_keeper.PoolKeeper``)."""

    async def lease(self, peer: str, link_keys: list) -> None: ...


@dataclass(frozen=True)
class Batch:
    """What requests must share to travel together: the route, the key size and the SAE pair."""

    route: Route
    key_bits: int
    master_sae: str = ""
    slave_sae: str = ""


class RelayEngine:
    def __init__(self, name: str, links: RelayLinks, keeper: LeaseKeeper, store: NodeStore,
                 assembler: ShareAssembler | None = None, exposure: ExposureLog | None = None,
                 hop_key_wait_s: float = HOP_KEY_WAIT_S, destination_ttl_s: Callable[[], float | None] = lambda: None,
                 ) -> None:
        self.name = name
        self._links = links
        self._keeper = keeper
        self._keys = store.keys
        self.assembler = assembler or ShareAssembler()
        self.exposure = exposure or ExposureLog()
        self._hop_key_wait_s = hop_key_wait_s
        # False in virtual time, where the clock stands still during a relay: key that is not
        # in a pool now will not come while the relay waits, so none waits for it.
        self.waits_for_key = True
        self._destination_ttl_s = destination_ttl_s
        self.outbox = RelayOutbox(store.outbox, self._send_abort)
        self.relays_forwarded = 0
        # Relays started here, by outcome: what the node's /metrics reports.
        self.relays = Counter("qkdnet_relays", "End-to-end relays started at this node, by outcome",
                              ["outcome"], registry=None)
        self.relay_seconds = Histogram("qkdnet_relay_duration_seconds",
                                       "Time from a relay's request at its source to its outcome",
                                       ["outcome"], buckets=RELAY_BUCKETS_S, registry=None)
        for outcome in RELAY_OUTCOMES:  # every outcome reported from the start, at zero
            self.relays.labels(outcome)
            self.relay_seconds.labels(outcome)
        self._share_waiters: dict[str, asyncio.Future[None]] = {}  # destination: shares answered when stored
        self._batches: Coalescer[Batch, float] = Coalescer(self._relay_batch, BATCHES_IN_FLIGHT)
        self._first_hops: Coalescer[Path, RelayItem] = Coalescer(self._send_first_hop, BATCHES_IN_FLIGHT)

    # -- source ---------------------------------------------------------------------------
    async def relay(self, route: Route, count: int, key_bits: int, timeout_s: float,
                    master_sae: str = "", slave_sae: str = "") -> list[NewKey]:
        """Draw ``count`` keys here and relay them along ``route``; they are kept once delivered.

        With SAEs named (an ETSI request) the keys go to the master SAE, so this node records
        them as delivered and keeps no copy; otherwise it keeps them for comparison. With k > 1
        paths each key travels as k XOR shares, so no intermediate node sees more than one
        share; a share's link key is accounted on its own path either way.
        """
        route.check(self.name)
        if key_bits <= 0 or key_bits % 8:
            raise InvalidRequest("key size must be a positive multiple of 8 bits")
        if count <= 0:
            raise InvalidRequest("count must be positive")
        started = time.perf_counter()
        outcome = "failed"
        try:
            keys = await self._batches.send(Batch(route, key_bits, master_sae, slave_sae), [timeout_s] * count)
            outcome = "delivered"
        except TimeoutError:
            outcome = "timed_out"
            raise
        except LinkKeyShortage:
            outcome = "no_link_key"
            raise
        except StoreError:
            outcome = "store"
            raise
        finally:
            self.relays.labels(outcome).inc()
            self.relay_seconds.labels(outcome).observe(time.perf_counter() - started)
        return keys or []

    async def order(self, route: Route, count: int, key_bits: int, timeout_s: float) -> RelayResult:
        """A relay ordered by the orchestrator: its result, the keys stay here."""
        started = time.perf_counter()
        try:
            keys = await self.relay(route, count, key_bits, timeout_s)
        except NodeError as exc:
            return RelayResult.failed(self.name, route.destination, route.paths, exc)
        return RelayResult(self.name, route.destination, route.paths, tuple(k.key_id for k in keys),
                           time.perf_counter() - started, count * key_bits * route.hops)

    async def _relay_batch(self, batch: Batch, timeouts_s: list[float]) -> list[NewKey]:
        """Relay the keys of several requests at once (one timeout per key; the shortest rules).

        If any part fails, every request of the batch fails.
        """
        total = len(timeouts_s)
        if not batch.master_sae and self._keys.room < total:  # refused before any pad is spent
            raise RelayError(f"{self.name}: key store full ({self._keys.max_keys} keys)")
        destination = batch.route.destination
        keys = [NewKey(str(uuid.uuid4()), destination, secrets.token_bytes(batch.key_bits // 8), batch.master_sae,
                       batch.slave_sae) for _ in range(total)]
        key_ids = [k.key_id for k in keys]
        paths = [list(p) for p in batch.route.paths]
        launch = _Launch(lambda: self.outbox.open(key_ids, paths))
        try:
            await self._send_and_commit(batch, keys, min(timeouts_s), launch)
        except BaseException:  # failed, timed out or cancelled: the destination may hold them
            if launch.started:  # else nothing left this node (no link key, say): nothing to abort
                self.outbox.abandon(key_ids, paths)
            raise
        return keys

    async def _send_and_commit(self, batch: Batch, keys: list[NewKey], timeout_s: float, launch: _Launch) -> None:
        """Send every share; once all arrived, commit the keys here (which settles the outbox)."""
        paths = batch.route.paths
        if len(paths) == 1:
            await self._send_share(paths[0], keys, [k.material for k in keys], 0, 0, timeout_s, launch)
        else:
            shares = [split_key(k.material, len(paths)) for k in keys]
            sends = [asyncio.ensure_future(self._send_share(path, keys, [s[i] for s in shares], i + 1, len(paths),
                                                            timeout_s, launch)) for i, path in enumerate(paths)]
            # The first failed share fails the key: stop waiting for the others (the abort that
            # follows withdraws whatever of them arrives), rather than hold the relay open.
            await asyncio.wait(sends, return_when=asyncio.FIRST_EXCEPTION)
            for send in sends:
                send.cancel()
            results = await asyncio.gather(*sends, return_exceptions=True)
            failed = [r for r in results if isinstance(r, Exception)]
            if failed:
                hops = [f.failed_hop for f in failed if isinstance(f, RelayError) and f.failed_hop]
                raise RelayError("; ".join(str(f) for f in failed), hops[-1] if hops else None)
            if any(isinstance(r, BaseException) for r in results):  # cancelled from outside
                raise asyncio.CancelledError
        await hold_points.reached(hold_points.SOURCE_COMMIT)
        try:
            if batch.master_sae:
                await self._keys.add_delivered(keys)
            else:
                await self._keys.add(keys, "source")
        except StoreError as exc:  # the caller's abandon withdraws them at the destination
            raise RelayError(f"{self.name}: key store refused the relayed keys: {exc}") from None

    async def _send_share(self, path: Path, keys: list[NewKey], payloads: list[bytes], share_index: int,
                          share_count: int, timeout_s: float, launch: _Launch) -> None:
        """Pad each payload with fresh link key to path[1] and send; on failure the pads are discarded."""
        pool = self._links.pool_in_service(path[1])
        try:  # all pads or none
            link_keys, pads = await pool.allocate_many_waiting([8 * len(p) for p in payloads],
                                                               timeout_s if self.waits_for_key else 0.0)
        except KeyPoolError as exc:
            raise RelayError(f"{self.name}->{path[1]}: {exc}", (self.name, path[1])) from None
        try:
            await launch()
        except Exception as exc:
            pool.discard(pads.size, "relay not recorded at its source")
            raise RelayError(f"{self.name}: key store refused the relay: {_describe(exc)}") from None
        items = [RelayItem(key.key_id, ciphertext, link_key, key.master_sae, key.slave_sae, share_index, share_count)
                 for key, ciphertext, link_key in zip(keys, pad_each(payloads, pads), link_keys, strict=True)]
        try:
            await self._keeper.lease(path[1], link_keys)  # durable before they leave
            async with asyncio.timeout(timeout_s):
                await self._first_hops.send(path, items)
        except asyncio.CancelledError:
            pool.discard(sum(8 * len(i.ciphertext) for i in items), "relay given up (another share failed)")
            raise
        except Exception as exc:
            pool.discard(sum(8 * len(i.ciphertext) for i in items), "relay failed downstream")
            raise RelayError(f"relay via {path[1]} failed: {_describe(exc)}", _failed_hop(exc)) from None

    async def _send_first_hop(self, path: Path, items: list[RelayItem]) -> None:
        await self._links.neighbour(path[1]).forward(path, 1, items)

    # -- intermediate and destination -----------------------------------------------------
    async def forward(self, path: Path, hop: int, items: list[RelayItem]) -> None:
        """One hop: take the pads shared with the previous node, then store the keys here (the
        destination) or pad them afresh for the next hop and forward them."""
        if not 1 <= hop < len(path) or path[hop] != self.name:
            raise InvalidRequest(f"node {self.name} is not hop {hop} of {list(path)}")
        if len(set(path)) != len(path):
            raise InvalidRequest("relay path visits a node twice")
        check_neighbour(path[hop - 1], f"forward as hop {hop - 1} of {list(path)}")
        previous = self._links.pool_in_service(path[hop - 1])
        await _blocks_recorded(previous, {item.link_key.frame_id for item in items})
        try:
            pads = previous.take_many([item.link_key for item in items])
        except KeyPoolError as exc:
            previous.discard(exc.taken_bits, "relay rejected: bad link key")
            raise BadLinkKey(f"{self.name}: {exc}") from None
        taken_bits = pads.size
        if any(8 * len(i.ciphertext) != i.link_key.length for i in items):
            previous.discard(taken_bits, "relay rejected: bad link key")
            raise BadLinkKey(f"{self.name}: a ciphertext's length differs from its link key's")
        materials = pad_each([i.ciphertext for i in items], pads)
        self.relays_forwarded += len(items)
        try:
            if hop == len(path) - 1:
                await self._arrive(path[0], items, materials, previous, taken_bits)
            else:
                await self._pass_on(path, hop, items, materials, previous, taken_bits)
        finally:
            materials.clear()

    async def _arrive(self, source: str, items: list[RelayItem], materials: list[bytes], previous: LinkKeyPool,
                      taken_bits: int) -> None:
        """Destination: store the keys now whole (a whole key, or the last missing share).

        A share is answered only once its key is stored (or has failed): so the source, which
        commits a multipath key when every share's forward has returned, never holds a key the
        destination does not. Shares still waiting fail after the assembler's lifetime.
        """
        arrived: list[NewKey] = []
        waiting: list[str] = []
        try:
            self._whole_keys(source, items, materials, arrived, waiting)
            if arrived:
                await self._keys.add(arrived, "destination", self._destination_ttl_s())
        except (ValueError, StoreError) as exc:
            previous.discard(taken_bits, f"relay rejected: {exc}")
            failure = exc if isinstance(exc, StoreError) else InvalidRequest(f"{self.name}: {exc}")
            self._settle_shares([k.key_id for k in arrived] + waiting, failure)
            for key_id in waiting:  # nobody will wait for these now
                self._share_waiters.pop(key_id, None)
            raise failure from None
        self._settle_shares([k.key_id for k in arrived], None)
        if waiting:
            try:
                # A key already on record and not just completed by its other share was aborted
                # before this share came (a tombstone): refuse the share now, not after the TTL.
                known = set(await self._keys.known(waiting))
                if any(k in known and not self._share_waiters[k].done() for k in waiting):
                    self.assembler.drop(waiting)
                    withdrawn = RelayError(f"{self.name}: a share arrived for a key already withdrawn")
                    self._settle_shares(waiting, withdrawn)
                    for key_id in waiting:
                        self._share_waiters.pop(key_id, None)
                    raise withdrawn
                await self._await_shares(waiting)
            except NodeError:  # timed out, aborted, or the key failed to store with its last share
                previous.discard(taken_bits, "relay failed: the key's other shares did not complete it")
                raise

    async def _await_shares(self, key_ids: list[str]) -> None:
        """Until every key here is stored (its last share arrived) or has failed."""
        waiters = [self._share_waiters[k] for k in key_ids]
        try:
            async with asyncio.timeout(self.assembler.ttl_s):
                await asyncio.gather(*[asyncio.shield(w) for w in waiters])
        except TimeoutError:
            self.assembler.drop(key_ids)
            failure = RelayError(f"{self.name}: the other shares of {len(key_ids)} key(s) did not arrive within "
                                 f"{self.assembler.ttl_s:g} s")
            self._settle_shares(key_ids, failure)
            raise failure from None
        finally:
            for key_id in key_ids:
                self._share_waiters.pop(key_id, None)

    def _settle_shares(self, key_ids: list[str], failure: NodeError | None) -> None:
        """Answer the shares waiting for these keys: stored (None) or failed. The waiting side
        removes its waiters once it has its answer."""
        for key_id in key_ids:
            waiter = self._share_waiters.get(key_id)
            if waiter is None or waiter.done():
                continue
            if failure is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(failure)
                waiter.exception()  # retrieved here: a waiter nobody awaits any more is not an error

    async def _pass_on(self, path: Path, hop: int, items: list[RelayItem], materials: list[bytes],
                       previous: LinkKeyPool, taken_bits: int) -> None:
        for item in items:
            self.exposure.record(item.key_id, item.share_index, item.share_count)
        following_peer = path[hop + 1]
        try:
            following = self._links.pool_in_service(following_peer)
        except RelayError:
            previous.discard(taken_bits, "relay failed: next link out of service")
            raise
        sent_bits = 0
        try:
            link_keys, pads = await following.allocate_many_waiting(
                [8 * len(m) for m in materials], self._hop_key_wait_s if self.waits_for_key else 0.0)
            sent_bits = pads.size
            onward = [RelayItem(item.key_id, ciphertext, link_key, item.master_sae, item.slave_sae,
                                item.share_index, item.share_count)
                      for item, ciphertext, link_key in zip(items, pad_each(materials, pads), link_keys, strict=True)]
            await self._keeper.lease(following_peer, link_keys)
            await self._links.neighbour(following_peer).forward(path, hop + 1, onward)
        except Exception as exc:
            previous.discard(taken_bits, "relay failed downstream")
            following.discard(sent_bits, "relay failed downstream")
            hop_at_fault = _failed_hop(exc) or (self.name, following_peer)
            raise RelayError(f"{self.name}->{following_peer}: {_describe(exc)}", hop_at_fault) from None

    def _whole_keys(self, source: str, items: list[RelayItem], materials: list[bytes], whole: list[NewKey],
                    waiting: list[str]) -> None:
        """Fill ``whole`` with the keys now whole and ``waiting`` with the IDs of keys that still
        wait for shares, as it goes (so a bad share part-way leaves both lists true)."""
        for item, material in zip(items, materials, strict=True):
            if item.share_count:
                complete = self.assembler.add(item.key_id, item.share_index, item.share_count, material, source,
                                              item.master_sae, item.slave_sae)
                if complete is None:
                    waiting.append(item.key_id)
                    # Registered now, before any await: a share completing it meanwhile finds it.
                    self._share_waiters.setdefault(item.key_id, asyncio.get_running_loop().create_future())
                    continue
                material = complete
            whole.append(NewKey(item.key_id, source, material, item.master_sae, item.slave_sae))

    # -- presumed abort -------------------------------------------------------------------
    async def abort(self, path: Path, hop: int, key_ids: list[str]) -> None:
        """Carry a source's abort one hop; at the destination, withdraw the keys.

        No link key is involved, so an abort also crosses links taken out of service.
        """
        if not 1 <= hop < len(path) or path[hop] != self.name:
            raise InvalidRequest(f"node {self.name} is not hop {hop} of {list(path)}")
        check_neighbour(path[hop - 1], f"abort as hop {hop - 1} of {list(path)}")
        if hop < len(path) - 1:
            await self._links.neighbour(path[hop + 1]).abort(path, hop + 1, key_ids)
            return
        self.assembler.drop(key_ids)
        self._settle_shares(key_ids, RelayError(f"{self.name}: the source aborted the relay"))
        await self._keys.withdraw_arrivals(key_ids, path[0], ABORT_REASON)

    async def _send_abort(self, path: list[str], key_ids: list[str]) -> None:
        async with asyncio.timeout(ABORT_TIMEOUT_S):
            await self._links.neighbour(path[1]).abort(tuple(path), 1, key_ids)

    async def close(self) -> None:
        self._settle_shares(list(self._share_waiters), RelayError(f"{self.name}: node stopping"))
        await self.outbox.close()


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


async def _blocks_recorded(pool: LinkKeyPool, frame_ids: set[int]) -> None:
    """Wait (a little) until this end holds every block the pads come from; if one never comes,
    taking the pads reports it as unknown."""
    if all(pool.holds_block(f) for f in frame_ids):
        return
    try:
        async with asyncio.timeout(BLOCK_ARRIVAL_WAIT_S):
            while not all(pool.holds_block(f) for f in frame_ids):
                await pool.changed()
    except TimeoutError:
        pass


def _failed_hop(exc: BaseException) -> tuple[str, str] | None:
    return exc.failed_hop if isinstance(exc, RelayError) else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


__all__ = ["BATCHES_IN_FLIGHT", "Batch", "RelayEngine", "RelayLinks", "RelayPeer"]
