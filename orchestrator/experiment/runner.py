"""Runs an experiment: for every seed, repetition and strategy, a fresh network of real node
processes faces the same demand; requests are routed on live state as they arrive.

Layer: orchestrator, control plane. In real time, emulated time is wall time times
``time_scale`` from the moment demand starts; in virtual time (the default) the run is driven by
``experiment.virtual_runner`` instead. The runner records every request, pool levels at each
poll, final link accounting and what each node decrypted as an intermediate, and the wall time
of each phase.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from qkdnet.node.impairment import Impairment
from qkdnet.node.relay.result import RelayResult
from qkdnet.node.routing import RouteRequest, StrategySpec
from qkdnet.node.settings import ClockMode
from qkdnet.orchestrator.certs import CertPaths
from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.experiment.config import ExperimentConfig, LinkEvent
from qkdnet.orchestrator.experiment.demand import Arrival, poisson_arrivals, trace_arrivals
from qkdnet.orchestrator.experiment.live_metrics import ExperimentMetrics
from qkdnet.orchestrator.network import ATTACH_TIMEOUT_S, Network
from qkdnet.orchestrator.router import Router

Progress = Callable[[str], None]
WARMUP_KEY_TIMEOUT_S = 600.0  # wall seconds for every link to reach warmup_key_bits


@dataclass
class RunResult:
    strategy: str
    seed: int
    repetition: int
    requests: list[dict] = field(default_factory=list)
    pools: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    exposure: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    wall_s: dict = field(default_factory=dict)
    clock: dict = field(default_factory=dict)  # virtual time: step, advances, where the demand began and ended


def arrivals_for(config: ExperimentConfig, seed: int, repetition: int) -> list[Arrival]:
    """The demand: the trace or the Poisson flows, plus every burst event's requests at its time."""
    if config.trace is not None:
        arrivals = trace_arrivals(config.trace, config.topology, config.duration_s)
    else:
        arrivals = poisson_arrivals(config.demand, config.duration_s, seed, repetition)
    bursts = [Arrival(e.at_s, e.u, e.v, e.key_bits) for e in config.events if e.kind == "burst"
              for _ in range(e.requests)]
    return sorted(arrivals + bursts, key=lambda a: a.t_s) if bursts else arrivals


async def run_experiment(config: ExperimentConfig, progress: Progress | None = None,
                         metrics: ExperimentMetrics | None = None, certs: CertPaths | None = None,
                         attach_timeout_s: float = ATTACH_TIMEOUT_S) -> list[RunResult]:
    """``metrics``: where each request's outcome is counted as it completes (live, for Prometheus).
    ``certs``: the PKI of nodes the topology's deployment section places elsewhere. The runner
    attaches to them for every run; each run ends by shutting them down, as it does the nodes it
    starts, so whatever runs them (Compose, a StatefulSet) must start them again, and each run
    begins with a fresh start of their stores, so every run faces the same empty pools."""
    say = progress or (lambda _: None)
    results = []
    for seed in config.seeds:
        for repetition in range(config.repetitions):
            arrivals = arrivals_for(config, seed, repetition)
            for spec in config.strategies:
                say(f"run {spec.label} seed {seed} repetition {repetition}: {len(arrivals)} requests "
                    f"({config.clock.value} time)")
                if config.clock is ClockMode.VIRTUAL:
                    from qkdnet.orchestrator.experiment.virtual_runner import run_one_virtual

                    results.append(await run_one_virtual(config, spec, seed, repetition, arrivals, say, metrics,
                                                         certs, attach_timeout_s))
                else:
                    results.append(await run_one(config, spec, seed, repetition, arrivals, say, metrics, certs,
                                                 attach_timeout_s))
    return results


def link_seed_for(seed: int, repetition: int) -> int:
    """Every strategy of a (seed, repetition) gets the same link randomness, so runs are paired."""
    return int(np.random.SeedSequence([seed, repetition]).generate_state(1, np.uint32)[0])


async def run_one(config: ExperimentConfig, spec: StrategySpec, seed: int, repetition: int,
                  arrivals: list[Arrival], say: Progress, metrics: ExperimentMetrics | None = None,
                  certs: CertPaths | None = None, attach_timeout_s: float = ATTACH_TIMEOUT_S) -> RunResult:
    result = RunResult(spec.label, seed, repetition)
    clock = time.perf_counter
    t = clock()
    link_seed = link_seed_for(seed, repetition)
    network = Network(config.topology, time_scale=config.time_scale, seed=link_seed, kme=False, certs=certs,
                      attach_timeout_s=attach_timeout_s, fresh_start=True)
    await network.start()
    result.wall_s["boot"] = clock() - t
    try:
        t = clock()
        await asyncio.sleep(config.warmup_s / config.time_scale)
        if config.warmup_key_bits:
            await network.wait_for_link_key(config.warmup_key_bits, WARMUP_KEY_TIMEOUT_S)
        result.wall_s["warmup"] = clock() - t
        router = Router(network, spec.make(), retries=config.retries)
        await router.refresh()
        t0 = clock()

        def now_s() -> float:
            return (clock() - t0) * config.time_scale

        poller = asyncio.create_task(_poll(router, config, now_s, result))
        cutter = asyncio.create_task(_events(network, router, config, now_s, result))
        pending = []
        for arrival in arrivals:
            delay = arrival.t_s / config.time_scale - (clock() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(_request(router, arrival, config, now_s, result, metrics)))
        demand_end = clock()
        await asyncio.gather(*pending)
        result.wall_s["demand"] = demand_end - t0
        result.wall_s["drain"] = clock() - demand_end
        remaining = config.duration_s / config.time_scale - (clock() - t0)
        if remaining > 0:
            await asyncio.sleep(remaining)
        poller.cancel()
        cutter.cancel()
        await asyncio.gather(poller, cutter, return_exceptions=True)
        t = clock()
        await final_state(network, result, config.warmup_s + config.duration_s)
        result.wall_s["collect"] = clock() - t
    finally:
        t = clock()
        await network.stop()
        result.wall_s["stop"] = clock() - t
    delivered = sum(r["outcome"] == "delivered" for r in result.requests)
    say(f"  {spec.label}: {delivered}/{len(result.requests)} delivered; "
        f"wall {sum(result.wall_s.values()):.1f} s")
    return result


Clock = Callable[[], float]


async def _request(router: Router, arrival: Arrival, config: ExperimentConfig, now_s: Clock,
                   result: RunResult, metrics: ExperimentMetrics | None = None) -> None:
    request = RouteRequest(arrival.source, arrival.destination, arrival.key_bits)
    routed: RelayResult = await router.relay(request, config.request_timeout_s)
    if metrics is not None:
        metrics.record(result.strategy, routed)
    result.requests.append(dict(
        t_s=round(arrival.t_s, 6), done_s=round(now_s(), 6), source=arrival.source,
        destination=arrival.destination, key_bits=arrival.key_bits, outcome=routed.outcome,
        hops=max((len(p) - 1 for p in routed.paths), default=0), paths=";".join("-".join(p) for p in routed.paths),
        latency_ms=round(routed.latency_s * 1000, 3), attempts=routed.attempts,
        link_bits_consumed=routed.link_bits_consumed, key_id=(routed.key_ids or [""])[0], error=routed.error))


async def _poll(router: Router, config: ExperimentConfig, now_s: Clock, result: RunResult) -> None:
    while True:
        await asyncio.sleep(config.poll_s / config.time_scale)
        try:
            await router.refresh()
        except QkdnetError:  # a node died mid-poll: the next poll sees it as down
            continue
        t = round(now_s(), 3)
        result.pools += [dict(t_s=t, **row) for row in router.live.snapshot()]


async def _events(network: Network, router: Router, config: ExperimentConfig, now_s: Clock,
                  result: RunResult) -> None:
    for event in sorted(config.events, key=lambda e: e.at_s):
        delay = (event.at_s - now_s()) / config.time_scale
        if delay > 0:
            await asyncio.sleep(delay)
        result.events.append(await apply_event(network, router, event, round(now_s(), 3)))


async def apply_event(network: Network, router: Router, event: LinkEvent, t_s: float) -> dict:
    """Put a cut, repair or impairment on the network (a burst's requests are part of the
    demand: it is only recorded); the row for ``events.csv``."""
    detail = ""
    if event.kind == "burst":
        detail = f"{event.requests} requests of {event.key_bits} bits {event.u}->{event.v}"
    elif event.kind == "cut":
        await network.cut_link(event.u, event.v)
        router.live.mark_down(event.u, event.v)
    elif event.kind == "restore":
        await network.restore_link(event.u, event.v)
        await router.refresh()
    else:
        detail = await network.impair(event.u, event.v, event.impairment or Impairment())
    where = f"{event.u}->{event.v}" if event.kind == "burst" else f"{event.u}-{event.v}"
    return dict(t_s=t_s, event=event.kind, link=where, detail=detail)


async def final_state(network: Network, result: RunResult, emulated_total: float) -> None:
    """Each link end's accounting and what each node decrypted as an intermediate."""
    status = await network.status()
    for name, node in status.items():
        for link in node.links if node is not None else []:
            result.links.append(dict(
                node=name, peer=link.peer, role=link.role, state=link.state, generated_bits=link.generated_bits,
                pool_bits=link.pool_bits, consumed_bits=link.consumed_bits, discarded_bits=link.discarded_bits,
                balanced=link.balanced,
                link_clock_ratio=round(link.emulated_seconds / emulated_total, 4) if emulated_total else 0.0))
    for name, node in status.items():
        if node is None:
            continue
        seen = await network.exposure(name)
        shares: defaultdict[str, set[int]] = defaultdict(set)
        counts: dict[str, int] = {}
        for entry in seen.entries:
            shares[entry.key_id].add(entry.share_index)
            counts[entry.key_id] = entry.share_count
        readable = sum(1 for key, indices in shares.items() if 0 in indices or len(indices) >= counts[key])
        result.exposure.append(dict(node=name, keys_read_whole=seen.keys_read_whole, shares_read=seen.shares_read,
                                    keys_readable=readable))


def as_rows(results: list[RunResult], part: str) -> list[dict]:
    return [dict(strategy=r.strategy, seed=r.seed, repetition=r.repetition, **row)
            for r in results for row in getattr(r, part)]


__all__ = ["RunResult", "apply_event", "arrivals_for", "as_rows", "final_state", "link_seed_for", "run_experiment",
           "run_one"]
