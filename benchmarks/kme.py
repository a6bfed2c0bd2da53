"""Benchmark: ETSI GS QKD 014 enc_keys + dec_keys pairs between two KMEs three hops apart.

A 4-node line (every node a process, key stores on disk), link pools filled first. SAE sae-n0
gets one 256-bit key at KME n0 for sae-n3 (relayed over 3 hops, stored durably at n3), then
sae-n3 fetches it at KME n3; both over HTTPS with mutual TLS and keep-alive connections. Prints
a final JSON line with pairs/s, p50/p99 latency of a whole pair and the nodes' CPU time per pair
(steadier than pairs/s on a shared machine; ``steal_pct`` is the host's share taken away), for
each number of
concurrent SAE pairs asked for (by Little's law, concurrency / throughput bounds the mean
latency: 32 concurrent pairs at 500 pairs/s wait 64 ms on average).

Steady state is measured: before the first level the fill's dirty pages are written out
(``os.sync``), so the kernel's write-back of minutes of key generation does not stall the
stores' commits mid-run; and each level opens its keep-alive connections (mutual-TLS
handshakes) with unmeasured warm-up pairs, as long-running SAEs hold their connections. Pools
are filled to 4.4 times what the run takes from a link, so generation never restarts mid-run
(it resumes below 3/4 of capacity) and the defaults fill in a few minutes. ``--scrape-every 5``
runs each level twice on the same network, once while every node's /metrics is scraped every
5 s as Prometheus would (``levels_scraped``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import ssl
import tempfile
import time
from pathlib import Path

import aiohttp
from machine import CpuMeter, describe, levels_with_and_without_scraper

from qkdnet.orchestrator.network import Network
from qkdnet.orchestrator.stats import percentile
from qkdnet.orchestrator.topology import load

WARMUP_ROUNDS = 4  # unmeasured pairs per concurrent worker before each level
LOW_WATERMARK_MARGIN = 4.4  # capacity / bits a link gives: the level stays above 3/4 of capacity


def _ms(values: list[float], fraction: float) -> float | None:
    value = percentile(values, fraction)
    return None if value is None else round(1000 * value, 2)


def _context(network: Network, sae: str) -> ssl.SSLContext:
    if network.certs is None:
        raise SystemExit("the network has no PKI (started without KMEs?)")
    context = ssl.create_default_context(cafile=str(network.certs.ca_file))
    cert, key = network.certs.sae[sae]
    context.load_cert_chain(str(cert), str(key))
    return context


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--concurrency", default="8,16,32", help="comma-separated levels, --pairs at each")
    parser.add_argument("--scrape-every", type=float, default=0.0, metavar="S",
                        help="also run each level while every node's /metrics is scraped every S seconds "
                             "(as Prometheus would), alternating which goes first")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    topo = load("line:4")
    runs = 2 if args.scrape_every > 0 else 1
    needed = runs * 256 * sum(args.pairs + WARMUP_ROUNDS * c for c in levels)  # per link, one direction
    topo = dataclasses.replace(topo, processing=dataclasses.replace(topo.processing, block_detections=1_000_000),
                               pool_capacity_bits=int(LOW_WATERMARK_MARGIN * needed))
    with tempfile.TemporaryDirectory(prefix="qkdnet-kme-bench-") as data:
        machine = describe(data)
        network = Network(topo, time_scale=0, seed=2, data_dir=Path(data))
        await network.start()
        try:
            t0 = time.perf_counter()
            await network.wait_for_link_key(topo.pool_capacity_bits, 1800, print)
            fill = time.perf_counter() - t0
            await asyncio.to_thread(os.sync)
            results, scraped = await levels_with_and_without_scraper(
                network, levels, args.scrape_every, lambda concurrency: _run(network, args.pairs, concurrency))
        finally:
            await network.stop()
    extra = {"levels_scraped_every_s": args.scrape_every, "levels_scraped": scraped} if scraped else {}
    print(json.dumps({"hops": 3, "key_bits": 256, "pool_fill_s": round(fill, 1), "levels": results, **extra,
                      "machine": machine}))


async def _run(network: Network, pairs: int, concurrency: int) -> dict:
    enc_url = network.nodes["n0"].kme_url + "/api/v1/keys/sae-n3/enc_keys"
    dec_url = network.nodes["n3"].kme_url + "/api/v1/keys/sae-n0/dec_keys"
    master = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_context(network, "sae-n0"), limit=concurrency))
    slave = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_context(network, "sae-n3"), limit=concurrency))
    latencies: list[float] = []
    enc_latencies: list[float] = []
    dec_latencies: list[float] = []
    mismatches = errors = 0
    remaining = 0

    async def worker():
        nonlocal remaining, mismatches, errors
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            async with master.post(enc_url, json={"number": 1, "size": 256}) as reply:
                if reply.status != 200:
                    errors += 1
                    continue
                sent = await reply.json()
            ids = [{"key_ID": k["key_ID"]} for k in sent["keys"]]
            t1 = time.perf_counter()
            async with slave.post(dec_url, json={"key_IDs": ids}) as reply:
                got = await reply.json() if reply.status == 200 else None
            t2 = time.perf_counter()
            latencies.append(t2 - t0)
            enc_latencies.append(t1 - t0)
            dec_latencies.append(t2 - t1)
            if got != sent:
                mismatches += 1

    try:
        remaining = WARMUP_ROUNDS * concurrency  # opens the connections; not measured
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        if errors or mismatches:
            raise SystemExit(f"warm-up failed: {errors} errors, {mismatches} mismatches")
        for measured in (latencies, enc_latencies, dec_latencies):
            measured.clear()
        remaining = pairs
        start = time.perf_counter()
        meter = CpuMeter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        cpu = meter.per(len(latencies))
    finally:
        await master.close()
        await slave.close()
    return {"pairs": len(latencies), "pairs_per_s": round(len(latencies) / wall, 1),
            "p50_ms": _ms(latencies, 0.5), "p99_ms": _ms(latencies, 0.99),
            "enc_p99_ms": _ms(enc_latencies, 0.99), "dec_p99_ms": _ms(dec_latencies, 0.99),
            "node_cpu_ms_per_pair": cpu["node_cpu_ms"], "steal_pct": cpu["steal_pct"],
            "concurrency": concurrency, "mismatches": mismatches, "errors": errors}


if __name__ == "__main__":
    asyncio.run(main())
