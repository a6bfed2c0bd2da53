"""Routing strategies by name: adding one is a small module and a line in ``STRATEGIES``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qkdnet.node.errors import InvalidRequest
from qkdnet.node.routing.base import Strategy
from qkdnet.node.routing.fewest_hops import FewestHops
from qkdnet.node.routing.load_balancing import LoadBalancing
from qkdnet.node.routing.multipath import NodeDisjointMultipath
from qkdnet.node.routing.shortest_fibre import ShortestFibre
from qkdnet.node.routing.widest_path import WidestPath

STRATEGIES: dict[str, type] = {
    "fewest_hops": FewestHops,
    "shortest_fibre": ShortestFibre,
    "widest_path": WidestPath,
    "load_balancing": LoadBalancing,
    "multipath": NodeDisjointMultipath,
}
DEFAULT_STRATEGY = "fewest_hops"


def make_strategy(name: str, **options: Any) -> Strategy:
    """A strategy by registry name; unknown names or options are one-line ``InvalidRequest``s."""
    factory = STRATEGIES.get(name)
    if factory is None:
        raise InvalidRequest(f"unknown routing strategy {name!r} (known: {', '.join(STRATEGIES)})")
    try:
        strategy: Strategy = factory(**options)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"strategy {name}: {exc}") from None
    return strategy


@dataclass(frozen=True)
class StrategySpec:
    """A strategy as configuration names it: a registry name and its options."""

    name: str = DEFAULT_STRATEGY
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name + "".join(f"-{k}{v}" for k, v in sorted(self.options.items()))

    @classmethod
    def parse(cls, entry: Any) -> StrategySpec:
        """A name, or a mapping with a name and options (as in YAML); checked by building it."""
        if isinstance(entry, str):
            spec = cls(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            spec = cls(entry["name"], {k: v for k, v in entry.items() if k != "name"})
        else:
            raise InvalidRequest(f"a routing strategy is a name or a mapping with a name, got {entry!r}")
        spec.make()
        return spec

    def make(self) -> Strategy:
        return make_strategy(self.name, **self.options)
