"""Key-aware: the widest path, whose scarcest link holds the most key (or has the highest rate).

Among the paths with the widest bottleneck it takes the fewest hops. Found by a threshold
search: the bottleneck of the widest path is the largest edge value at which the source and
destination are still connected using only edges at least that wide.
"""

from __future__ import annotations

import networkx as nx

from qkdnet.node.errors import NoKeyPath
from qkdnet.node.routing.base import RouteRequest, check_endpoints, key_path

METRICS = ("pool_bits", "secret_bits_per_s")


class WidestPath:
    name = "widest_path"

    def __init__(self, metric: str = "pool_bits") -> None:
        if metric not in METRICS:
            raise ValueError(f"widest_path metric must be one of {', '.join(METRICS)}, not {metric!r}")
        self.metric = metric

    def routes(self, graph: nx.Graph, request: RouteRequest) -> list[list[str]]:
        check_endpoints(graph, request)
        s, t = request.source, request.destination
        if not nx.has_path(graph, s, t):
            raise NoKeyPath(f"no path between {s} and {t}")
        widths = sorted({w for _, _, w in graph.edges(data=self.metric, default=float("inf"))})
        low, high = 0, len(widths) - 1  # widths[low] always connects s and t
        while low < high:
            middle = (low + high + 1) // 2
            if nx.has_path(_at_least(graph, self.metric, widths[middle]), s, t):
                low = middle
            else:
                high = middle - 1
        return [key_path(_at_least(graph, self.metric, widths[low]), s, t)]


def _at_least(graph: nx.Graph, metric: str, width: float) -> nx.Graph:
    return nx.subgraph_view(graph, filter_edge=lambda u, v: graph[u][v].get(metric, float("inf")) >= width)
