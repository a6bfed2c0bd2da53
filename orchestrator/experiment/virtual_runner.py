"""One experiment run in virtual time: results that depend on the topology, the physics, the
demand and the seed, not on the host.

Layer: orchestrator, control plane. The controller owns the network's emulated clock. It moves
it in steps of at most ``clock_step_s`` to the end of the next step holding an event, a request
or a poll; each advance returns only once every link has produced its blocks up to the new time
(``node.virtual_clock``), so the pools then hold exactly the key the physics made by then. The
step's cuts, repairs and impairments, then its requests, then its poll are served one at a time
in time order (ties in the order the demand lists them): concurrent requests inside a step meet
the pools in the same order on every run. A request's latency is modelled, not measured: the
wait to the end of its step plus, per attempt, its route's modelled time
(``orchestrator.latency_model``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from qkdnet.node.relay.result import RelayResult
from qkdnet.node.routing import RouteRequest, StrategySpec
from qkdnet.node.settings import ClockMode
from qkdnet.node.status import NodeStatus
from qkdnet.orchestrator.certs import CertPaths
from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.experiment.config import ExperimentConfig, LinkEvent
from qkdnet.orchestrator.experiment.demand import Arrival
from qkdnet.orchestrator.experiment.live_metrics import ExperimentMetrics
from qkdnet.orchestrator.experiment.runner import (
    Progress,
    RunResult,
    apply_event,
    final_state,
    link_seed_for,
)
from qkdnet.orchestrator.latency_model import route_latency_s
from qkdnet.orchestrator.network import ATTACH_TIMEOUT_S, Network
from qkdnet.orchestrator.router import Router

# A relay in virtual time never waits for key (the clock stands still while it runs), so only a
# node that stops answering makes it this slow; the wall timeout keeps load from failing one.
RELAY_WALL_TIMEOUT_S = 300.0
WARMUP_STEP_S = 1.0  # emulated: how far the clock moves at a time while waiting for warm-up key
WARMUP_MAX_S = 3600.0  # emulated: warm-up key not reached by then is an error
_RANKS = {"event": 0, "request": 1, "poll": 2}  # at one time: faults first, then demand, then the poll


@dataclass(frozen=True)
class _Item:
    t_s: float
    kind: str  # event, request, poll
    index: int
    arrival: Arrival | None = None
    event: LinkEvent | None = None

    @property
    def order(self) -> tuple[float, int, int]:
        return self.t_s, _RANKS[self.kind], self.index


class EmulatedClock:
    """The controller's side of the clock: advances every node and times the barrier."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.now_s = 0.0
        self.statuses: dict[str, NodeStatus | None] = {}
        self.barrier_wall_s = 0.0  # wall seconds in advances (links finishing their blocks, RPCs)
        self.advances = 0

    async def advance_to(self, to_s: float, horizon_s: float = 0.0) -> None:
        if to_s <= self.now_s and self.advances:
            return
        started = time.perf_counter()
        self.statuses = await self.network.advance_clock(to_s, max(to_s, horizon_s))
        self.barrier_wall_s += time.perf_counter() - started
        self.now_s = max(self.now_s, to_s)
        self.advances += 1

    def link_levels(self) -> list[int]:
        return [l.pool_bits for s in self.statuses.values() if s is not None for l in s.links
                if l.role == "transmitter"]


def step_end(t_s: float, step_s: float) -> float:
    """The end of the clock step holding ``t_s`` (a time on a step boundary ends its own step)."""
    return math.ceil(t_s / step_s - 1e-9) * step_s


def timeline(config: ExperimentConfig, arrivals: list[Arrival]) -> list[_Item]:
    items = [_Item(a.t_s, "request", i, arrival=a) for i, a in enumerate(arrivals)]
    items += [_Item(e.at_s, "event", i, event=e) for i, e in enumerate(config.events)]
    polls = int(config.duration_s // config.poll_s)
    items += [_Item(k * config.poll_s, "poll", k) for k in range(1, polls + 1)]
    return sorted(items, key=lambda item: item.order)


async def run_one_virtual(config: ExperimentConfig, spec: StrategySpec, seed: int, repetition: int,
                          arrivals: list[Arrival], say: Progress, metrics: ExperimentMetrics | None = None,
                          certs: CertPaths | None = None, attach_timeout_s: float = ATTACH_TIMEOUT_S) -> RunResult:
    result = RunResult(spec.label, seed, repetition)
    wall = time.perf_counter
    t = wall()
    network = Network(config.topology, time_scale=config.time_scale, seed=link_seed_for(seed, repetition), kme=False,
                      certs=certs, attach_timeout_s=attach_timeout_s, fresh_start=True, clock=ClockMode.VIRTUAL)
    await network.start()
    result.wall_s["boot"] = wall() - t
    clock = EmulatedClock(network)
    try:
        t = wall()
        await _warm_up(clock, config)
        result.wall_s["warmup"] = wall() - t
        demand_start_s = clock.now_s  # emulated time 0 of the demand
        router = Router(network, spec.make(), retries=config.retries)
        await router.refresh()  # after every node answered: receivers too hold their blocks by then
        t = wall()
        barrier_before = clock.barrier_wall_s
        served_s = 0.0
        items = timeline(config, arrivals)
        faults = sorted(step_end(e.at_s, config.clock_step_s) for e in config.events if e.kind != "burst")
        i = 0
        tenth = 1
        while i < len(items):
            end_s = step_end(items[i].t_s, config.clock_step_s)
            # Links may run ahead up to the step of the next fault not yet served, and lookahead_s.
            next_fault_s = next((f for f in faults if f >= end_s), math.inf)
            await clock.advance_to(demand_start_s + end_s,
                                   demand_start_s + min(next_fault_s, end_s + config.lookahead_s))
            if end_s >= tenth * config.duration_s / 10:
                tenth = int(10 * end_s / config.duration_s) + 1
                say(f"  {spec.label}: {end_s:.1f}/{config.duration_s:g} emulated s of demand, "
                    f"{wall() - t:.0f} s wall")
            step_started = wall()
            while i < len(items) and step_end(items[i].t_s, config.clock_step_s) == end_s:
                await _serve(items[i], end_s, network, router, config, result, metrics)
                i += 1
            served_s += wall() - step_started
        await clock.advance_to(demand_start_s + config.duration_s)  # no run-ahead past the end
        result.wall_s["demand"] = wall() - t
        result.wall_s["drain"] = 0.0
        t = wall()
        await final_state(network, result, clock.now_s)
        result.wall_s["collect"] = wall() - t
        result.clock = dict(mode="virtual", step_s=config.clock_step_s, advances=clock.advances,
                            demand_start_s=round(demand_start_s, 6), end_s=round(clock.now_s, 6),
                            # the demand's wall time: advancing the clock (links producing key up
                            # to it) and serving the steps (relays, faults, polls)
                            sync_wall_s=round(clock.barrier_wall_s - barrier_before, 3),
                            serve_wall_s=round(served_s, 3), **_link_wait_shares(clock, result))
    finally:
        t = wall()
        await network.stop()
        result.wall_s["stop"] = wall() - t
    delivered = sum(r["outcome"] == "delivered" for r in result.requests)
    emulated_per_wall = clock.now_s / max(sum(result.wall_s.values()), 1e-9)
    say(f"  {spec.label}: {delivered}/{len(result.requests)} delivered; wall {sum(result.wall_s.values()):.1f} s, "
        f"{emulated_per_wall:.2f} emulated s per wall s, {clock.advances} clock steps")
    return result


def _link_wait_shares(clock: EmulatedClock, result: RunResult) -> dict:
    """The share of the links' wall time each transmitter spent waiting for the clock: the
    synchronisation's cost. Its minimum is that of the busiest link, the one the clock waits for."""
    links_wall_s = result.wall_s["boot"] + result.wall_s["warmup"] + result.wall_s["demand"]
    waits = [link.clock_wait_s for status in clock.statuses.values() if status is not None
             for link in status.links if link.role == "transmitter"]
    if not waits or links_wall_s <= 0:
        return dict(link_wait_share_min=None, link_wait_share_mean=None)
    return dict(link_wait_share_min=round(min(waits) / links_wall_s, 4),
                link_wait_share_mean=round(sum(waits) / len(waits) / links_wall_s, 4))


async def _warm_up(clock: EmulatedClock, config: ExperimentConfig) -> None:
    """Key generation before the demand: ``warmup_s``, then until every link holds
    ``warmup_key_bits`` (checked once per emulated second, so the demand starts at the same
    emulated time on every run)."""
    await clock.advance_to(config.warmup_s)
    while config.warmup_key_bits and min(clock.link_levels(), default=0) < config.warmup_key_bits:
        if clock.now_s >= config.warmup_s + WARMUP_MAX_S:
            raise QkdnetError(f"links did not generate {config.warmup_key_bits} bits of key within "
                              f"{WARMUP_MAX_S:.0f} emulated seconds of warm-up")
        await clock.advance_to(clock.now_s + WARMUP_STEP_S)
    # The demand's first faults may come at its time 0: no run-ahead across the warm-up's end.


async def _serve(item: _Item, at_s: float, network: Network, router: Router, config: ExperimentConfig,
                 result: RunResult, metrics: ExperimentMetrics | None) -> None:
    """One timeline item, served at emulated ``at_s`` (its step's end, demand time)."""
    if item.kind == "event" and item.event is not None:
        result.events.append(await apply_event(network, router, item.event, round(at_s, 6)))
    elif item.kind == "poll":
        try:
            await router.refresh()
        except QkdnetError:  # a node died: the next poll sees it as down
            return
        result.pools += [dict(t_s=round(at_s, 6), **row) for row in router.live.snapshot()]
    elif item.arrival is not None:
        await _request(item.arrival, at_s, router, config, result, metrics)


async def _request(arrival: Arrival, at_s: float, router: Router, config: ExperimentConfig, result: RunResult,
                   metrics: ExperimentMetrics | None) -> None:
    request = RouteRequest(arrival.source, arrival.destination, arrival.key_bits)
    routed: RelayResult = await router.relay(request, RELAY_WALL_TIMEOUT_S)
    paths = [list(p) for p in routed.paths]
    latency_s = (at_s - arrival.t_s) + max(routed.attempts, 1) * route_latency_s(
        config.topology, paths, config.hop_processing_s)
    outcome = routed.outcome
    if outcome == "delivered" and latency_s > config.request_timeout_s:
        outcome = "timed_out"  # the key arrived after its requester gave up
    if metrics is not None:
        metrics.record(result.strategy, routed)
    result.requests.append(dict(
        t_s=round(arrival.t_s, 6), done_s=round(arrival.t_s + latency_s, 6), source=arrival.source,
        destination=arrival.destination, key_bits=arrival.key_bits, outcome=outcome,
        hops=max((len(p) - 1 for p in paths), default=0), paths=";".join("-".join(p) for p in paths),
        latency_ms=round(latency_s * 1000, 3), attempts=routed.attempts,
        link_bits_consumed=routed.link_bits_consumed, key_id=(routed.key_ids or [""])[0], error=routed.error))


__all__ = ["RELAY_WALL_TIMEOUT_S", "EmulatedClock", "run_one_virtual", "step_end", "timeline"]
