"""``qkdnet run``: bring a topology up, generate link key, relay end-to-end keys, summarise, stop.

Layer: control plane. The summary holds per link the length, QBER, sifted and secret rates
(per emulated second), pool level and accounting, and per pair the keys delivered, hops,
latency p50/p99, link key consumed and whether both ends hold identical keys (compared by
digests salted for this comparison: the orchestrator never sees a key).

In virtual time (``--clock virtual``) the orchestrator advances the network's clock in steps of
``VIRTUAL_STEP_S``; at each step every pair in turn relays keys while its route holds key, so
the keys, the link statistics and the modelled latencies are the same on every host (``--seed``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import networkx as nx

from qkdnet.node.routing import RouteRequest, key_path, make_strategy
from qkdnet.node.settings import ClockMode
from qkdnet.orchestrator.certs import CertPaths
from qkdnet.orchestrator.errors import NoKeyPath, TopologyError
from qkdnet.orchestrator.latency_model import route_latency_s
from qkdnet.orchestrator.network import ATTACH_TIMEOUT_S, Network, comparison_salt
from qkdnet.orchestrator.router import Router
from qkdnet.orchestrator.stats import percentile
from qkdnet.orchestrator.summary import PairSummary, RunSummary, link_summaries
from qkdnet.orchestrator.topology import Topology

Progress = Callable[[str], None]
ERRORS_BEFORE_GIVING_UP = 3
VIRTUAL_STEP_S = 0.05  # emulated seconds the clock moves between rounds of relays
RELAY_WALL_TIMEOUT_S = 300.0  # virtual time: a relay never waits for key, only for slow nodes


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
                      attach_timeout_s: float = ATTACH_TIMEOUT_S, isolation: str = "process",
                      clock: ClockMode = ClockMode.REALTIME) -> RunSummary:
    """``certs``: the network's PKI (a fresh one without); needed for nodes the topology's
    deployment section places elsewhere. ``timeout_s``: how long a relay may wait for link key
    (in virtual time: emulated seconds for all the keys)."""
    started = time.monotonic()
    network = Network(topology, time_scale=time_scale, seed=seed, certs=certs, attach_timeout_s=attach_timeout_s,
                      isolation=isolation, clock=clock)
    await network.start(progress)
    try:
        paths = {pair: network.route(*pair) for pair in pairs}
        progress("generating link key (BB84 on every link)...")
        if clock is ClockMode.VIRTUAL:
            pair_results = await _relay_pairs_in_virtual_time(network, pairs, keys, key_bits, timeout_s, progress)
        else:
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
    return await _pair_summary(network, pair, path, keys, key_ids, latencies, consumed, errors,
                               time.monotonic() - started)


async def _relay_pairs_in_virtual_time(network: Network, pairs: list[tuple[str, str]], keys: int, key_bits: int,
                                       timeout_s: float, progress: Progress) -> list[PairSummary]:
    """Step by step in emulated time: at each step, pair after pair relays keys over its fewest
    hops while the route holds key (checked on the nodes' status at that step)."""
    started = time.monotonic()
    router = Router(network, make_strategy("fewest_hops"), retries=0)
    done: dict[tuple[str, str], dict] = {p: dict(key_ids=[], latencies=[], consumed=0, errors=[], path=[]) for p in pairs}

    def finished(pair: tuple[str, str]) -> bool:
        state = done[pair]
        return len(state["key_ids"]) >= keys or len(state["errors"]) >= ERRORS_BEFORE_GIVING_UP

    now_s = 0.0
    await network.advance_clock(now_s)
    while not all(finished(p) for p in pairs):
        if now_s > timeout_s:
            for pair in pairs:
                if not finished(pair):
                    done[pair]["errors"].append(f"no link key on the route within {timeout_s:g} emulated seconds")
            break
        for pair in pairs:
            state = done[pair]
            while not finished(pair):
                await router.refresh()
                result = await router.relay(RouteRequest(pair[0], pair[1], key_bits), RELAY_WALL_TIMEOUT_S)
                if result.outcome == "blocked":  # no route holds the key yet: at a later step
                    break
                if result.ok:
                    state["key_ids"] += result.key_ids
                    state["latencies"] += [route_latency_s(network.topology, result.paths)] * len(result.key_ids)
                    state["consumed"] += result.link_bits_consumed
                    state["path"] = result.path
                    if len(state["key_ids"]) % max(1, keys // 5) == 0:
                        progress(f"{pair[0]}->{pair[1]}: {len(state['key_ids'])}/{keys} keys relayed "
                                 f"at {now_s:.2f} emulated s")
                else:
                    state["errors"].append(result.error)
        now_s = round(now_s + VIRTUAL_STEP_S, 9)
        await network.advance_clock(now_s)
    return [await _pair_summary(network, pair, done[pair]["path"] or network.route(*pair), keys,
                                done[pair]["key_ids"], done[pair]["latencies"], done[pair]["consumed"],
                                done[pair]["errors"], time.monotonic() - started) for pair in pairs]


async def _pair_summary(network: Network, pair: tuple[str, str], path: list[str], keys: int, key_ids: list[str],
                        latencies: list[float], consumed: int, errors: list[str], elapsed: float) -> PairSummary:
    source, destination = pair
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
