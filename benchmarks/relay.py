"""Benchmark: end-to-end relay over a 6-node line (5 hops), every node its own process.

Single-key mode: many concurrent one-key relays; batched mode: relays of 100 keys per call.
Link pools are filled to capacity first (as fast as possible); generation then pauses until a
pool falls below its low watermark (3/4 of capacity), which this run never reaches (capacity is
4.4 times what a link gives), so the figures measure relaying alone; the fill's dirty pages
are written out first (``os.sync``), so the kernel's write-back of it does not stall the stores'
commits mid-run. ``--busy-links`` keeps the pools below capacity so BB84 runs during the relays.
Prints a final JSON line with keys/s, latency p50/p99 and the nodes' CPU time per key for both
modes, and the machine. ``--scrape-every 5`` runs each concurrency level twice on the same
network, once while every node's /metrics is scraped every 5 s as Prometheus would, which shows
what monitoring costs; a level must last several scrape intervals for that to mean anything
(``--concurrency 1 --single 2000 --batches 1``: about 20 s a level).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from machine import CpuMeter, describe, levels_with_and_without_scraper

from qkdnet.orchestrator.network import Network
from qkdnet.orchestrator.stats import percentile
from qkdnet.orchestrator.topology import load

LOW_WATERMARK_MARGIN = 4.4  # capacity / bits a link gives: the level stays above 3/4 of capacity


def _ms(values: list[float], fraction: float) -> float | None:
    value = percentile(values, fraction)
    return None if value is None else round(1000 * value, 3)


async def _single(network: Network, total: int, concurrency: int) -> dict:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[None] = asyncio.Queue()
    for _ in range(total):
        queue.put_nowait(None)

    async def worker():
        nonlocal errors
        while not queue.empty():
            queue.get_nowait()
            t0 = time.perf_counter()
            report = await network.relay("n0", "n5", 1, 256, 60)
            if not report.ok:
                errors += 1
            else:
                latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    meter = CpuMeter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    cpu = meter.per(len(latencies))
    return {"keys_per_s": round(len(latencies) / wall, 1), "p50_ms": _ms(latencies, 0.5),
            "node_cpu_ms_per_key": cpu["node_cpu_ms"], "steal_pct": cpu["steal_pct"],
            "p99_ms": _ms(latencies, 0.99), "keys": len(latencies), "errors": errors, "concurrency": concurrency}


async def _batched(network: Network, batches: int, batch: int, concurrency: int) -> dict:
    latencies: list[float] = []
    delivered = 0
    start = time.perf_counter()
    meter = CpuMeter()

    async def one():
        nonlocal delivered
        t0 = time.perf_counter()
        report = await network.relay("n0", "n5", batch, 256, 60)
        latencies.append(time.perf_counter() - t0)
        delivered += len(report.key_ids)

    for first in range(0, batches, concurrency):  # the last round may be smaller: every batch asked for runs
        await asyncio.gather(*(one() for _ in range(min(concurrency, batches - first))))
    wall = time.perf_counter() - start
    cpu = meter.per(delivered)
    return {"keys_per_s": round(delivered / wall, 1), "batch": batch,
            "node_cpu_ms_per_key": cpu["node_cpu_ms"], "steal_pct": cpu["steal_pct"], "batch_p50_ms": _ms(latencies, 0.5),
            "batch_p99_ms": _ms(latencies, 0.99), "keys": delivered}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--single", type=int, default=1500, help="single-key relays per concurrency level")
    parser.add_argument("--concurrency", default="16,64", help="comma-separated concurrency levels")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--busy-links", action="store_true", help="keep BB84 running during the relays")
    parser.add_argument("--isolation", choices=["process", "netns"], default="process",
                        help="netns: every node in its own namespace, links over veth pairs (root)")
    parser.add_argument("--scrape-every", type=float, default=0.0, metavar="S",
                        help="also run each concurrency level while every node's /metrics is scraped every "
                             "S seconds (as Prometheus would), alternating which goes first")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    topo = load("line:6")
    runs = 2 if args.scrape_every > 0 else 1
    needed = 256 * (200 + runs * args.single * len(levels) + args.batches * 100)  # per link, one direction
    # Pools hold both directions; the level stays above the low watermark (3/4 of capacity).
    capacity = int(needed * (80 if args.busy_links else LOW_WATERMARK_MARGIN))
    # Larger blocks: far more key per block after finite-size terms, so pools fill sooner.
    topo = dataclasses.replace(topo, processing=dataclasses.replace(topo.processing, block_detections=1_000_000),
                               pool_capacity_bits=capacity)
    data = Path(tempfile.mkdtemp(prefix="qkdnet-relay-bench-"))
    machine = describe(data)
    network = Network(topo, time_scale=0, seed=1, data_dir=data, isolation=args.isolation)
    await network.start()
    try:
        t0 = time.perf_counter()
        await network.wait_for_link_key(2 * needed if args.busy_links else capacity, 1800, print)
        fill = time.perf_counter() - t0
        await asyncio.to_thread(os.sync)
        # Latency of one relay at a time, then throughput with concurrency.
        sequential = await _single(network, 200, 1)
        single, scraped = await levels_with_and_without_scraper(
            network, levels, args.scrape_every, lambda concurrency: _single(network, args.single, concurrency))
        batched = await _batched(network, args.batches, 100, 4)
    finally:
        await network.stop()
        shutil.rmtree(data, ignore_errors=True)
    print(json.dumps({"hops": 5, "key_bits": 256, "links_generating": args.busy_links, "isolation": args.isolation, "pool_fill_s": round(fill, 1),
                      "single_sequential": sequential, "single_concurrent": single, "batched": batched,
                      **({"scraped_every_s": args.scrape_every, "single_concurrent_scraped": scraped} if scraped else {}),
                      "best_single_keys_per_s": max(s["keys_per_s"] for s in single), "machine": machine}))


if __name__ == "__main__":
    asyncio.run(main())
