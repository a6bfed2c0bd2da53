"""Benchmark: what one Prometheus scrape of a node's /metrics costs the node, in CPU time.

A 6-node line (every node a process, with its KME; small pools, filled first, so the links are
paused), scraped back to back over mutual TLS with the monitor identity, as Prometheus would
(keep-alive connections). The nodes' CPU time over the scrapes, less their CPU time over an equal
idle span just before, divided by the scrapes, is the cost of one scrape; at one scrape per node every
``--interval`` seconds that is the share of the machine monitoring takes, an upper bound on what
it can take from relay or KME throughput (a saturated benchmark has nothing else to give it).
Prints a final JSON line.
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
from machine import CpuMeter, describe

from qkdnet.orchestrator.network import Network
from qkdnet.orchestrator.topology import load

POOL_BITS = 40_000  # a block or two: the pools are full, and the links idle, before the scrapes


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scrapes", type=int, default=300, help="scrapes per node")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between scrapes of a node")
    args = parser.parse_args()
    topo = dataclasses.replace(load("line:6"), pool_capacity_bits=POOL_BITS)
    with tempfile.TemporaryDirectory(prefix="qkdnet-scrape-bench-") as data:
        machine = describe(data)
        network = Network(topo, time_scale=0, seed=4, data_dir=Path(data))
        await network.start()
        try:
            await network.wait_for_link_key(POOL_BITS, 600)  # full: generation pauses
            certs = network.certs
            assert certs is not None
            context = ssl.create_default_context(cafile=str(certs.ca_file))
            context.load_cert_chain(*map(str, certs.monitor or certs.controller))
            urls = [h.metrics_url for h in network.nodes.values()]
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
                for url in urls:  # open the keep-alive connections (one handshake each, as Prometheus)
                    async with session.get(url) as reply:
                        sample = await reply.read()
                started = time.perf_counter()
                for _ in range(args.scrapes):
                    for url in urls:
                        async with session.get(url) as reply:
                            await reply.read()
                busy_s = time.perf_counter() - started
                idle = CpuMeter()  # the same span with no scrapes: what generation costs meanwhile
                await asyncio.sleep(busy_s)
                idle_cpu = idle.per(1)
                busy = CpuMeter()
                for _ in range(args.scrapes):
                    for url in urls:
                        async with session.get(url) as reply:
                            await reply.read()
                busy_cpu = busy.per(1)
        finally:
            await network.stop()
    scrapes = args.scrapes * len(urls)
    per_scrape_ms = max(0.0, (busy_cpu["node_cpu_ms"] or 0.0) - (idle_cpu["node_cpu_ms"] or 0.0)) / scrapes
    share = len(urls) * per_scrape_ms / (1000 * args.interval) / (os.cpu_count() or 1)
    print(json.dumps({"nodes": len(urls), "scrapes": scrapes, "metrics_bytes": len(sample),
                      "node_cpu_ms_per_scrape": round(per_scrape_ms, 3),
                      "interval_s": args.interval, "machine_share_pct": round(100 * share, 4),
                      "steal_pct": busy_cpu["steal_pct"], "machine": machine}))


if __name__ == "__main__":
    asyncio.run(main())
