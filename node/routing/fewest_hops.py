"""Fewest trusted nodes: hop-count shortest path, the strategy every public tool hard-codes."""

from __future__ import annotations

import networkx as nx

from qkdnet.node.routing.base import RouteRequest, key_path


class FewestHops:
    name = "fewest_hops"

    def routes(self, graph: nx.Graph, request: RouteRequest) -> list[list[str]]:
        return [key_path(graph, request.source, request.destination)]
