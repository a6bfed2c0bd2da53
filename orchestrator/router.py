"""Routed relays: a strategy over live state, with a retry on another path after a failure.

Layer: orchestrator, control plane. A retry is a new relay: the source draws a new key and
fresh link key for it, and the failed attempt's link key has been discarded (and accounted) by
the nodes that drew it, so pad material is never reused.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from orchestrator.errors import NoKeyPath
from orchestrator.live_state import LiveState
from orchestrator.network import Network, RelayReport
from orchestrator.routing.base import RouteRequest, Strategy

_FAILED_HOP = re.compile(r"([\w.-]+)->([\w.-]+):")


@dataclass(frozen=True)
class RoutedRelay:
    request: RouteRequest
    outcome: str  # "delivered", "blocked" (no usable route) or "failed" (every attempt failed)
    paths: list[list[str]] = field(default_factory=list)
    key_ids: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    attempts: int = 0
    link_bits_consumed: int = 0
    error: str = ""


def failed_links(error: str) -> list[tuple[str, str]]:
    """The hops a node error names ("A->B: ..."), innermost last."""
    return _FAILED_HOP.findall(error)


class Router:
    def __init__(self, network: Network, strategy: Strategy, live: LiveState | None = None,
                 retries: int = 1, need_key: bool = True) -> None:
        """need_key False: route over links short of key too, and let the relay wait for key."""
        self.network = network
        self.need_key = need_key
        self.strategy = strategy
        self.live = live or LiveState(network.topology)
        self.retries = retries

    async def refresh(self) -> None:
        self.live.update(await self.network.status())

    def plan(self, request: RouteRequest) -> list[list[str]]:
        return self.strategy.routes(self.live.usable_graph(request, self.need_key), request)

    async def relay(self, request: RouteRequest, timeout_s: float = 10.0) -> RoutedRelay:
        started = time.perf_counter()
        paths: list[list[str]] = []
        error = ""
        consumed = 0
        for attempt in range(1, self.retries + 2):
            try:
                paths = self.plan(request)
            except NoKeyPath as exc:
                outcome = "blocked" if attempt == 1 else "failed"
                return RoutedRelay(request, outcome, paths, [], time.perf_counter() - started, attempt - 1,
                                   consumed, error or str(exc))
            self.live.reserve(paths, request.bits_needed)
            report: RelayReport = await self.network.relay(request.source, request.destination, request.count,
                                                           request.key_bits, timeout_s, paths)
            consumed += report.link_bits_consumed
            if not report.error:
                return RoutedRelay(request, "delivered", paths, report.key_ids, time.perf_counter() - started,
                                   attempt, consumed)
            error = report.error
            await self.refresh()
            for u, v in failed_links(error)[-1:]:  # the innermost failed hop, until a later poll clears it
                self.live.mark_down(u, v)
        return RoutedRelay(request, "failed", paths, [], time.perf_counter() - started, self.retries + 1,
                           consumed, error)
