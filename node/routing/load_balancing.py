"""Load balancing: least total scarcity, so traffic spreads over the links with fuller pools.

Each link costs capacity / level (1 for a full pool, growing as the pool drains), so with all
pools full this is fewest hops, and as links drain their paths grow expensive. Unlike the
widest path, every link on the path counts, not only the bottleneck.
"""

from __future__ import annotations

import networkx as nx

from qkdnet.node.routing.base import RouteRequest, key_path


class LoadBalancing:
    name = "load_balancing"

    def routes(self, graph: nx.Graph, request: RouteRequest) -> list[list[str]]:
        def scarcity(u: str, v: str, edge: dict) -> float:
            level = edge.get("pool_bits")
            capacity = edge.get("pool_capacity_bits")
            if level is None or not capacity:
                return 1.0
            return capacity / max(level, 1)

        return [key_path(graph, request.source, request.destination, weight=scarcity)]
