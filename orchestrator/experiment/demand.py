"""Traffic demand: seeded Poisson key requests per node pair, or a replayed trace.

Layer: orchestrator, pure. The same seed gives the same sequence of requests, so every strategy
of a run faces identical demand.
"""

from __future__ import annotations

import csv
import pathlib
from dataclasses import dataclass

import numpy as np

from qkdnet.orchestrator.experiment.config import ConfigError, PoissonDemand
from qkdnet.orchestrator.topology import Topology


@dataclass(frozen=True)
class Arrival:
    t_s: float  # emulated seconds after the start of demand
    source: str
    destination: str
    key_bits: int


def poisson_arrivals(flows: tuple[PoissonDemand, ...], duration_s: float, seed: int,
                     repetition: int = 0) -> list[Arrival]:
    """Independent Poisson processes per flow (exponential gaps), merged in time order."""
    streams = np.random.SeedSequence([seed, repetition]).spawn(len(flows))
    arrivals = []
    for flow, stream in zip(flows, streams, strict=False):
        rng = np.random.default_rng(stream)
        expected = flow.rate_per_s * duration_s
        gaps = rng.exponential(1.0 / flow.rate_per_s, size=int(expected + 10 * np.sqrt(expected) + 20))
        times = np.cumsum(gaps)
        while times[-1] < duration_s:  # practically never: the draw above covers 10 sigma
            times = np.concatenate([times, times[-1] + np.cumsum(rng.exponential(1.0 / flow.rate_per_s, 100))])
        arrivals += [Arrival(float(t), flow.source, flow.destination, flow.key_bits) for t in times[times < duration_s]]
    return sorted(arrivals, key=lambda a: (a.t_s, a.source, a.destination))


def trace_arrivals(path: pathlib.Path, topology: Topology, duration_s: float) -> list[Arrival]:
    """CSV with a header t_s,source,destination,key_bits; rows past duration_s are ignored."""
    arrivals = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"t_s", "source", "destination", "key_bits"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{path}: trace lacks column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                arrival = Arrival(float(row["t_s"]), row["source"], row["destination"], int(row["key_bits"]))
            except ValueError:
                raise ConfigError(f"{path}:{line}: t_s must be a number and key_bits an integer") from None
            if arrival.source not in topology.graph or arrival.destination not in topology.graph:
                raise ConfigError(f"{path}:{line}: unknown node")
            if arrival.key_bits <= 0 or arrival.key_bits % 8 or arrival.t_s < 0:
                raise ConfigError(f"{path}:{line}: key_bits must be a positive multiple of 8 and t_s >= 0")
            if arrival.t_s < duration_s:
                arrivals.append(arrival)
    return sorted(arrivals, key=lambda a: a.t_s)
