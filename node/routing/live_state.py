"""The live state routing sees, built from node status: which links are usable, how much key.

Layer: node domain (networkx, no I/O). Each link's state comes from both of its ends: up only if
both ends are alive and neither reports it down or cut; aborted if its last block's QBER is over
the network's abort threshold; its pool level is the smaller of the two ends' levels. Between
two status polls, ``reserve`` subtracts what routed relays will take, so a burst of requests does
not route many keys over a pool that holds enough for one. The orchestrator keeps one, and
publishes it to the nodes as a ``RoutingState`` so that their KMEs route the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import networkx as nx

from qkdnet.node.qkd.params import ProcessingParams
from qkdnet.node.routing.base import RouteRequest
from qkdnet.node.routing.registry import DEFAULT_STRATEGY
from qkdnet.node.status import NodeStatus

DOWN_STATES = ("down", "cut")
DEFAULT_QBER_THRESHOLD = ProcessingParams.qber_abort_threshold  # the engine's own default


@dataclass
class LinkState:
    u: str
    v: str
    length_km: float
    pool_capacity_bits: int
    up: bool = True
    state: str = "starting"
    pool_bits: int = 0
    secret_bits_per_s: float = 0.0
    qber: float = 0.0
    emulated_seconds: float = 0.0
    aborted: bool = False
    sendable_bits: dict[str, int] = field(default_factory=dict)  # sending end -> bits it can still send

    def __post_init__(self) -> None:
        self.sendable_bits = {self.u: self.sendable_bits.get(self.u, 0), self.v: self.sendable_bits.get(self.v, 0)}

    @property
    def name(self) -> str:
        return f"{self.u}-{self.v}"


@dataclass(frozen=True)
class RoutingState:
    """What a node needs to route application key requests as the orchestrator does."""

    strategy: str = DEFAULT_STRATEGY
    strategy_options: dict[str, Any] = field(default_factory=dict)
    alive: tuple[str, ...] = ()
    links: tuple[LinkState, ...] = ()
    qber_threshold: float = DEFAULT_QBER_THRESHOLD


class TopologyView(Protocol):
    """The parts of a topology live state needs (``orchestrator.topology.Topology`` has them)."""

    @property
    def graph(self) -> nx.Graph: ...

    @property
    def pool_capacity_bits(self) -> int: ...

    @property
    def processing(self) -> ProcessingParams: ...


class LiveState:
    def __init__(self, links: Iterable[LinkState], alive: Iterable[str],
                 qber_threshold: float = DEFAULT_QBER_THRESHOLD) -> None:
        self.qber_threshold = qber_threshold
        self.alive: set[str] = set(alive)
        self.links: dict[frozenset, LinkState] = {frozenset((l.u, l.v)): l for l in links}
        self.version = 0  # grows with every change, so a planner knows when its routes are stale

    @classmethod
    def of(cls, topology: TopologyView) -> LiveState:
        """Every node alive and every link up, with nothing known yet of pools or QBER."""
        links = [LinkState(u, v, float(data.get("length_km", 0.0)), topology.pool_capacity_bits)
                 for u, v, data in topology.graph.edges(data=True)]
        return cls(links, topology.graph.nodes, topology.processing.qber_abort_threshold)

    @classmethod
    def from_routing_state(cls, state: RoutingState) -> LiveState:
        return cls([dataclasses.replace(l, sendable_bits=dict(l.sendable_bits)) for l in state.links], state.alive,
                   state.qber_threshold)

    def routing_state(self, strategy: str, options: Mapping[str, Any]) -> RoutingState:
        """A copy to publish to the nodes."""
        links = tuple(dataclasses.replace(l, sendable_bits=dict(l.sendable_bits)) for l in self.links.values())
        return RoutingState(strategy, dict(options), tuple(sorted(self.alive)), links, self.qber_threshold)

    def update(self, status: Mapping[str, NodeStatus | None]) -> None:
        """status: node name -> its status, or None for a node that is down."""
        self.version += 1
        self.alive = {name for name, s in status.items() if s is not None}
        ends: dict[frozenset, list] = {key: [] for key in self.links}
        for name, node in status.items():
            for link in node.links if node is not None else ():
                key = frozenset((name, link.peer))
                if key in ends:
                    ends[key].append((name, link))
        for key, state in self.links.items():
            reports = [link for _, link in ends[key]]
            state.up = len(reports) == 2 and not any(r.state in DOWN_STATES for r in reports)
            if not reports:
                continue
            state.state = next((r.state for r in reports if r.state in DOWN_STATES), reports[0].state)
            state.pool_bits = min(r.pool_bits for r in reports)
            for name, r in ends[key]:
                state.sendable_bits[name] = r.sendable_bits
            transmitter = next((r for r in reports if r.role == "transmitter"), reports[0])
            state.secret_bits_per_s = transmitter.secret_bits_per_s
            state.qber = transmitter.qber
            state.emulated_seconds = transmitter.emulated_seconds
            state.aborted = transmitter.blocks_aborted > 0 and transmitter.qber > self.qber_threshold

    def reserve(self, paths: list[list[str]], bits: int) -> None:
        self.version += 1
        for path in paths:
            for u, v in zip(path, path[1:], strict=False):
                link = self.links.get(frozenset((u, v)))
                if link is not None:
                    link.pool_bits = max(0, link.pool_bits - bits)
                    link.sendable_bits[u] = max(0, link.sendable_bits[u] - bits)

    def mark_down(self, u: str, v: str) -> None:
        link = self.links.get(frozenset((u, v)))
        if link is not None:
            link.up = False
            self.version += 1

    def usable_graph(self, request: RouteRequest, need_key: bool = True) -> nx.DiGraph:
        """Live nodes, and u->v wherever the link is up, not aborted and u can send the request's key
        (without ``need_key``, also links still waiting for key: the relay then waits for it)."""
        graph = nx.DiGraph()
        graph.add_nodes_from(self.alive)
        for link in self.links.values():
            if not (link.up and not link.aborted and link.u in self.alive and link.v in self.alive):
                continue
            for u, v in ((link.u, link.v), (link.v, link.u)):
                if link.sendable_bits[u] >= request.bits_needed or not need_key:
                    # Each end sends from half of every block: capacity per direction is half.
                    graph.add_edge(u, v, length_km=link.length_km, pool_bits=link.sendable_bits[u],
                                   pool_capacity_bits=link.pool_capacity_bits // 2,
                                   secret_bits_per_s=link.secret_bits_per_s / 2, qber=link.qber)
        return graph

    def snapshot(self) -> list[dict]:
        return [dict(link=l.name, up=l.up, state=l.state, aborted=l.aborted, pool_bits=l.pool_bits,
                     sendable_forward_bits=l.sendable_bits[l.u], sendable_backward_bits=l.sendable_bits[l.v],
                     secret_bits_per_s=l.secret_bits_per_s, qber=l.qber, emulated_seconds=l.emulated_seconds)
                for l in self.links.values()]
