"""The sampled channel reproduces the model formulas (Lo-Ma-Chen 2005; Ma et al. 2005).

Every comparison uses a fixed seed and a 5-sigma binomial bound (two-sided false-alarm
probability below 6e-7 per comparison).
"""

import math

import numpy as np
import pytest

from qkdnet.node.qkd import analytic
from qkdnet.node.qkd.channel import transmit
from qkdnet.node.qkd.params import STANDARD

Z_SIGMA = 5.0


def _within(observed: int, trials: int, p: float) -> bool:
    sigma = math.sqrt(trials * p * (1 - p))
    return abs(observed - trials * p) <= Z_SIGMA * sigma + 1


@pytest.mark.parametrize("length_km", [0.0, 25.0, 50.0, 100.0])
@pytest.mark.parametrize("misalignment", [0.01, 0.03])
def test_gain_and_qber_per_intensity_follow_the_model(length_km, misalignment):
    params = STANDARD.with_changes(length_km=length_km, misalignment_error=misalignment)
    n_pulses = int(3e5 / analytic.gain(params, params.mu_decoy) / params.p_decoy)
    alice, bob, _ = transmit(params, n_pulses, np.random.default_rng(int(length_km * 10 + misalignment * 1000)))
    assert alice.pulses_per_intensity.sum() == n_pulses
    for k, mu in enumerate(params.intensities):
        mine = alice.intensity == k
        sent = int(alice.pulses_per_intensity[k])
        assert _within(int(mine.sum()), sent, analytic.gain(params, mu)), (k, mine.sum(), sent)
        match = mine & (alice.basis == bob.basis)
        errors = int((alice.bit[match] != bob.bit[match]).sum())
        assert _within(errors, int(match.sum()), analytic.qber(params, mu)), (k, errors, match.sum())


def test_exact_model_matches_textbook_formula_at_low_gain():
    params = STANDARD.with_changes(length_km=100.0)
    for mu in params.intensities:
        assert analytic.gain(params, mu) == pytest.approx(analytic.textbook_gain(params, mu), rel=1e-3)
        assert analytic.error_gain(params, mu) == pytest.approx(
            analytic.textbook_error_gain(params, mu), rel=2e-3)


def test_photon_numbers_of_detections_follow_the_yields():
    params = STANDARD.with_changes(length_km=0.0)
    alice, _, truth = transmit(params, 2_000_000, np.random.default_rng(3))
    signal = alice.intensity == 0
    n_sent = int(alice.pulses_per_intensity[0])
    for n in (0, 1, 2):
        p = math.exp(-params.mu_signal) * params.mu_signal ** n / math.factorial(n) * analytic.n_photon_yield(params, n)
        assert _within(int((truth.photon_number[signal] == n).sum()), n_sent, p)


def test_basis_choice_and_sifting_fractions():
    params = STANDARD.with_changes(length_km=10.0)
    alice, bob, _ = transmit(params, 5_000_000, np.random.default_rng(5))
    k = alice.slots.size
    assert _within(int((alice.basis == 0).sum()), k, params.p_z_alice)
    assert _within(int((bob.basis == 0).sum()), k, params.p_z_bob)
    assert np.all(np.diff(bob.slots) > 0) and bob.slots[-1] < 5_000_000


def test_same_seed_same_physics_but_secret_bits():
    """A seed reproduces everything public or physical about a frame, and none of Alice's bits."""
    a1, b1, _ = transmit(STANDARD, 1_000_000, np.random.default_rng(9))
    a2, b2, _ = transmit(STANDARD, 1_000_000, np.random.default_rng(9))
    assert np.array_equal(b1.slots, b2.slots) and np.array_equal(a1.basis, a2.basis)
    assert np.array_equal(a1.intensity, a2.intensity) and np.array_equal(b1.basis, b2.basis)
    assert np.array_equal(a1.bit ^ b1.bit, a2.bit ^ b2.bit)  # the same errors ...
    assert not np.array_equal(a1.bit, a2.bit)  # ... on different, unpredictable bits


def test_unreported_slot_lookup_draws_fresh_choices():
    alice, _, _ = transmit(STANDARD, 1_000_000, np.random.default_rng(2))
    missing = np.setdiff1d(np.arange(50), alice.slots)[:5]
    intensity, basis, bit = alice.lookup(missing, np.random.default_rng(1), STANDARD)
    assert intensity.size == basis.size == bit.size == missing.size


def test_click_placement_resumes_where_a_full_buffer_stopped():
    """The slot sampler's kernel stops when its output is full and the caller resumes it with a
    larger buffer: the slots are those of one uninterrupted walk over the same exponentials."""
    from qkdnet.node.qkd.channel_kernels import place_clicks

    exponentials = np.random.default_rng(4).standard_exponential(200)
    whole = np.empty(400, np.int64)
    _, total, finished = place_clicks(exponentials, 0.05, 1_000_000, -1, whole, 0)
    assert not finished and total == 200  # the exponentials ran out first
    small = np.empty(50, np.int64)
    position, count, finished = place_clicks(exponentials, 0.05, 1_000_000, -1, small, 0)
    assert (count, finished) == (50, False) and position == small[-1]
    grown = np.concatenate([small, np.empty(150, np.int64)])
    _, count, _ = place_clicks(exponentials[50:], 0.05, 1_000_000, position, grown, count)
    assert count == 200 and np.array_equal(grown, whole[:200])
    _, count, finished = place_clicks(exponentials, 0.05, int(whole[9]) + 1, -1, np.empty(400, np.int64), 0)
    assert finished and count == 10  # the frame ends at the tenth click
