"""One-way LDPC reconciliation, Alice's and Bob's halves in one process."""

import math

import numpy as np
import pytest

from qkdnet.node.qkd import ldpc
from qkdnet.node.qkd.analytic import binary_entropy
from qkdnet.node.qkd.errors import ProtocolError


def _reconcile(alice_key, bob_key, plan, rng, qber_estimate, tags=None):
    filler = rng.integers(0, 2, (plan.frames, plan.punctured), dtype=np.uint8)
    tags = ldpc.frame_tags(alice_key, plan) if tags is None else tags
    bob = ldpc.LdpcDecoder(bob_key, plan, ldpc.syndromes(alice_key, plan, filler), tags, qber_estimate)
    requests = []
    while not bob.done:
        requests.append(bob.failed)
        bob.receive_reveal(ldpc.reveal(plan, filler, bob.failed, bob.retries))
    return bob, requests


def test_frames_tile_the_key_and_the_filler_sits_on_the_chain_never_adjacent():
    n = 2 * ldpc.FRAME_BITS + 5_001  # three frames
    plan = ldpc.plan(n, 0.02, 0.025, seed=3)
    bounds = [plan.frame_bounds(f) for f in range(plan.frames)]
    assert plan.frames == 3 and bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert {stop - start for start, stop in bounds} <= {plan.frame_bits, plan.frame_bits - 1}
    filler = np.sort(plan.filler_positions())
    chain_start = plan.code_bits - plan.syndrome_bits
    assert filler.size == plan.punctured and filler[0] >= chain_start and np.all(np.diff(filler) >= 2)
    assert np.intersect1d(filler, plan.key_positions()).size == 0
    assert plan.key_positions().size == plan.frame_bits
    with pytest.raises(ProtocolError, match="out of range"):
        ldpc.plan(1000, 0.05, 0.01, seed=1)  # an upper estimate below the estimate


def test_a_low_estimate_is_rescued_by_reveals_and_the_leak_is_counted_exactly():
    rng = np.random.default_rng(5)
    n, qber = 60_000, 0.03
    alice = rng.integers(0, 2, n, dtype=np.uint8)
    bob_key = alice ^ (rng.random(n) < qber).astype(np.uint8)
    plan = ldpc.plan(n, 0.028, ldpc.upper_estimate(0.028, 60_000, n), seed=9)  # estimate 7 % low
    bob, requests = _reconcile(alice, bob_key, plan, rng, 0.028)
    assert bob.dropped.size == 0 and np.array_equal(bob.kept_key(), alice)
    assert bob.retries >= 1 and bob.first_try_failures >= 1
    revealed = ldpc.revealed_per_frame(plan, requests)
    assert np.array_equal(revealed, bob.revealed)  # Alice counts what Bob was given
    expected = sum(plan.syndrome_bits - plan.punctured + int(r) + ldpc.FRAME_TAG_BITS for r in revealed)
    assert ldpc.leak_bits(plan, revealed, bob.dropped) == expected


def test_a_frame_whose_tag_does_not_match_is_dropped_not_the_block():
    rng = np.random.default_rng(6)
    n = 2 * ldpc.FRAME_BITS + 9_000  # three frames
    alice = rng.integers(0, 2, n, dtype=np.uint8)
    bob_key = alice ^ (rng.random(n) < 0.02).astype(np.uint8)
    plan = ldpc.plan(n, 0.02, 0.025, seed=2)
    tags = ldpc.frame_tags(alice, plan)
    tags[1] ^= 1  # as if frame 1 decoded to a word other than Alice's
    bob, _ = _reconcile(alice, bob_key, plan, rng, 0.02, tags=tags)
    assert bob.dropped.tolist() == [1]
    assert np.array_equal(bob.kept_key(), ldpc.kept(alice, plan, bob.dropped))
    start, stop = plan.frame_bounds(1)
    assert ldpc.leak_bits(plan, bob.revealed, bob.dropped) >= stop - start  # the dropped frame is charged whole


@pytest.mark.parametrize("qber", [0.01, 0.02, 0.05, 0.08])
def test_bob_estimates_the_qber_from_the_syndromes_within_four_standard_errors(qber):
    """Fixed seeds; 4 standard errors: a 6e-5 chance per case were the seeds drawn at random."""
    rng = np.random.default_rng(int(qber * 1000))
    n = 2 * ldpc.FRAME_BITS
    alice = rng.integers(0, 2, n, dtype=np.uint8)
    errors = (rng.random(n) < qber).astype(np.uint8)
    plan = ldpc.plan(n, qber * 1.15, ldpc.upper_estimate(qber * 1.15, 40_000, n), seed=5)  # a high test estimate
    filler = rng.integers(0, 2, (plan.frames, plan.punctured), dtype=np.uint8)
    estimate, sigma = ldpc.syndrome_qber(plan, plan.code(), alice ^ errors, ldpc.syndromes(alice, plan, filler))
    assert sigma < 0.1 * qber  # far sharper than the 40 kbit test sample's (about 0.05 at 1 %)
    assert abs(estimate - errors.mean()) < 4 * sigma


def test_bad_requests_are_refused():
    plan = ldpc.plan(10_000, 0.02, 0.03, seed=1)
    filler = np.zeros((plan.frames, plan.punctured), np.uint8)
    for frames, retry in ((np.array([5]), 0), (np.array([0, 0]), 0), (np.array([0]), ldpc.MAX_RETRIES)):
        with pytest.raises(ProtocolError):
            ldpc.reveal(plan, filler, frames, retry)


@pytest.mark.slow
def test_1200_frames_at_qber_1_to_8_percent_never_accept_differing_keys():
    """4 kbit frames (one per key) at QBER 1-8 %, the estimate drawn around the truth: every frame
    Bob accepts equals Alice's. Frames he cannot decode are dropped, never accepted."""
    rng = np.random.default_rng(2026)
    accepted = dropped = 0
    for block in range(1200):
        qber = 0.01 + 0.07 * (block % 8) / 7
        n = 4096
        alice = rng.integers(0, 2, n, dtype=np.uint8)
        bob_key = alice ^ (rng.random(n) < qber).astype(np.uint8)
        estimate = qber * rng.uniform(0.85, 1.15)
        plan = ldpc.plan(n, estimate, ldpc.upper_estimate(estimate, n, n), seed=block)
        bob, _ = _reconcile(alice, bob_key, plan, rng, estimate)
        if bob.dropped.size:
            dropped += 1
        else:
            accepted += 1
            assert np.array_equal(bob.kept_key(), alice), f"frame {block} accepted differing keys"
    assert accepted + dropped == 1200 and accepted >= 1100


# Efficiency at the full frame (128 kbit), 6 frames per QBER, estimate exact: f = leak / (n h(QBER
# measured)). Bounds: this fixed seed's measured 1.128, 1.113, 1.105, 1.082 rounded up by about
# 0.015, and never above the target, 1.15 (a regression guard; the benchmark reports the
# figures). No frame may be dropped: the blind protocol starts below where the code decodes
# (every frame needs reveals), and must then decode every frame before its filler runs out.
BOUNDS = {0.01: 1.14, 0.02: 1.125, 0.03: 1.11, 0.05: 1.095}


@pytest.mark.slow
@pytest.mark.parametrize("qber", sorted(BOUNDS))
def test_efficiency_at_full_frames_and_no_frame_dropped(qber):
    rng = np.random.default_rng(int(qber * 1000))
    n = 6 * ldpc.FRAME_BITS
    alice = rng.integers(0, 2, n, dtype=np.uint8)
    errors = (rng.random(n) < qber).astype(np.uint8)
    plan = ldpc.plan(n, qber, ldpc.upper_estimate(qber, n // 2, n), seed=4)
    bob, _ = _reconcile(alice, alice ^ errors, plan, rng, qber)
    assert bob.dropped.size == 0 and np.array_equal(bob.kept_key(), alice)
    f = ldpc.leak_bits(plan, bob.revealed, bob.dropped) / (n * float(binary_entropy(errors.mean())))
    assert math.isfinite(f) and f <= BOUNDS[qber]
