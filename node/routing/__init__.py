"""Routing: pure strategies over the live graph, the live state they see, and the retry loop.

Layer: node domain (networkx only; no grpc, no I/O). One routing world: the orchestrator's
relays and a KME's application key requests both go through ``RoutePlanner`` with a strategy
from ``STRATEGIES`` over a ``LiveState``. Adding a strategy: a small module with a class that
has ``name`` and ``routes(graph, request)``, and a line in ``registry.STRATEGIES``.
"""

from qkdnet.node.errors import NoKeyPath
from qkdnet.node.routing.base import RouteRequest, Strategy, key_path
from qkdnet.node.routing.live_state import LinkState, LiveState, RoutingState
from qkdnet.node.routing.planner import RoutePlanner
from qkdnet.node.routing.registry import (
           DEFAULT_STRATEGY,
           STRATEGIES,
           StrategySpec,
           make_strategy,
)

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "LinkState", "LiveState", "NoKeyPath", "RoutePlanner", "RouteRequest",
           "RoutingState", "Strategy", "StrategySpec", "key_path", "make_strategy"]
