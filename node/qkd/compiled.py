"""Load every compiled kernel of the link engine before it is needed.

Layer: sans-I/O helper. numba compiles a kernel at its first call (about 3 s for all of them on
the reference machine, once per installation: ``cache=True`` keeps the machine code beside the
sources) and loads it from that cache in every later process (about 0.5 s in all). A process
that forks node processes calls ``warm_up`` once, so no node pays either at its first block.
"""

from __future__ import annotations

import numpy as np

from . import cascade, channel, ldpc, params, sifting


def warm_up() -> None:
    """Run each kernel once on a tiny input (the result is thrown away)."""
    channel.transmit(params.STANDARD, 1000, np.random.default_rng(0))
    sifting.slots_from_gaps(sifting.slot_gaps(np.arange(3, dtype=np.int64)), 10)
    rng = np.random.default_rng(0)
    alice = rng.integers(0, 2, 256, dtype=np.uint8)
    plan = cascade.plan(alice.size, 0.05, seed=1)
    prefix = plan.prefix_parities(alice)
    bob = cascade.CascadeCorrector(alice ^ (rng.random(alice.size) < 0.05).astype(np.uint8), plan)
    while (queries := bob.next_queries()) is not None:
        bob.receive(cascade.answer_parities(prefix, plan.padded_bits, queries))
    code = ldpc.plan(alice.size, 0.05, 0.06, seed=1)
    filler = np.zeros((code.frames, code.punctured), np.uint8)
    ldpc.LdpcDecoder(alice, code, ldpc.syndromes(alice, code, filler), ldpc.frame_tags(alice, code), 0.05)
