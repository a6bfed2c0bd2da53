"""Routed relays ordered by the orchestrator: ``node.routing.RoutePlanner`` over the network.

Layer: control plane. The same planner routes a KME's application key requests at the node; here
it plans over the orchestrator's own live state, refreshed from node status after a failure,
and sends through ``Network.relay``.
"""

from __future__ import annotations

from qkdnet.node.relay.result import RelayResult
from qkdnet.node.routing import LiveState, RoutePlanner, RouteRequest, Strategy
from qkdnet.orchestrator.network import Network


class Router:
    def __init__(self, network: Network, strategy: Strategy, live: LiveState | None = None,
                 retries: int = 1, need_key: bool = True) -> None:
        """need_key False: route over links short of key too, and let the relay wait for key."""
        self.network = network
        self.planner = RoutePlanner(strategy, live or LiveState.of(network.topology), retries, need_key)

    @property
    def live(self) -> LiveState:
        return self.planner.live

    async def refresh(self) -> None:
        self.live.update(await self.network.status())

    def plan(self, request: RouteRequest) -> list[list[str]]:
        return self.planner.plan(request)

    async def relay(self, request: RouteRequest, timeout_s: float = 10.0) -> RelayResult:
        async def send(paths: list[list[str]]) -> RelayResult:
            return await self.network.relay(request.source, request.destination, request.count, request.key_bits,
                                            timeout_s, paths)

        return await self.planner.relay(request, send, self.refresh)
