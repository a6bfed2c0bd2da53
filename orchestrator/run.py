"""``qkdnet run``: bring a topology up, generate link key, relay end-to-end keys, summarise, stop.

Layer: control plane. The summary holds per link the length, QBER, sifted and secret rates
(per emulated second), pool level and accounting, and per pair the keys delivered, hops,
latency p50/p99, link key consumed and whether both ends hold identical keys (compared by
digests salted for this comparison: the orchestrator never sees a key).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import networkx as nx

from qkdnet.node.routing import key_path
from qkdnet.orchestrator.certs import CertPaths
from qkdnet.orchestrator.errors import NoKeyPath, TopologyError
from qkdnet.orchestrator.network import ATTACH_TIMEOUT_S, Network, comparison_salt
from qkdnet.orchestrator.stats import percentile
from qkdnet.orchestrator.summary import PairSummary, RunSummary, link_summaries
from qkdnet.orchestrator.topology import Topology

Progress = Callable[[str], None]
ERRORS_BEFORE_GIVING_UP = 3


def parse_pairs(text: str | None, topology: Topology) -> list[tuple[str, str]]:
    """``A:B,C:D``; by default the two ends of the topology's longest shortest path."""
    graph = topology.graph
    if not text:
        component = max(nx.connected_components(graph), key=len)
        if len(component) < 2:
            raise TopologyError(f"{topology.source}: no two connected nodes to relay between")
        sub = graph.subgraph(component)
        source, lengths = max(((n, nx.single_source_shortest_path_length(sub, n)) for n in sorted(sub)),
                              key=lambda item: max(item[1].values()))
        return [(source, max(lengths, key=lambda n: (lengths[n], n)))]
    pairs = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 2 or not all(parts):
            raise TopologyError(f"--pairs: {item!r} is not of the form A:B")
        for node in parts:
            if node not in graph:
                raise TopologyError(f"--pairs: unknown node {node!r} in {topology.source}")
        try:
            key_path(graph, parts[0], parts[1])
        except NoKeyPath as exc:
            raise TopologyError(f"--pairs: {parts[0]}:{parts[1]}: {exc}") from None
        pairs.append((parts[0], parts[1]))
    return pairs


async def run_network(topology: Topology, pairs: list[tuple[str, str]], keys: int, key_bits: int,
                      time_scale: float | None, seed: int | None, timeout_s: float,
                      progress: Progress, certs: CertPaths | None = None,
                      attach_timeout_s: float = ATTACH_TIMEOUT_S, isolation: str = "process") -> RunSummary:
    """``certs``: the network's PKI (a fresh one without); needed for nodes the topology's
    deployment section places elsewhere."""
    started = time.monotonic()
    network = Network(topology, time_scale=time_scale, seed=seed, certs=certs, attach_timeout_s=attach_timeout_s,
                      isolation=isolation)
    await network.start(progress)
    try:
        paths = {pair: network.route(*pair) for pair in pairs}
        progress("generating link key (BB84 on every link)...")
        pair_results = await asyncio.gather(*(
            _relay_pair(network, pair, paths[pair], keys, key_bits, timeout_s, progress) for pair in pairs))
        links = link_summaries(topology, await network.status())
        return RunSummary(topology=topology.name, nodes=len(topology.nodes),
                          wall_seconds=round(time.monotonic() - started, 3), key_bits=key_bits,
                          node_failures=network.failures(), links=links, pairs=list(pair_results))
    finally:
        progress("shutting down nodes")
        await network.stop()


async def _relay_pair(network: Network, pair: tuple[str, str], path: list[str], keys: int, key_bits: int,
                      timeout_s: float, progress: Progress) -> PairSummary:
    source, destination = pair
    latencies: list[float] = []
    key_ids: list[str] = []
    errors: list[str] = []
    consumed = 0
    started = time.monotonic()
    for index in range(keys):
        result = await network.relay(source, destination, 1, key_bits, timeout_s)
        if result.ok:
            key_ids += result.key_ids
            latencies += [result.latency_s] * len(result.key_ids)
            consumed += result.link_bits_consumed
        else:
            errors.append(result.error)
            if len(errors) >= ERRORS_BEFORE_GIVING_UP:
                break
        if (index + 1) % max(1, keys // 5) == 0:  # keys delivered so far, not requests made
            failed = f", {len(errors)} failed" if errors else ""
            progress(f"{source}->{destination}: {len(key_ids)}/{keys} keys relayed{failed}")
    elapsed = time.monotonic() - started
    salt = comparison_salt()
    at_source = {k.key_id: k.digest for k in await network.list_keys(source, destination, salt=salt)}
    at_destination = {k.key_id: k.digest for k in await network.list_keys(destination, source, salt=salt)}
    identical = bool(key_ids) and all(at_source.get(k) == at_destination.get(k) is not None for k in key_ids)
    return PairSummary(source=source, destination=destination, hops=len(path) - 1, path=path,
                       requested=keys, delivered=len(key_ids), identical_at_both_ends=identical,
                       latency_p50_ms=_ms(percentile(latencies, 0.50)), latency_p99_ms=_ms(percentile(latencies, 0.99)),
                       link_key_consumed_bits=consumed, keys_per_s=round(len(key_ids) / max(elapsed, 1e-9), 1),
                       errors=sorted(set(errors)))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 3)
