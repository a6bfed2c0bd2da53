"""What the live network view shows: the topology laid out once, each link's state, QBER and pool
level sampled from node status, short per-link histories, recent relays and faults, and the
conditions an operator must act on.

Layer: control plane (no I/O but the network's status, polled by ``sample``). The supervisor owns
one ``ViewModel``; the HTTP adapter (``server.py``) serves its ``snapshot``. Counts and rates only,
never keys or key IDs.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from qkdnet.node.relay.result import RelayResult
from qkdnet.node.status import LinkStatus, NodeStatus
from qkdnet.orchestrator.topology import Topology

HISTORY_SAMPLES = 150  # per link: five minutes at the default two-second poll
RECENT_RELAYS = 20
LOW_POOL_FRACTION = 0.1  # a pool in use under a tenth of its capacity is shown as an alert


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the view started
    pool_bits: int
    qber: float
    secret_bits_per_s: float


def layout(topology: Topology) -> dict[str, tuple[float, float]]:
    """Node positions in [0.05, 0.95]^2: a seeded spring layout, the same on every load."""
    raw = nx.spring_layout(topology.graph, seed=1) if len(topology.nodes) > 1 else {topology.nodes[0]: (0.0, 0.0)}
    xs = [float(p[0]) for p in raw.values()]
    ys = [float(p[1]) for p in raw.values()]

    def scale(value: float, low: float, high: float) -> float:
        return 0.5 if high == low else 0.05 + 0.9 * (value - low) / (high - low)
    return {str(n): (round(scale(float(p[0]), min(xs), max(xs)), 4), round(scale(float(p[1]), min(ys), max(ys)), 4))
            for n, p in raw.items()}


class ViewModel:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.positions = layout(topology)
        self.started = time.monotonic()
        self.history: dict[str, collections.deque[Sample]] = {
            _name(link.transmitter, link.receiver): collections.deque(maxlen=HISTORY_SAMPLES)
            for link in topology.links}
        self.relays: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_RELAYS)
        self._status: Mapping[str, NodeStatus | None] = {}
        self._cut: set[str] = set()
        self.faults: list[dict[str, Any]] = []  # every fault so far, oldest first

    def sample(self, status: Mapping[str, NodeStatus | None], cut: set[frozenset[str]],
               faults: list[dict[str, Any]]) -> None:
        """Take one poll of the network's status (``None`` for a node that is down)."""
        self._status = status
        self._cut = {_name(*sorted(pair)) for pair in cut}
        self.faults = faults
        now = round(time.monotonic() - self.started, 1)
        for link in self.topology.links:
            end = self._end(link.transmitter, link.receiver)
            if end is not None:
                self.history[_name(link.transmitter, link.receiver)].append(
                    Sample(now, end.pool_bits, round(end.qber, 5), round(end.secret_bits_per_s, 1)))

    def record_relay(self, result: RelayResult) -> None:
        self.relays.appendleft({"t": round(time.monotonic() - self.started, 1), "source": result.source,
                                "destination": result.destination, "path": list(result.path),
                                "keys": len(result.key_ids), "ok": result.ok,
                                "latency_ms": round(1000 * result.latency_s, 1),
                                "error": result.failure.message if result.failure else ""})

    def snapshot(self) -> dict[str, Any]:
        """Everything the page draws, as JSON-ready data."""
        threshold = self.topology.processing.qber_abort_threshold
        nodes = [{"name": n, "x": x, "y": y, "alive": self._status.get(n) is not None}
                 for n, (x, y) in self.positions.items()]
        links, alerts = [], []
        for link in self.topology.links:
            name = _name(link.transmitter, link.receiver)
            tx, rx = self._end(link.transmitter, link.receiver), self._end(link.receiver, link.transmitter)
            state = self._state(name, tx, rx)
            capacity = self.topology.pool_capacity_bits
            pool = tx.pool_bits if tx else 0
            qber = tx.qber if tx else 0.0
            links.append({"name": name, "u": link.transmitter, "v": link.receiver, "state": state,
                          "length_km": link.params.length_km, "qber": round(qber, 5), "pool_bits": pool,
                          "pool_fraction": round(min(1.0, pool / capacity), 4) if capacity else 0.0,
                          "secret_bits_per_s": round(tx.secret_bits_per_s, 1) if tx else 0.0,
                          "blocks_aborted": tx.blocks_aborted if tx else 0,
                          "history": [s.__dict__ for s in self.history[name]]})
            if state in ("cut", "down"):
                alerts.append({"severity": "critical", "what": f"link {name} is {state}"})
            elif tx is not None and tx.blocks_aborted and qber > threshold:
                alerts.append({"severity": "critical", "what": f"QBER {qber:.1%} on link {name}: over the abort "
                                                              f"threshold, blocks abort"})
            elif capacity and tx is not None and tx.consumed_bits and pool < LOW_POOL_FRACTION * capacity:
                # a link in use running dry (a new network's pools start empty: that is no alert)
                alerts.append({"severity": "warning", "what": f"key pool of {name} under {LOW_POOL_FRACTION:.0%} "
                                                             f"of capacity while relays use it"})
        alerts += [{"severity": "critical", "what": f"node {n['name']} is down"} for n in nodes if not n["alive"]]
        return {"topology": self.topology.name, "t": round(time.monotonic() - self.started, 1),
                "qber_threshold": threshold, "pool_capacity_bits": self.topology.pool_capacity_bits, "nodes": nodes, "links": links, "alerts": alerts,
                "relays": list(self.relays), "faults": self.faults[-RECENT_RELAYS:][::-1]}

    def _end(self, me: str, peer: str) -> LinkStatus | None:
        status = self._status.get(me)
        return status.link_to(peer) if status is not None else None

    def _state(self, name: str, tx: LinkStatus | None, rx: LinkStatus | None) -> str:
        if name in self._cut:
            return "cut"
        states = [end.state if end is not None else "down" for end in (tx, rx)]
        return next((s for s in states if s in ("cut", "down")), states[0])


def _name(u: str, v: str) -> str:
    return f"{u}-{v}"
