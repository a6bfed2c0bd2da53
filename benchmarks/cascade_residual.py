"""Benchmark: how often Cascade leaves errors behind (a block verification then throws away).

Runs Cascade alone, Alice's and Bob's halves in one process, on keys with independent errors at
each QBER in turn, and counts blocks whose corrected key still differs. Prints progress every
100 blocks and a final JSON line with the count, a one-sided 95 % upper bound on the rate
(Clopper-Pearson when no block failed, Wilson score otherwise) and the efficiency
f = leak / (n h(QBER)) per QBER.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from machine import describe

from qkdnet.node.qkd import cascade
from qkdnet.node.qkd.analytic import binary_entropy


def upper_bound_95(failures: int, trials: int) -> float:
    """One-sided 95 % upper bound on a rate: exact with no failure, Wilson score otherwise."""
    if failures == 0:
        return 1.0 - 0.05 ** (1.0 / trials)
    from statistics import NormalDist

    rate = failures / trials
    z = NormalDist().inv_cdf(0.95)
    centre = rate + z * z / (2 * trials)
    spread = z * (rate * (1 - rate) / trials + z * z / (4 * trials * trials)) ** 0.5
    return (centre + spread) / (1 + z * z / trials)


def run(n_bits: int, qbers: list[float], blocks: int, seed: int, passes: int) -> dict:
    """As a link runs Cascade: a plan seed kept for ``SHUFFLE_REUSE_BLOCKS`` blocks, each end
    with its own shuffle cache."""
    rng = np.random.default_rng(seed)
    alice_shuffles, bob_shuffles = cascade.ShuffleCache(), cascade.ShuffleCache()
    residual = 0
    leak: dict[float, list[float]] = {q: [] for q in qbers}
    rounds: dict[float, list[int]] = {q: [] for q in qbers}
    for block in range(blocks):
        q = qbers[block % len(qbers)]
        alice = rng.integers(0, 2, n_bits, dtype=np.uint8)
        errors = (rng.random(n_bits) < q).astype(np.uint8)
        plan_seed = seed * 1_000_003 + block // cascade.SHUFFLE_REUSE_BLOCKS
        plan = cascade.plan(n_bits, q, seed=plan_seed, passes=passes)
        prefix = plan.prefix_parities(alice, alice_shuffles)
        bob = cascade.CascadeCorrector(alice ^ errors, plan, bob_shuffles)
        while (queries := bob.next_queries()) is not None:
            bob.receive(cascade.answer_parities(prefix, plan.padded_bits, queries))
        residual += int(not np.array_equal(bob.key, alice))
        leak[q].append(bob.leaked_bits / (n_bits * float(binary_entropy(errors.mean()))))
        rounds[q].append(bob.rounds)
        if (block + 1) % 100 == 0:
            print(f"{block + 1} blocks, {residual} with residual errors", flush=True)
    return {"residual_error_blocks": residual,
            "residual_rate_upper_95": upper_bound_95(residual, blocks),
            "efficiency_f": {str(q): round(float(np.mean(v)), 4) for q, v in leak.items()},
            "rounds_mean": {str(q): round(float(np.mean(v)), 1) for q, v in rounds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bits", type=int, default=3_240_000,
                        help="sifted key bits per block (3.24 M: the default 4 M detections, pZ 0.9)")
    parser.add_argument("--qber", type=float, nargs="+", default=[0.01, 0.02, 0.03, 0.05])
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--passes", type=int, default=3, help="the fewest passes (ProcessingParams.cascade_passes)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    machine = describe()
    start = time.perf_counter()
    result = run(args.bits, args.qber, args.blocks, args.seed, args.passes)
    wall = time.perf_counter() - start
    print(json.dumps({"bits": args.bits, "blocks": args.blocks, "qber": args.qber, **result,
                      "wall_seconds": round(wall, 1), "machine": machine}))


if __name__ == "__main__":
    main()
