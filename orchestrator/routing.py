"""Routing as pure functions over the topology graph, shaped like networkx algorithms."""

from __future__ import annotations

import networkx as nx

from orchestrator.errors import NoKeyPath


def key_path(graph: nx.Graph, source: str, target: str, *, weight: str | None = None) -> list[str]:
    """Fewest hops (weight None) or least total ``weight`` (e.g. "length_km")."""
    for node in (source, target):
        if node not in graph:
            raise NoKeyPath(f"unknown node {node!r}")
    if source == target:
        raise NoKeyPath(f"source and destination are the same node {source!r}")
    try:
        return nx.shortest_path(graph, source, target, weight=weight)
    except nx.NetworkXNoPath:
        raise NoKeyPath(f"no path between {source} and {target} (different components)") from None
