"""``qkdnet run``: bring a topology up, generate link key, relay end-to-end keys, summarise, stop.

Layer: control plane. The summary holds per link the length, QBER, sifted and secret rates
(per emulated second), pool level and accounting, and per pair the keys delivered, hops,
latency p50/p99, link key consumed and whether both ends hold identical keys (compared by
SHA-256 digests: the orchestrator never sees a key).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import networkx as nx

from orchestrator.errors import NoKeyPath, TopologyError
from orchestrator.network import Network
from orchestrator.routing import key_path
from orchestrator.topology import Topology

SCHEMA_VERSION = 1


@dataclass
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


@dataclass
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


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


async def run_network(topology: Topology, pairs: list[tuple[str, str]], keys: int, key_bits: int,
                      time_scale: float | None, seed: int | None, timeout_s: float,
                      progress: Callable[[str], None]) -> dict:
    network = Network(topology, time_scale=time_scale, seed=seed)
    started = time.monotonic()
    await network.start(progress)
    try:
        paths = {pair: network.route(*pair) for pair in pairs}
        progress("generating link key (BB84 on every link)...")
        pair_results = await asyncio.gather(*(
            _relay_pair(network, pair, paths[pair], keys, key_bits, timeout_s, progress) for pair in pairs))
        status = await network.status()
        links = link_summaries(topology, status)
        return {"schema_version": SCHEMA_VERSION, "topology": topology.name, "nodes": len(topology.nodes),
                "wall_seconds": round(time.monotonic() - started, 3), "key_bits": key_bits,
                "node_failures": network.failures(),
                "links": [asdict(l) for l in links], "pairs": [asdict(p) for p in pair_results]}
    finally:
        progress("shutting down nodes")
        await network.stop()


async def _relay_pair(network: Network, pair: tuple[str, str], path: list[str], keys: int, key_bits: int,
                      timeout_s: float, progress: Callable[[str], None]) -> PairSummary:
    source, destination = pair
    latencies, key_ids, consumed, errors = [], [], 0, []
    started = time.monotonic()
    for index in range(keys):
        report = await network.relay(source, destination, 1, key_bits, timeout_s)
        if report.error:
            errors.append(report.error)
            if len(errors) >= 3:
                break
            continue
        key_ids += report.key_ids
        latencies += report.latencies_s
        consumed += report.link_bits_consumed * (len(report.path) - 1)
        if (index + 1) % max(1, keys // 5) == 0:
            progress(f"{source}->{destination}: {index + 1}/{keys} keys relayed")
    elapsed = time.monotonic() - started
    at_source = {k.key_id: k.digest for k in await network.list_keys(source, destination)}
    at_destination = {k.key_id: k.digest for k in await network.list_keys(destination, source)}
    identical = bool(key_ids) and all(at_source.get(k) == at_destination.get(k) is not None for k in key_ids)
    return PairSummary(source=source, destination=destination, hops=len(path) - 1, path=path,
                       requested=keys, delivered=len(key_ids), identical_at_both_ends=identical,
                       latency_p50_ms=_ms(_percentile(latencies, 0.50)), latency_p99_ms=_ms(_percentile(latencies, 0.99)),
                       link_key_consumed_bits=consumed, keys_per_s=round(len(key_ids) / max(elapsed, 1e-9), 1),
                       errors=sorted(set(errors)))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 3)


def link_summaries(topology: Topology, status: dict) -> list[LinkSummary]:
    out = []
    for link in topology.links:
        node_status = status.get(link.transmitter)
        entry = next((l for l in node_status.links if l.peer == link.receiver), None) if node_status else None
        if entry is None:
            continue
        out.append(LinkSummary(link=f"{link.transmitter}-{link.receiver}", length_km=link.params.length_km,
                               qber=round(entry.qber, 5), sifted_bits_per_s=round(entry.sifted_bits_per_s, 1),
                               secret_bits_per_s=round(entry.secret_bits_per_s, 1), pool_bits=entry.pool_bits,
                               generated_bits=entry.generated_bits, consumed_bits=entry.consumed_bits,
                               discarded_bits=entry.discarded_bits, blocks_accepted=entry.blocks_accepted,
                               blocks_aborted=entry.blocks_aborted,
                               balanced=entry.generated_bits == entry.pool_bits + entry.consumed_bits + entry.discarded_bits,
                               last_abort_reason=entry.last_abort_reason))
    return out


def format_links(links: list[dict]) -> list[str]:
    lines = [f"{'link':<22}{'km':>6}{'QBER':>8}{'sifted b/s':>13}{'secret b/s':>13}{'pool bits':>11}"
             f"{'consumed':>10}{'blocks ok/abort':>17}"]
    for l in links:
        lines.append(f"{l['link']:<22}{l['length_km']:>6g}{l['qber']:>8.4f}{l['sifted_bits_per_s']:>13.3g}"
                     f"{l['secret_bits_per_s']:>13.3g}{l['pool_bits']:>11}{l['consumed_bits']:>10}"
                     f"{l['blocks_accepted']:>9}/{l['blocks_aborted']:<7}")
    return lines


def format_status(status: dict) -> str:
    """The running network (``qkdnet status``): nodes with liveness, then links."""
    nodes = status["nodes"]
    width = max(4, *(len(n) for n in nodes)) + 2
    lines = [f"topology {status['topology']}: {len(nodes)} nodes, supervisor pid {status['pid']}", "",
             f"{'node':<{width}}{'gRPC':<22}{'KME':<28}state"]
    for name, node in nodes.items():
        lines.append(f"{name:<{width}}{node['address']:<22}{node['kme']:<28}"
                     f"{'up' if node['alive'] else 'FAILED: ' + node['failure']}")
    return "\n".join(lines + [""] + format_links(status["links"]))


def format_summary(summary: dict) -> str:
    lines = [f"topology {summary['topology']}: {summary['nodes']} nodes, {summary['wall_seconds']:.1f} s", ""]
    lines += format_links(summary["links"])
    lines += ["", f"{'pair':<22}{'keys':>10}{'hops':>6}{'keys/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'link bits':>11}  identical"]
    for p in summary["pairs"]:
        fmt = lambda v: f"{v:.2f}" if v is not None else "-"  # noqa: E731
        lines.append(f"{p['source'] + '->' + p['destination']:<22}{str(p['delivered']) + '/' + str(p['requested']):>10}"
                     f"{p['hops']:>6}{p['keys_per_s']:>9.1f}{fmt(p['latency_p50_ms']):>9}{fmt(p['latency_p99_ms']):>9}"
                     f"{p['link_key_consumed_bits']:>11}  {'yes' if p['identical_at_both_ends'] else 'NO'}")
        for error in p["errors"]:
            lines.append(f"    error: {error}")
    for node, why in summary["node_failures"].items():
        lines.append(f"node {node} failed: {why}")
    return "\n".join(lines)


def write_json(summary: dict, path: pathlib.Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(path)
