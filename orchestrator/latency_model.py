"""A relay's latency in virtual time, modelled from its route (the wall clock measures nothing
there: the clock stands still while a relay runs).

Layer: control plane. Per attempt: the fibre there and back along the slowest of the route's
paths (shares travel in parallel), at ``FIBRE_S_PER_KM`` each way, plus ``hop_processing_s`` per
hop for decrypting, re-padding and queueing for key (an assumption, configurable).
"""

from __future__ import annotations

from collections.abc import Sequence

from qkdnet.orchestrator.topology import Topology

FIBRE_S_PER_KM = 5e-6  # light in fibre (group index about 1.47)
HOP_PROCESSING_S = 0.001  # assumed default per hop


def route_latency_s(topology: Topology, paths: Sequence[Sequence[str]], hop_processing_s: float = HOP_PROCESSING_S
                    ) -> float:
    worst = 0.0
    for path in paths:
        km = sum(topology.link_between(u, v).params.length_km for u, v in zip(path, path[1:], strict=False))
        worst = max(worst, 2 * km * FIBRE_S_PER_KM + (len(path) - 1) * hop_processing_s)
    return worst


__all__ = ["FIBRE_S_PER_KM", "HOP_PROCESSING_S", "route_latency_s"]
