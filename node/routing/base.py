"""What a routing strategy is: a pure function of the live graph and a request.

Layer: orchestrator, control plane; no gRPC, no I/O. The graph a strategy receives is directed:
edge u->v is there when the link is up, not aborted, and u can still send the request's key to
v (each end sends from its own half of the link key, so the two directions drain separately).
Each edge carries ``length_km``, ``pool_bits`` (what u can send to v), ``pool_capacity_bits``,
``secret_bits_per_s`` and ``qber``. Strategies also accept undirected graphs. A strategy returns
one path, or several node-disjoint paths for XOR secret sharing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import networkx as nx

from qkdnet.node.errors import NoKeyPath


@dataclass(frozen=True)
class RouteRequest:
    source: str
    destination: str
    key_bits: int = 256
    count: int = 1

    @property
    def bits_needed(self) -> int:
        """Link key one path consumes on each of its links."""
        return self.key_bits * self.count


class Strategy(Protocol):
    name: str

    def routes(self, graph: nx.Graph, request: RouteRequest) -> list[list[str]]:
        """One path, or k > 1 node-disjoint paths (the key then travels as k XOR shares).

        Raises NoKeyPath when the request cannot be routed on this graph.
        """
        ...


def check_endpoints(graph: nx.Graph, request: RouteRequest) -> None:
    for node in (request.source, request.destination):
        if node not in graph:
            raise NoKeyPath(f"node {node!r} is unknown or down")
    if request.source == request.destination:
        raise NoKeyPath(f"source and destination are the same node {request.source!r}")


Weight = str | Callable[[str, str, dict], float] | None


def key_path(graph: nx.Graph, source: str, target: str, *, weight: Weight = None) -> list[str]:
    """Fewest hops (weight None) or least total ``weight`` (e.g. "length_km")."""
    check_endpoints(graph, RouteRequest(source, target))
    try:
        return nx.shortest_path(graph, source, target, weight=weight)
    except nx.NetworkXNoPath:
        if not graph.is_directed() and not nx.has_path(graph, source, target):
            raise NoKeyPath(f"no path between {source} and {target} (different components)") from None
        raise NoKeyPath(f"no path between {source} and {target}") from None
