"""Benchmark: a routing experiment on live node processes (default: 10 emulated minutes on the
32-node Beijing-Shanghai chain; ``--clock realtime`` runs it at time scale 4 instead of in
virtual time).

Prints the wall time, emulated seconds per wall second, the relays per wall second the
orchestrator sustained, where the wall time and the CPU time went, and how well the links kept
up (real time) or how long the busiest link waited for the clock (virtual time); last line JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import pathlib
import sys
import tempfile
import time

from machine import describe, host_ticks

from qkdnet.node.settings import CLOCK_MODES, ClockMode
from qkdnet.orchestrator.experiment.config import load_config
from qkdnet.orchestrator.experiment.report import write_results
from qkdnet.orchestrator.experiment.runner import run_experiment

DEFAULT = pathlib.Path(__file__).resolve().parent.parent / "experiments" / "beijing_shanghai.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", nargs="?", type=pathlib.Path, default=DEFAULT)
    parser.add_argument("--out", type=pathlib.Path, help="keep the results here (default: a temporary directory)")
    parser.add_argument("--clock", choices=CLOCK_MODES, help="override the experiment's clock mode")
    args = parser.parse_args()
    machine = describe()
    config = load_config(args.config)
    if args.clock:
        config = dataclasses.replace(config, clock=ClockMode(args.clock))
    before = os.times()
    ticks_before = host_ticks()
    started = time.perf_counter()
    results = asyncio.run(run_experiment(config, lambda m: print(m, file=sys.stderr, flush=True)))
    wall = time.perf_counter() - started
    after = os.times()  # node processes are reaped descendants by now: their CPU is in children_*
    ticks = [now - then for now, then in zip(host_ticks(), ticks_before, strict=True)]
    total_ticks = int(sum(ticks))
    with tempfile.TemporaryDirectory() as tmp:
        summary = write_results(config, results, args.out or pathlib.Path(tmp))
    orchestrator_cpu = (after.user - before.user) + (after.system - before.system)
    nodes_cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    requests = sum(s["requests"] for s in summary["strategies"].values())
    demand_wall = sum(s["wall_s"]["demand"] + s["wall_s"]["drain"] for s in summary["strategies"].values())
    virtual = config.clock is ClockMode.VIRTUAL
    emulated_s = config.duration_s + config.warmup_s
    sync_s = sum(s["demand_wall_s"]["sync"] for s in summary["strategies"].values()) if virtual else None
    line = {
        "experiment": config.name, "topology": config.topology.name, "nodes": len(config.topology.nodes),
        "clock": config.clock.value, "emulated_s": emulated_s,
        "time_scale": None if virtual else config.time_scale,
        "wall_s": round(wall, 1), "emulated_s_per_wall_s": round(emulated_s * len(results) / wall, 4),
        "requests": requests,
        "delivered": sum(s["delivered"] for s in summary["strategies"].values()),
        "relays_per_wall_s": round(requests / demand_wall, 2) if demand_wall else None,
        "wall_breakdown_s": {k: round(sum(s["wall_s"][k] for s in summary["strategies"].values()), 1)
                             for k in ("boot", "warmup", "demand", "drain", "collect", "stop")},
        "cpu_s": {"orchestrator": round(orchestrator_cpu, 1), "node_processes": round(nodes_cpu, 1),
                  "available": round(wall * (os.cpu_count() or 1), 1)},
        "min_link_clock_ratio": None if virtual else min(s["min_link_clock_ratio"]
                                                         for s in summary["strategies"].values()),
        # Virtual time: the demand's wall time advancing the clock (links computing up to it) and
        # the share of their wall time the busiest and the average link waited for the clock.
        "demand_sync_s": None if sync_s is None else round(sync_s, 1),
        # The host's CPU left idle (and taken by other tenants) over the run: what waiting at the
        # clock's barrier cost when every process waited at once.
        "host_cpu_idle_share": round((ticks[3] + ticks[4]) / total_ticks, 4) if total_ticks else None,
        "host_cpu_steal_share": round(ticks[7] / total_ticks, 4) if len(ticks) > 7 and total_ticks else None,
        "link_wait_share_min": None if not virtual else min(s["link_wait_share_min"] or 0.0
                                                             for s in summary["strategies"].values()),
        "link_wait_share_mean": None if not virtual else max(s["link_wait_share_mean"] or 0.0
                                                              for s in summary["strategies"].values()),
        "strategies": {k: {m: v[m] for m in ("blocking_probability", "delivered_bits_per_s", "latency_ms_p50",
                                             "latency_ms_p99")} for k, v in summary["strategies"].items()},
    }
    print(json.dumps({**line, "machine": machine}))


if __name__ == "__main__":
    main()
