"""Routing strategies, by name. Adding one: a small module with a class that has ``name`` and
``routes(graph, request)``, and a line in ``STRATEGIES``."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import NoKeyPath, QkdnetError
from orchestrator.routing.base import RouteRequest, Strategy, key_path
from orchestrator.routing.fewest_hops import FewestHops
from orchestrator.routing.load_balancing import LoadBalancing
from orchestrator.routing.multipath import NodeDisjointMultipath
from orchestrator.routing.shortest_fibre import ShortestFibre
from orchestrator.routing.widest_path import WidestPath

STRATEGIES: dict[str, type] = {
    "fewest_hops": FewestHops,
    "shortest_fibre": ShortestFibre,
    "widest_path": WidestPath,
    "load_balancing": LoadBalancing,
    "multipath": NodeDisjointMultipath,
}


def make_strategy(name: str, **options: Any) -> Strategy:
    """A strategy by registry name; unknown names or options are one-line QkdnetErrors."""
    factory = STRATEGIES.get(name)
    if factory is None:
        raise QkdnetError(f"unknown routing strategy {name!r} (known: {', '.join(STRATEGIES)})")
    try:
        return factory(**options)
    except (TypeError, ValueError) as exc:
        raise QkdnetError(f"strategy {name}: {exc}") from None


__all__ = ["STRATEGIES", "NoKeyPath", "RouteRequest", "Strategy", "key_path", "make_strategy"]
