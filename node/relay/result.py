"""The typed values a relay travels with: its route, its items, its result and its failure.

Layer: node domain (no grpc). ``RelayResult`` is the one shape of "what a relay did", from the
node's engine through the orchestrator and the supervisor to the CLI; it never holds key
material. ``RelayFailure`` carries the error's class name and the failed hop as fields, so a
router never parses text to learn which link failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from qkdnet.node.errors import InvalidRequest, NodeError, QkdnetError, RelayError, error_class
from qkdnet.node.keystore.link_pool import LinkKeyId

Path = tuple[str, ...]


@dataclass(frozen=True)
class Route:
    """One path, or k > 1 node-disjoint paths to one destination (the key then travels as k XOR shares)."""

    paths: tuple[Path, ...]

    @classmethod
    def of(cls, paths: Iterable[Sequence[str]]) -> Route:
        return cls(tuple(tuple(p) for p in paths))

    @property
    def source(self) -> str:
        return self.paths[0][0]

    @property
    def destination(self) -> str:
        return self.paths[0][-1]

    @property
    def hops(self) -> int:
        """Links crossed, over all paths: what one key costs in link key, in key sizes."""
        return sum(len(p) - 1 for p in self.paths)

    def check(self, source: str) -> None:
        """Raises ``InvalidRequest`` unless every path starts at ``source``, ends at one
        destination, visits no node twice, and the paths share no intermediate node."""
        if not self.paths:
            raise InvalidRequest("no path given")
        for path in self.paths:
            if len(path) < 2 or path[0] != source:
                raise InvalidRequest(f"path must start at {source} and have at least two nodes")
            if len(set(path)) != len(path):
                raise InvalidRequest("relay path visits a node twice")
        if len({p[-1] for p in self.paths}) != 1:
            raise InvalidRequest("multipath routes must end at the same destination")
        inner = [n for p in self.paths for n in p[1:-1]]
        if len(set(inner)) != len(inner) or len(set(self.paths)) != len(self.paths):
            raise InvalidRequest("multipath routes must be node-disjoint")


@dataclass(frozen=True)
class RelayItem:
    """One key (or one XOR share of it) crossing one hop, padded with that hop's link key."""

    key_id: str
    ciphertext: bytes = field(repr=False)
    link_key: LinkKeyId
    master_sae: str = ""  # set for ETSI GS QKD 014 keys: who may fetch the key at the destination
    slave_sae: str = ""
    share_index: int = 0  # multipath: which XOR share of the key this is (1-based); 0 = whole key
    share_count: int = 0


@dataclass(frozen=True)
class RelayFailure:
    kind: str  # the class name of the node error (``node.errors``)
    message: str
    failed_hop: tuple[str, str] | None = None  # the link at fault, when one is known

    @classmethod
    def of(cls, error: QkdnetError) -> RelayFailure:
        return cls(type(error).__name__, str(error), getattr(error, "failed_hop", None))

    def to_error(self) -> NodeError:
        cls = error_class(self.kind)
        if issubclass(cls, RelayError):
            return cls(self.message, self.failed_hop)
        return cls(self.message)


@dataclass(frozen=True)
class RelayResult:
    source: str
    destination: str
    paths: tuple[Path, ...] = ()
    key_ids: tuple[str, ...] = ()
    latency_s: float = 0.0
    link_bits_consumed: int = 0  # link key spent over every hop of every path
    attempts: int = 1
    outcome: str = "delivered"  # or "blocked" (no usable route) or "failed" (every attempt failed)
    failure: RelayFailure | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "delivered"

    @property
    def error(self) -> str:
        return self.failure.message if self.failure else ""

    @property
    def path(self) -> list[str]:
        """The first (or only) path, as a list like ``Network.route`` gives."""
        return list(self.paths[0]) if self.paths else []

    @classmethod
    def failed(cls, source: str, destination: str, paths: Iterable[Sequence[str]], error: QkdnetError,
               outcome: str = "failed", attempts: int = 1) -> RelayResult:
        return cls(source, destination, Route.of(paths).paths, outcome=outcome, attempts=attempts,
                   failure=RelayFailure.of(error))

    def to_json(self) -> dict[str, Any]:
        """The fields, plus ``ok``, ``path`` and ``error`` for readers of the JSON (ignored on reading)."""
        return {**asdict(self), "ok": self.ok, "path": list(self.path), "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RelayResult:
        failure = data.get("failure")
        return cls(source=data["source"], destination=data["destination"],
                   paths=tuple(tuple(p) for p in data.get("paths", ())), key_ids=tuple(data.get("key_ids", ())),
                   latency_s=float(data.get("latency_s", 0.0)), link_bits_consumed=int(data.get("link_bits_consumed", 0)),
                   attempts=int(data.get("attempts", 1)), outcome=str(data.get("outcome", "delivered")),
                   failure=None if failure is None else RelayFailure(
                       failure["kind"], failure["message"],
                       _hop(failure.get("failed_hop"))))


def _hop(pair: list[str] | None) -> tuple[str, str] | None:
    return (pair[0], pair[1]) if pair else None
