"""Benchmark: boot time (all processes up, healthy and configured) and resident memory per node.

With ``--isolation netns`` the boot includes making every namespace, the management bridge and
a veth pair per link.

Links run with time_scale 0 for the boot only; the network is stopped right after measuring.
Prints a final JSON line with one entry per size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from machine import describe

from qkdnet.orchestrator.network import Network
from qkdnet.orchestrator.topology import load


def _proc_mb(pid: int, file: str, field: str) -> float:
    """A memory figure from /proc (VmRSS in status; Pss in smaps_rollup, shared pages split among users)."""
    with open(f"/proc/{pid}/{file}") as lines:
        for line in lines:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return 0.0


async def measure(n: int, isolation: str) -> dict:
    network = Network(load(f"ring:{n}"), time_scale=1.0, seed=n, isolation=isolation)
    start = time.perf_counter()
    await network.start()
    boot = time.perf_counter() - start
    try:
        status = await network.status()
        healthy = sum(s is not None for s in status.values())
        rss = [_proc_mb(h.local_process.pid, "status", "VmRSS:") for h in network.nodes.values()]
        pss = [_proc_mb(h.local_process.pid, "smaps_rollup", "Pss:") for h in network.nodes.values()]
    finally:
        await network.stop()
    return {"nodes": n, "isolation": isolation, "boot_s": round(boot, 2), "healthy": healthy,
            "rss_mb_per_node_mean": round(sum(rss) / len(rss), 1), "rss_mb_per_node_max": round(max(rss), 1),
            "pss_mb_per_node_mean": round(sum(pss) / len(pss), 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument("--isolation", choices=["process", "netns"], default="process",
                        help="netns: every node in its own network namespace (root)")
    args = parser.parse_args()
    machine = describe()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        results.append(await measure(n, args.isolation))
        print(results[-1], flush=True)
    print(json.dumps({"scale": results, "machine": machine}))


if __name__ == "__main__":
    asyncio.run(main())
