"""k node-disjoint paths with XOR secret sharing: no single intermediate node can learn K.

The source splits K into k shares (K = K1 xor ... xor Kk) and relays each over its own path;
the paths share no intermediate node, so a node on one path sees one share, which alone is
uniformly random. Takes the k shortest (by hops, then fibre) of a maximal disjoint set.
"""

from __future__ import annotations

import networkx as nx

from qkdnet.node.errors import NoKeyPath
from qkdnet.node.routing.base import RouteRequest, check_endpoints


class NodeDisjointMultipath:
    name = "multipath"

    def __init__(self, k: int = 2) -> None:
        if not isinstance(k, int) or k < 2:
            raise ValueError(f"multipath k must be an integer >= 2, not {k!r}")
        self.k = k

    def routes(self, graph: nx.Graph, request: RouteRequest) -> list[list[str]]:
        check_endpoints(graph, request)
        s, t = request.source, request.destination
        try:
            paths = list(nx.node_disjoint_paths(graph, s, t))
        except nx.NetworkXNoPath:
            raise NoKeyPath(f"no path between {s} and {t}") from None
        if len(paths) < self.k:
            raise NoKeyPath(f"only {len(paths)} node-disjoint path(s) between {s} and {t}, {self.k} needed")

        def fibre_km(path: list[str]) -> float:
            return sum(graph[u][v].get("length_km", 0.0) for u, v in zip(path, path[1:], strict=False))

        return sorted(paths, key=lambda p: (len(p), fibre_km(p), p))[: self.k]
