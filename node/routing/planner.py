"""Routed relays: a strategy over live state, with a retry on another path after a failure.

Layer: node domain (no I/O of its own: the caller passes how to send, and how to refresh its
view). The orchestrator's relays and a KME's application key requests both run this loop. A
retry is a new relay: the source draws a new key and fresh link key for it, and the failed
attempt's link key has been discarded (and accounted) by the nodes that drew it, so pad material
is never reused. The failed hop is marked down in the live state until the next refresh.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable

from qkdnet.node.errors import NoKeyPath
from qkdnet.node.relay.result import RelayFailure, RelayResult, Route
from qkdnet.node.routing.base import RouteRequest, Strategy
from qkdnet.node.routing.live_state import LiveState, RoutingState
from qkdnet.node.routing.registry import make_strategy

Send = Callable[[list[list[str]]], Awaitable[RelayResult]]  # paths -> what the relay did
Refresh = Callable[[], Awaitable[None]]


class RoutePlanner:
    def __init__(self, strategy: Strategy, live: LiveState, retries: int = 1, need_key: bool = True,
                 reserve: bool = True) -> None:
        """need_key False: route over links short of key too, and let the relay wait for key.
        reserve False: do not hold back key between updates of the live state (a node's KME, whose
        view is republished every few seconds, then plans each destination once per view)."""
        self.strategy = strategy
        self.live = live
        self.retries = retries
        self.need_key = need_key
        self.reserve = reserve
        self._plans: dict[RouteRequest, list[list[str]]] = {}
        self._plans_version = -1

    @classmethod
    def for_state(cls, state: RoutingState, retries: int = 1, need_key: bool = False,
                  reserve: bool = False) -> RoutePlanner:
        """The planner a node builds from the routing state the orchestrator published."""
        return cls(make_strategy(state.strategy, **state.strategy_options), LiveState.from_routing_state(state),
                   retries, need_key, reserve)

    def plan(self, request: RouteRequest) -> list[list[str]]:
        """The strategy's routes on the live graph; the same request on the same view is planned once."""
        if self._plans_version != self.live.version:
            self._plans.clear()
            self._plans_version = self.live.version
        paths = self._plans.get(request)
        if paths is None:
            paths = self._plans[request] = self.strategy.routes(self.live.usable_graph(request, self.need_key), request)
        return [list(p) for p in paths]

    async def relay(self, request: RouteRequest, send: Send, refresh: Refresh | None = None) -> RelayResult:
        """Plan, send, and after a failure refresh, avoid the failed hop and try again."""
        started = time.perf_counter()
        paths: list[list[str]] = []
        failure: RelayFailure | None = None
        consumed = 0
        for attempt in range(1, self.retries + 2):
            try:
                paths = self.plan(request)
            except NoKeyPath as exc:
                return RelayResult(request.source, request.destination, Route.of(paths).paths,
                                   latency_s=time.perf_counter() - started, link_bits_consumed=consumed,
                                   attempts=attempt - 1, outcome="blocked" if attempt == 1 else "failed",
                                   failure=failure or RelayFailure.of(exc))
            if self.reserve:
                self.live.reserve(paths, request.bits_needed)
            result = await send(paths)
            consumed += result.link_bits_consumed
            if result.ok:
                return dataclasses.replace(result, latency_s=time.perf_counter() - started, attempts=attempt,
                                           link_bits_consumed=consumed)
            failure = result.failure
            if refresh is not None:
                await refresh()
            if failure is not None and failure.failed_hop:  # until a later refresh clears it
                self.live.mark_down(*failure.failed_hop)
        return RelayResult(request.source, request.destination, Route.of(paths).paths,
                           latency_s=time.perf_counter() - started, link_bits_consumed=consumed,
                           attempts=self.retries + 1, outcome="failed", failure=failure)
