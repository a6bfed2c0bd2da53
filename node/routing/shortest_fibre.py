"""Least total fibre length: the path with the least loss, not necessarily the fewest nodes."""

from __future__ import annotations

import networkx as nx

from qkdnet.node.routing.base import RouteRequest, key_path


class ShortestFibre:
    name = "shortest_fibre"

    def routes(self, graph: nx.Graph, request: RouteRequest) -> list[list[str]]:
        return [key_path(graph, request.source, request.destination, weight="length_km")]
