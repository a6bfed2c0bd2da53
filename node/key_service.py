"""Key delivery to applications (SAEs): the domain behind the ETSI GS QKD 014 API.

Layer: node domain, no HTTP. A master SAE asks this KME for keys shared with a slave SAE; the
keys are drawn here and relayed to the slave's KME, routed as the orchestrator routes its own
relays (the network's strategy over the live state it last published, a retry on another path
after a failed hop). The slave's KME stores them durably before the relay is acknowledged; only
then does the master get them. A slave SAE later fetches them by key ID at its own KME, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from qkdnet.node.errors import InvalidRequest, KeyNotAvailable, NodeError, Unavailable
from qkdnet.node.keystore.app_store import NewKey
from qkdnet.node.keystore.store import AsyncKeys
from qkdnet.node.relay.engine import RelayEngine, RelayLinks
from qkdnet.node.relay.result import RelayResult, Route
from qkdnet.node.routing import RoutePlanner, RouteRequest
from qkdnet.node.settings import KmeSettings
from qkdnet.node.trusted_node import TrustedNode

RELAY_TIMEOUT_S = 10.0
EXPIRY_SWEEP_S = 5.0

log = logging.getLogger("node")


@dataclass(frozen=True)
class PairStatus:
    source_kme: str
    target_kme: str
    stored_key_count: int


class KeyService:
    def __init__(self, name: str, kme: KmeSettings, sae_nodes: Mapping[str, str], keys: AsyncKeys,
                 relay: RelayEngine, links: RelayLinks, routing: Callable[[], RoutePlanner],
                 relay_timeout_s: float = RELAY_TIMEOUT_S) -> None:
        """``routing`` gives the node's current planner (it changes as the orchestrator publishes);
        ``relay_timeout_s``: how long a request may wait for link key on the way."""
        self.name = name
        self.relay_timeout_s = relay_timeout_s
        self.kme = kme
        self._sae_nodes = dict(sae_nodes)
        self._keys = keys
        self._relay = relay
        self._links = links
        self._routing = routing
        self._sweeper: asyncio.Task | None = None

    @classmethod
    def of(cls, node: TrustedNode, kme: KmeSettings) -> KeyService:
        """The key service of a configured node."""
        sae_nodes = node.settings.sae_nodes if node.settings else {}
        return cls(node.name, kme, sae_nodes, node.store.keys, node.relay, node.links, lambda: node.routing)

    @property
    def kme_id(self) -> str:
        return self.name

    def local_saes(self) -> set[str]:
        return {sae for sae, node in self._sae_nodes.items() if node == self.name}

    def knows(self, sae: str) -> bool:
        return sae in self._sae_nodes

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_expired())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    def status(self, master_sae: str, slave_sae: str) -> PairStatus:
        """``stored_key_count``: keys of the default size the first-hop link pool can pad now."""
        target = self._kme_of(slave_sae)
        if target == self.name:
            available = self.kme.max_key_per_request
        else:
            try:
                first_hop = self._routing().plan(RouteRequest(self.name, target, self.kme.default_key_size))[0][1]
                pool = self._links.pool_in_service(first_hop)
            except NodeError:
                available = 0
            else:
                available = pool.sendable_bits // self.kme.default_key_size
        return PairStatus(self.name, target, min(available, self.kme.max_keys))

    async def request_keys(self, master_sae: str, slave_sae: str, number: int, size_bits: int) -> list[tuple[str, bytes]]:
        target = self._kme_of(slave_sae)
        if target == self.name:  # both SAEs on this KME: no relay needed
            keys = [NewKey(str(uuid.uuid4()), self.name, secrets.token_bytes(size_bits // 8), master_sae, slave_sae)
                    for _ in range(number)]
            await self._keys.add(keys, "destination", self.kme.key_ttl_s or None)
            return [(k.key_id, k.material) for k in keys]
        delivered: list[NewKey] = []

        async def send(paths: list[list[str]]) -> RelayResult:
            route = Route.of(paths)
            started = time.perf_counter()
            try:
                keys = await self._relay.relay(route, number, size_bits, self.relay_timeout_s, master_sae, slave_sae)
            except NodeError as exc:
                return RelayResult.failed(self.name, target, paths, exc)
            delivered.extend(keys)
            return RelayResult(self.name, target, route.paths, tuple(k.key_id for k in keys),
                               time.perf_counter() - started, number * size_bits * route.hops)

        result = await self._routing().relay(RouteRequest(self.name, target, size_bits, number), send)
        if not result.ok:
            log.info("keys for %s at KME %s not relayed (%s): %s", slave_sae, target, result.outcome, result.error)
            raise Unavailable(_unavailable(target, result))
        return [(k.key_id, k.material) for k in delivered]

    async def fetch_keys(self, master_sae: str, slave_sae: str, key_ids: list[str]) -> list[tuple[str, bytes]]:
        return await self._keys.deliver(key_ids, "destination", master_sae, slave_sae)

    # -- internals ----------------------------------------------------------------------
    def _kme_of(self, sae: str) -> str:
        node = self._sae_nodes.get(sae)
        if node is None:
            raise InvalidRequest(f"unknown SAE {sae!r}")
        return node

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_S)
            await self._keys.expire()


def _unavailable(target: str, result: RelayResult) -> str:
    """What an SAE is told when keys cannot be supplied: what is missing, never internal link-key
    IDs or the route (those go to the node's log)."""
    if result.outcome == "blocked":
        return f"no usable route to KME {target} now"
    if result.failure is not None and result.failure.failed_hop:
        return f"a link on the way to KME {target} is short of key or out of service; try again later"
    return f"keys could not be relayed to KME {target} now; try again later"


__all__ = ["KeyNotAvailable", "KeyService", "PairStatus"]
