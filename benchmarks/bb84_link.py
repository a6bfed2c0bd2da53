"""Benchmark: the full BB84 pipeline on the standard modern link, both ends in one process.

Prints per-block lines, per-stage times and a final JSON line. ``realtime_factor`` is emulated
link seconds (pulses / pulse rate) per wall second; ``efficiency_f`` is leak_EC / (n h(QBER))
(``cascade_efficiency`` too, under its old name, for Cascade); ``frame_error_rate`` is the share
of LDPC frames dropped (not decoded when their filler ran out), ``first_try_failure_rate`` the
share not decoded at the first try (by design nearly all: the blind protocol starts low). With
``--workers N`` the blocks run in N processes at once, each with its own link (seeds spawned
from ``--seed``): how a multi-core host runs a link's blocks. With ``--threads N`` the N links run
in threads of one process instead: how a node runs its links (each link's blocks in threads; the
compiled kernels release the GIL).
Memory is the peak resident size of one process (each worker or thread holds one block).

Timing is the steady state of a running link: each worker first runs ``--warmup-blocks``
full-size blocks untimed (kernels loaded, the link's Cascade shuffles computed, memory touched),
then all start the timed blocks together. ``--warmup-blocks 0`` times a cold start instead.
"""

from __future__ import annotations

import argparse
import json
import resource
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Manager

import numpy as np
from machine import describe

from qkdnet.node.qkd.analytic import binary_entropy
from qkdnet.node.qkd.link import InMemoryLink
from qkdnet.node.qkd.params import RECONCILERS, STANDARD, ProcessingParams


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_blocks(blocks: int, detections: int, reconciler: str, seed: np.random.SeedSequence,
               warmup_blocks: int = 0, start_together=None) -> dict:
    """One worker: ``warmup_blocks`` untimed blocks, then ``blocks`` timed blocks of one link
    (after ``start_together``, a barrier, if given); totals, per-stage seconds, per-block lines."""
    link = InMemoryLink(STANDARD, ProcessingParams(block_detections=detections, reconciler=reconciler),
                        seed=seed, clock=time.perf_counter)
    for _ in range(warmup_blocks):
        link.run_block()
    link.stage_seconds.clear()
    if start_together is not None:
        start_together.wait()
    started = time.monotonic()
    totals: dict[str, float] = defaultdict(float)
    lines = []
    rss_first = 0.0
    for block in range(blocks):
        pair = link.run_block()
        a, b = pair.alice, pair.bob
        totals["pulses"] += pair.n_pulses
        totals["sifted"] += a.sifted_key_bits
        totals["frames"] += b.frames
        totals["frames_failed_first"] += b.frames_failed_first
        totals["frames_dropped"] += b.frames_dropped
        totals["rounds"] += a.cascade_rounds
        totals["accepted"] += a.accepted
        if a.accepted and a.qber_z is not None:
            totals["secret"] += a.amplified_bits
            totals["net"] += a.net_key_bits
            totals["leak"] += a.leak_ec_bits
            totals["kept"] += a.sifted_key_bits
            totals["weighted_h"] += a.sifted_key_bits * float(binary_entropy(a.qber_z))
            totals["errors"] += round(a.qber_z * a.sifted_key_bits)
        lines.append(f"block {block + 1}: accepted={a.accepted} sifted={a.sifted_key_bits} secret={a.amplified_bits} "
                     f"qber_z={a.qber_z} leak={a.leak_ec_bits} rounds={a.cascade_rounds} "
                     f"frames={b.frames} failed_first={b.frames_failed_first} dropped={b.frames_dropped} "
                     f"{'' if a.accepted else a.abort_reason}")
        if block == 0:
            rss_first = _rss_mb()
    return {"totals": dict(totals), "stages": dict(link.stage_seconds), "lines": lines,
            "rss_first": rss_first, "rss": _rss_mb(), "started": started, "ended": time.monotonic()}


def _in_threads(args: argparse.Namespace, seeds: list[np.random.SeedSequence]) -> list[dict]:
    """One link per thread of this process, the timed blocks started together."""
    barrier = threading.Barrier(args.threads)
    results: list[dict] = [{} for _ in range(args.threads)]

    def one(i: int) -> None:
        results[i] = run_blocks(args.blocks, args.detections, args.reconciler, seeds[i], args.warmup_blocks, barrier)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=8, help="timed blocks per worker")
    parser.add_argument("--detections", type=int, default=ProcessingParams().block_detections)
    parser.add_argument("--reconciler", choices=RECONCILERS, default="cascade")
    parser.add_argument("--workers", type=int, default=1, help="links, each in its own process")
    parser.add_argument("--threads", type=int, default=1, help="links, each in its own thread of one process")
    parser.add_argument("--warmup-blocks", type=int, default=1, help="untimed full-size blocks per worker first")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.blocks < 1 or args.workers < 1 or args.threads < 1 or args.warmup_blocks < 0:
        parser.error("--blocks, --workers and --threads must be at least 1, --warmup-blocks at least 0")
    if args.workers > 1 and args.threads > 1:
        parser.error("choose --workers or --threads")
    machine = describe()
    seeds = np.random.SeedSequence(args.seed).spawn(max(args.workers, args.threads))
    # Compile or load the kernels once before timing (each worker does its own warm-up block).
    run_blocks(1, 20_000, args.reconciler, np.random.SeedSequence(0))
    if args.threads > 1:
        results = _in_threads(args, seeds)
    elif args.workers == 1:
        results = [run_blocks(args.blocks, args.detections, args.reconciler, seeds[0], args.warmup_blocks)]
    else:
        with Manager() as manager, ProcessPoolExecutor(args.workers) as pool:
            barrier = manager.Barrier(args.workers)
            futures = [pool.submit(run_blocks, args.blocks, args.detections, args.reconciler, s,
                                   args.warmup_blocks, barrier) for s in seeds]
            results = [f.result() for f in futures]
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    totals: dict[str, float] = defaultdict(float)
    stages: dict[str, float] = defaultdict(float)
    for result in results:
        for line in result["lines"]:
            print(line)
        for key, value in result["totals"].items():
            totals[key] += value
        for key, value in result["stages"].items():
            stages[key] += value
    busy = sum(stages.values())
    for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:28s} {seconds:8.2f} s  ({100 * seconds / busy:4.1f}% of the workers' time)")
    emulated = totals["pulses"] / STANDARD.pulse_rate_hz
    efficiency = round(totals["leak"] / totals["weighted_h"], 4) if totals["weighted_h"] else None
    report = {
        "reconciler": args.reconciler, "workers": args.workers, "threads": args.threads,
        "warmup_blocks": args.warmup_blocks, "blocks": args.blocks * len(results), "detections_per_block": args.detections,
        "accepted_blocks": int(totals["accepted"]),
        "sifted_bits_per_s": round(totals["sifted"] / wall), "secret_bits_per_s": round(totals["secret"] / wall),
        "net_secret_bits_per_s": round(totals["net"] / wall),
        "emulated_link_seconds": round(emulated, 3), "wall_seconds": round(wall, 2),
        "realtime_factor": round(emulated / wall, 4),
        "secret_bits_per_pulse": totals["secret"] / totals["pulses"],
        "qber": round(totals["errors"] / totals["kept"], 5) if totals["kept"] else None,
        "efficiency_f": efficiency,
        "frame_error_rate": (round(totals["frames_dropped"] / totals["frames"], 4)
                             if totals["frames"] else None),
        "first_try_failure_rate": (round(totals["frames_failed_first"] / totals["frames"], 4)
                                   if totals["frames"] else None),
        "frames_dropped": int(totals["frames_dropped"]),
        "rounds_per_block": round(totals["rounds"] / (args.blocks * len(results)), 1),
        "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
        "peak_rss_mb_after_first_block": round(max(r["rss_first"] for r in results), 1),
        "peak_rss_mb": round(max(r["rss"] for r in results), 1),
        "machine": machine,
    }
    if args.reconciler == "cascade":
        report["cascade_efficiency"] = efficiency
    print(json.dumps(report))


if __name__ == "__main__":
    main()
