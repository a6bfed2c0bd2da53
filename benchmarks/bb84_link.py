"""Benchmark: the full BB84 pipeline on the standard modern link, one process, one core.

Prints per-stage wall times and a final JSON line. ``realtime_factor`` is emulated link seconds
(pulses / pulse rate) per wall second; ``cascade_efficiency`` is leak_EC / (n h(QBER)).
Memory is reported after the first block and at the end, to show it is bounded by the block.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from machine import describe

from qkdnet.node.qkd.analytic import binary_entropy
from qkdnet.node.qkd.link import InMemoryLink
from qkdnet.node.qkd.params import STANDARD, ProcessingParams


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--detections", type=int, default=ProcessingParams().block_detections)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    machine = describe()

    link = InMemoryLink(STANDARD, ProcessingParams(block_detections=args.detections), seed=args.seed,
                        clock=time.perf_counter)
    sifted = secret = net = pulses = leak = 0
    weighted_h = 0.0
    errors = 0
    rss_first = 0.0
    start = time.perf_counter()
    for block in range(args.blocks):
        pair = link.run_block()
        a = pair.alice
        pulses += pair.n_pulses
        sifted += a.sifted_key_bits
        if a.accepted and a.qber_z is not None:
            secret += a.amplified_bits
            net += a.net_key_bits
            leak += a.leak_ec_bits
            weighted_h += a.sifted_key_bits * float(binary_entropy(a.qber_z))
            errors += round(a.qber_z * a.sifted_key_bits)
        print(f"block {block + 1}: accepted={a.accepted} sifted={a.sifted_key_bits} secret={a.amplified_bits} "
              f"qber_z={a.qber_z} leak={a.leak_ec_bits} rounds={a.cascade_rounds} "
              f"{'' if a.accepted else a.abort_reason}", flush=True)
        if block == 0:
            rss_first = _rss_mb()
    wall = time.perf_counter() - start
    for stage, seconds in sorted(link.stage_seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:28s} {seconds:8.2f} s  ({100 * seconds / wall:4.1f}%)")
    emulated = pulses / STANDARD.pulse_rate_hz
    print(json.dumps({
        "blocks": args.blocks, "detections_per_block": args.detections,
        "sifted_bits_per_s": round(sifted / wall), "secret_bits_per_s": round(secret / wall),
        "net_secret_bits_per_s": round(net / wall),
        "emulated_link_seconds": round(emulated, 3), "wall_seconds": round(wall, 2),
        "realtime_factor": round(emulated / wall, 4),
        "secret_bits_per_pulse": secret / pulses,
        "qber": round(errors / sifted, 5) if sifted else None,
        "cascade_efficiency": round(leak / weighted_h, 4) if weighted_h else None,
        "peak_rss_mb_after_first_block": round(rss_first, 1), "peak_rss_mb": round(_rss_mb(), 1),
        "machine": machine,
    }))


if __name__ == "__main__":
    main()
