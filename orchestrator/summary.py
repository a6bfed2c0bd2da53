"""Typed summaries of a network for people and files: per link, per relayed pair, and the
running network as ``qkdnet status`` shows it (with its JSON form, as the supervisor sends it).

Layer: control plane, pure. Counts, rates and digests only: never key material.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from qkdnet.node.status import KeyEntry, NodeStatus
from qkdnet.orchestrator.topology import Topology


@dataclass(frozen=True)
class LinkSummary:
    link: str
    length_km: float
    qber: float
    sifted_bits_per_s: float
    secret_bits_per_s: float
    pool_bits: int
    generated_bits: int
    consumed_bits: int
    discarded_bits: int
    blocks_accepted: int
    blocks_aborted: int
    balanced: bool
    last_abort_reason: str
    state: str = ""  # down or cut if either end says so, else the transmitter's state
    clock_ratio: float = 0.0  # how well the host kept up with the emulated clock (``LinkStatus``)


@dataclass(frozen=True)
class PairSummary:
    source: str
    destination: str
    hops: int
    path: list[str]
    requested: int
    delivered: int
    identical_at_both_ends: bool
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    link_key_consumed_bits: int
    keys_per_s: float = 0.0  # delivered keys over the pair's relay phase (includes waits for link key)
    errors: list[str] = field(default_factory=list)


def link_summaries(topology: Topology, status: dict[str, NodeStatus | None]) -> list[LinkSummary]:
    """Each link as its transmitter end reports it; as its receiver end does, marked down, while
    the transmitter is down (a link is never left out of the list for that)."""
    out = []
    for link in topology.links:
        node_status = status.get(link.transmitter)
        entry = node_status.link_to(link.receiver) if node_status else None
        other = status.get(link.receiver)
        far = other.link_to(link.transmitter) if other else None
        if entry is None:
            if far is None:
                continue  # neither end answers: nothing to report but the node failures
            entry, far = far, None
        states = [entry.state, far.state if far else "down"]
        state = next((s for s in states if s in ("cut", "down")), entry.state)
        out.append(LinkSummary(link=f"{link.transmitter}-{link.receiver}", length_km=link.params.length_km,
                               qber=round(entry.qber, 5), sifted_bits_per_s=round(entry.sifted_bits_per_s, 1),
                               secret_bits_per_s=round(entry.secret_bits_per_s, 1), pool_bits=entry.pool_bits,
                               generated_bits=entry.generated_bits, consumed_bits=entry.consumed_bits,
                               discarded_bits=entry.discarded_bits, blocks_accepted=entry.blocks_accepted,
                               blocks_aborted=entry.blocks_aborted, balanced=entry.balanced,
                               last_abort_reason=entry.last_abort_reason, state=state,
                               clock_ratio=round(entry.clock_ratio, 4)))
    return out


@dataclass(frozen=True)
class NodeEndpoint:
    address: str
    kme: str
    alive: bool
    failure: str = ""
    metrics: str = ""  # the node's /metrics URL


@dataclass(frozen=True)
class NetworkStatus:
    """A running network as ``qkdnet status`` shows it."""

    topology: str
    pid: int
    nodes: dict[str, NodeEndpoint]
    links: list[LinkSummary]
    faults: list[dict[str, Any]] = field(default_factory=list)  # injected so far, oldest first

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkStatus:
        return cls(data["topology"], data["pid"], {n: NodeEndpoint(**e) for n, e in data["nodes"].items()},
                   [LinkSummary(**l) for l in data["links"]], list(data.get("faults", [])))


def key_entry_to_json(entry: KeyEntry) -> dict[str, Any]:
    return {"key_id": entry.key_id, "peer": entry.peer, "bits": entry.bits, "hmac": entry.digest.hex()}


def key_entry_from_json(data: dict[str, Any]) -> KeyEntry:
    return KeyEntry(data["key_id"], data["peer"], bytes.fromhex(data["hmac"]), data["bits"])


SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunSummary:
    """What ``qkdnet run`` reports (its JSON form is schema version 1 in the README)."""

    topology: str
    nodes: int
    wall_seconds: float
    key_bits: int
    node_failures: dict[str, str]
    links: list[LinkSummary]
    pairs: list[PairSummary]

    @property
    def ok(self) -> bool:
        return all(p.delivered == p.requested and p.identical_at_both_ends for p in self.pairs)

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **asdict(self)}
