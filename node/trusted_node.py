"""A trusted node: its configuration, its link ends, its relay engine and what it reports.

Layer: node domain; no grpc imports. Everything a node talks to is given to its constructor:
the durable store and a factory of peer clients (the RPC layer supplies ``GrpcPeer``; tests
supply in-process peers). The relay engine exists from the start and sees the links through
``LinkSet``; ``configure`` fills that set, restores each pool from the store and reconciles it
with the neighbour, then starts the BB84 engines. Key material stays here: status and key
listings carry counts, IDs and salted digests only.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from qkdnet.node.errors import Conflict, InvalidRequest, NotFound
from qkdnet.node.identity import check_neighbour
from qkdnet.node.impairment import Impairment
from qkdnet.node.keystore.link_pool import LinkKeyPool
from qkdnet.node.keystore.store import NodeStore
from qkdnet.node.link_runtime import FrameForPeer, LinkRuntime, Resync
from qkdnet.node.links import LinkEnd, LinkSet, Peer
from qkdnet.node.pool_keeper import PoolKeeper
from qkdnet.node.relay.engine import RelayEngine
from qkdnet.node.routing import RoutePlanner, RoutingState, make_strategy
from qkdnet.node.settings import ClockMode, LinkSettings, NodeSettings, Role
from qkdnet.node.status import KeyEntry, NodeStatus
from qkdnet.node.virtual_clock import VirtualClock

PeerFactory = Callable[[str, str], Peer]  # (peer name, peer address) -> client


class TrustedNode:
    def __init__(self, name: str, peer_factory: PeerFactory, store: NodeStore) -> None:
        self.name = name
        self.store = store
        self.settings: NodeSettings | None = None
        self.links = LinkSet(name)
        self.keeper = PoolKeeper(store.links)
        self.relay = RelayEngine(name, self.links, self.keeper, store, destination_ttl_s=self._key_ttl_s)
        self.routing = RoutePlanner.for_state(RoutingState())
        self._peer_factory = peer_factory
        self.metrics_url = ""  # where Prometheus scrapes this node, once the process serves it
        self.clock: VirtualClock | None = None  # virtual time only: advanced by the controller

    # -- configuration --------------------------------------------------------------------
    async def configure(self, settings: NodeSettings) -> None:
        if settings.name != self.name:
            raise InvalidRequest(f"configuration for {settings.name!r} sent to node {self.name!r}")
        if self.settings is not None:
            raise Conflict(f"node {self.name!r} is already configured")
        self.settings = settings
        if settings.fresh_start:  # before anything is opened: nothing of an earlier network is reused
            await self.store.keys.revoke_all("fresh start asked by the controller")
            await self.store.links.erase_all()
        if settings.kme is not None:  # the ETSI max_key_count is the store's limit
            await self.store.keys.set_max_keys(settings.kme.max_keys)
        self.set_routing(settings.routing)
        if settings.clock is ClockMode.VIRTUAL:
            self.clock = VirtualClock()
            # The clock stands still while a relay runs: key not there now would not come.
            self.relay.waits_for_key = False
        restored = set()
        for link in settings.links:
            pool = LinkKeyPool(link.role.send_half, link.pool_capacity_bits)
            if await self.keeper.open(link.peer, link.link_id, pool):
                restored.add(link.peer)
            runtime = LinkRuntime(link, pool, settings.time_scale, self.clock)
            if link.role is Role.TRANSMITTER:  # a fault put on the channel before this node restarted
                fields = await self.store.links.load_impairment(link.link_id)
                if fields is not None:
                    runtime.impairment = Impairment(**fields)
            self.links.add(LinkEnd(link, pool, runtime, self._peer_factory(link.peer, link.peer_address)))
        await asyncio.gather(*(self.keeper.reconcile_with(end.settings.peer, end.peer, end.settings.peer in restored)
                               for end in self.links))
        for end in self.links:
            end.runtime.start(end.peer)
        self.keeper.start()
        await self.relay.outbox.resume()

    @property
    def configured(self) -> bool:
        return self.settings is not None

    def set_routing(self, state: RoutingState) -> None:
        """The orchestrator's latest view of the network, for routing application key requests."""
        make_strategy(state.strategy, **state.strategy_options)  # refuse a bad one before replacing
        self.routing = RoutePlanner.for_state(state)
        for end in self.links:
            if end.cut:  # what this node knows first-hand overrides a view that may be older
                self.routing.live.mark_down(self.name, end.settings.peer)

    def neighbours(self) -> frozenset[str]:
        """The peers configured now: the only nodes that may call this one's Link and Relay."""
        return frozenset(end.settings.peer for end in self.links)

    async def on_reconcile(self, link_id: str, inventory: dict) -> dict:
        peer = self.links.by_id(link_id).settings.peer
        check_neighbour(peer, f"reconcile link {link_id}")
        return await self.keeper.on_reconcile(peer, inventory)

    async def reset_link(self, link: LinkSettings) -> None:
        """The peer restarted: run the link afresh (new authentication secret); the pool stays,
        and the restarted peer reconciles it with its own durable copy."""
        end = self.links.by_peer(link.peer)
        if end.settings.link_id != link.link_id or self.settings is None:
            raise NotFound(f"node {self.name} has no link {link.link_id!r} to {link.peer!r}")
        await self._renew(end, link)
        if not end.cut:
            end.runtime.start(end.peer)

    async def restore_link(self, link: LinkSettings) -> None:
        """The cut is repaired: run the link afresh (new authentication secret) on its pool.

        The receiving end is restored first. The transmitting end then reconciles the two pools
        (a relay cut short may have drawn key at one end only) before its first block.
        """
        end = self.links.by_peer(link.peer)
        if end.settings.link_id != link.link_id or self.settings is None:
            raise NotFound(f"node {self.name} has no link {link.link_id!r} to {link.peer!r}")
        if not end.cut:
            raise Conflict(f"link {link.link_id} is in service at {self.name}: there is no cut to restore")
        await self._renew(end, link)
        if link.role is Role.TRANSMITTER:
            await self.keeper.reconcile_with(link.peer, end.peer, restored=False)
        end.cut = False
        end.runtime.start(end.peer)

    async def set_impairment(self, peer: str, impairment: Impairment) -> None:
        """A fault on the quantum channel to ``peer`` (``Impairment()`` ends it), applied by this
        node as the link's transmitter from its next block on. It is stored first, so it is
        still there when this node restarts (a drift starts again from zero then)."""
        end = self.links.by_peer(peer)
        if end.settings.role is not Role.TRANSMITTER:
            raise InvalidRequest(f"{self.name} receives on link {end.settings.link_id}: its transmitter "
                                 f"{peer} owns the channel")
        await self.store.links.save_impairment(end.settings.link_id,
                                               None if impairment.healthy else dataclasses.asdict(impairment))
        end.runtime.impairment = impairment
        end.runtime.impaired_since_s = self._fault_time_s(end.runtime)

    def _fault_time_s(self, runtime: LinkRuntime) -> float:
        """When a fault starts on a link: the network's clock in virtual time, the link's own
        emulated time in real time."""
        return self.clock.now_s if self.clock is not None else runtime.emulated_seconds

    async def _renew(self, end: LinkEnd, link: LinkSettings) -> None:
        """A fresh engine for the link end (same pool); a fault on the channel stays."""
        await end.runtime.stop()
        impairment = end.runtime.impairment
        end.settings = link
        end.runtime = LinkRuntime(link, end.pool, self.settings.time_scale if self.settings else 0.0, self.clock)
        end.runtime.impairment = impairment
        end.runtime.impaired_since_s = self._fault_time_s(end.runtime)

    async def set_link_down(self, peer: str) -> None:
        """A fibre cut on this end: stop generating, refuse relays over it, keep its pool."""
        end = self.links.by_peer(peer)
        end.cut = True
        self.routing.live.mark_down(self.name, peer)
        await end.runtime.stop()

    async def close(self) -> None:
        await self.relay.close()
        for end in self.links:
            await end.runtime.stop()
        await self.keeper.close()
        for end in self.links:
            await end.peer.close()

    # -- link engine entry points (receiver side) -----------------------------------------
    def _runtime(self, link_id: str) -> LinkRuntime:
        end = self.links.by_id(link_id)
        check_neighbour(end.settings.peer, f"run link {link_id}")
        if end.cut:
            raise NotFound(f"link {link_id!r} is out of service at {self.name}")
        return end.runtime

    async def on_frame(self, frame: FrameForPeer) -> list[bytes]:
        return await self._runtime(frame.link_id).on_frame(frame)

    async def on_exchange(self, link_id: str, frame_id: int, envelopes: list[bytes]) -> tuple[list[bytes], bool]:
        return await self._runtime(link_id).on_exchange(frame_id, envelopes)

    async def on_resync(self, request: Resync) -> Resync:
        return await self._runtime(request.link_id).on_resync(request)

    # -- virtual time -----------------------------------------------------------------------
    async def advance_clock(self, to_s: float, horizon_s: float | None = None) -> NodeStatus:
        """Advance this node's clock to ``to_s``; the status once every link it transmits on
        settled there (a receiving end holds a block ending by ``to_s`` once its transmitter
        settled: it records the block before it answers the transmitter's last message)."""
        if self.clock is None:
            raise Conflict(f"node {self.name} runs in real time: there is no clock to advance")
        if not to_s >= 0:  # also NaN
            raise InvalidRequest(f"cannot advance the clock to {to_s} s")
        self.clock.advance(to_s, horizon_s)
        await self.clock.settled(to_s)
        return await self.status()

    # -- observation ----------------------------------------------------------------------
    async def status(self, kme_url: str = "") -> NodeStatus:
        return NodeStatus(name=self.name, links=tuple(end.status() for end in self.links),
                          app_keys=await self.store.keys.count_waiting(),
                          relays_forwarded=self.relay.relays_forwarded,
                          keys_read_whole=self.relay.exposure.keys_read_whole,
                          shares_read=self.relay.exposure.shares_read, kme_url=kme_url,
                          metrics_url=self.metrics_url)

    async def list_keys(self, peer: str, salt: bytes) -> list[KeyEntry]:
        """Keys for comparison with the other end (salted digests, never keys)."""
        return await self.store.keys.listing(peer, salt)

    async def revoke(self, key_ids: list[str], reason: str) -> None:
        await self.store.keys.revoke(key_ids, reason)

    def _key_ttl_s(self) -> float | None:
        kme = self.settings.kme if self.settings else None
        return kme.key_ttl_s if kme and kme.key_ttl_s > 0 else None


__all__ = ["PeerFactory", "TrustedNode"]
