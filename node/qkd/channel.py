"""Source, fibre, attack and detection of one frame of pulses, sampled at the cost of detections.

Layer: sans-I/O physics kernel. For a frame of N pulses the sampler draws how many pulses each
intensity gets (multinomial) and how many of those click (binomial, with the photon-number
resolved yield table), places the clicks on uniformly random distinct slots, then draws every
hidden variable of a clicked pulse from its exact posterior: photon number, channel branch,
Alice's basis and bit, Eve's intervention, Bob's basis and which detectors fired. The joint
distribution of everything either party can observe equals that of simulating every pulse;
the work is O(detections), not O(N).

Alice's choices on pulses that produced no click are never observable by Bob and never enter
any later computation, so they are drawn lazily only if a (malicious) report names such a slot.
The two returned records are the only view each party has; ``ChannelTruth`` is for tests.
Alice's bit values are secrets: they come from ``secret_bits`` (the OS CSPRNG unless a test says
otherwise), never from the seeded generator, which draws only what is public or physical. The
error process does not depend on the bit values, so a seed reproduces every statistic of a
frame (clicks, bases, errors) while its key bits stay unpredictable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import channel_kernels as kernels
from .attacks import (
    Attack,
    InterceptResend,
    channel_branches,
    click_probability,
    poisson_table,
)
from .bits import SecretBits, os_secret_bits
from .params import LinkParams

Z_BASIS, X_BASIS = 0, 1


@dataclass(frozen=True)
class AliceRecord:
    """What Alice's transmitter knows about the frame it emitted."""

    n_pulses: int
    pulses_per_intensity: np.ndarray  # (3,) int64
    slots: np.ndarray  # sorted int64; only these slots' choices have been materialised
    intensity: np.ndarray  # uint8 index into params.intensities
    basis: np.ndarray  # uint8, Z_BASIS or X_BASIS
    bit: np.ndarray  # uint8

    def lookup(self, slots: np.ndarray, rng: np.random.Generator, params: LinkParams,
               secret_bits: SecretBits = os_secret_bits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Alice's (intensity, basis, bit) for the reported slots.

        Slots without a recorded click get fresh choices drawn from the prior (bits from
        ``secret_bits``); an honest Bob never reports one.
        """
        if slots.size == self.slots.size and np.array_equal(slots, self.slots):
            return self.intensity, self.basis, self.bit  # an honest report: every click, in order
        idx = np.searchsorted(self.slots, slots)
        idx_c = np.minimum(idx, max(self.slots.size - 1, 0))
        known = (self.slots.size > 0) & (self.slots[idx_c] == slots) if self.slots.size else np.zeros(slots.size, bool)
        intensity = np.empty(slots.size, np.uint8)
        basis = np.empty(slots.size, np.uint8)
        bit = np.empty(slots.size, np.uint8)
        intensity[known], basis[known], bit[known] = (
            self.intensity[idx_c[known]], self.basis[idx_c[known]], self.bit[idx_c[known]])
        unknown = ~known
        m = int(unknown.sum())
        if m:
            intensity[unknown] = rng.choice(3, size=m, p=params.intensity_probabilities)
            basis[unknown] = (rng.random(m) >= params.p_z_alice).astype(np.uint8)
            bit[unknown] = secret_bits(m)
        return intensity, basis, bit


@dataclass(frozen=True)
class BobRecord:
    """What Bob's receiver recorded: one entry per gate with at least one click."""

    n_pulses: int
    slots: np.ndarray  # sorted int64
    basis: np.ndarray  # uint8
    bit: np.ndarray  # uint8, double clicks squashed to a random bit
    double_click: np.ndarray  # bool


@dataclass(frozen=True)
class ChannelTruth:
    """Ground truth hidden from both parties, aligned with the detected slots (tests only)."""

    photon_number: np.ndarray
    intercepted: np.ndarray
    eve_holds_copy: np.ndarray


def _distinct_sorted_slots(n_pulses: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random count-subset of range(n_pulses), sorted, in O(count).

    Sorted iid uniform slots come from normalised exponential spacings (order statistics);
    repeats are dropped and replaced by fresh draws. The result is invariant under relabelling
    the slots, hence uniform over subsets.
    """
    if count == 0:
        return np.empty(0, np.int64)
    if count * 4 > n_pulses:
        return np.sort(rng.choice(n_pulses, size=count, replace=False)).astype(np.int64)
    spacings = rng.standard_exponential(count + 1)
    cumulative = np.cumsum(spacings)
    slots = np.floor(cumulative[:-1] * (n_pulses / cumulative[-1])).astype(np.int64)
    np.minimum(slots, n_pulses - 1, out=slots)
    slots = _drop_repeats(slots)
    while slots.size < count:
        extra = np.sort(rng.integers(0, n_pulses, size=count - slots.size))
        slots = _drop_repeats(np.insert(slots, np.searchsorted(slots, extra), extra))
    return slots


def _drop_repeats(sorted_values: np.ndarray) -> np.ndarray:
    if sorted_values.size < 2:
        return sorted_values
    keep = np.empty(sorted_values.size, bool)
    keep[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=keep[1:])
    return sorted_values[keep]


def _sample_categorical(cdf_rows: np.ndarray, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per event, an index drawn from the cumulative table cdf_rows[row] (rows end at 1).

    Compiled linear scan: rows are short and their mass sits in the first columns.
    """
    return kernels.sample_rows(np.clip(cdf_rows, 0.0, 1.0), row, rng.random(row.size))


def transmit(params: LinkParams, n_pulses: int, rng: np.random.Generator, attack: Attack | None = None,
             secret_bits: SecretBits = os_secret_bits) -> tuple[AliceRecord, BobRecord, ChannelTruth]:
    """Emit n_pulses, send them through fibre (and Eve), detect at Bob.

    ``rng`` draws the physics and the public choices; ``secret_bits`` Alice's bit values.
    """
    branches = channel_branches(params, attack)
    # Click probability per branch and emitted photon number, and the yield per photon number.
    branch_click = click_probability(params, branches.photons, branches.transmittance[:, None])
    joint_branch = branches.weight * branch_click  # (B, n)
    yield_n = joint_branch.sum(axis=0)  # (n,)
    photon_prob = np.stack([poisson_table(mu) for mu in params.intensities])  # (3, n)
    joint_n = photon_prob * yield_n  # (3, n)
    click_per_intensity = joint_n.sum(axis=1)

    pulses_per_intensity = rng.multinomial(n_pulses, params.intensity_probabilities).astype(np.int64)
    clicks_per_intensity = rng.binomial(pulses_per_intensity, np.minimum(click_per_intensity, 1.0))
    count = int(clicks_per_intensity.sum())
    slots = _distinct_sorted_slots(n_pulses, count, rng)
    intensity = rng.permutation(np.repeat(np.arange(3, dtype=np.uint8), clicks_per_intensity))

    n_cdf = np.cumsum(joint_n / click_per_intensity[:, None], axis=1)
    photon_number = _sample_categorical(n_cdf, intensity.astype(np.int64), rng)
    branch_cdf = np.cumsum(joint_branch / np.maximum(yield_n, 1e-300), axis=0).T  # (n, B)
    branch = _sample_categorical(branch_cdf, photon_number, rng)
    eve_holds_copy = branches.eve_holds_copy[branch, photon_number]

    alice_basis = (rng.random(count) >= params.p_z_alice).astype(np.uint8)
    alice_bit = secret_bits(count)
    bob_basis = (rng.random(count) >= params.p_z_bob).astype(np.uint8)

    state_basis, state_bit = alice_basis, alice_bit
    intercepted = np.zeros(count, bool)
    if isinstance(attack, InterceptResend) and attack.fraction > 0:
        intercepted = (photon_number >= 1) & (rng.random(count) < attack.fraction)
        eve_basis = rng.integers(0, 2, count, dtype=np.uint8)
        eve_bit = np.where(eve_basis == alice_basis, alice_bit, rng.integers(0, 2, count, dtype=np.uint8))
        state_basis = np.where(intercepted, eve_basis, alice_basis).astype(np.uint8)
        state_bit = np.where(intercepted, eve_bit, alice_bit).astype(np.uint8)
        eve_holds_copy = eve_holds_copy | intercepted

    bob_bit, double_click = _detect(params, branches, branch, photon_number,
                                    bob_basis == state_basis, state_bit, rng)
    alice = AliceRecord(n_pulses=n_pulses, pulses_per_intensity=pulses_per_intensity, slots=slots,
                        intensity=intensity, basis=alice_basis, bit=alice_bit)
    bob = BobRecord(n_pulses=n_pulses, slots=slots, basis=bob_basis, bit=bob_bit,
                    double_click=double_click)
    truth = ChannelTruth(photon_number=photon_number, intercepted=intercepted,
                         eve_holds_copy=eve_holds_copy)
    return alice, bob, truth


def _detect(params: LinkParams, branches, branch: np.ndarray, photon_number: np.ndarray,
            bases_match: np.ndarray, state_bit: np.ndarray, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """Which detectors fired, given that at least one did.

    Each arriving photon is lost, or reaches the detector of the state's bit ("right") or the
    other one ("wrong"): wrong with probability e_d in the matching basis and 1/2 otherwise.
    Dark counts are independent per detector. Probabilities are tabulated per
    (basis match, branch, photon number) and gathered per event.
    """
    pd = params.dark_count_probability
    e = np.array([0.5, params.misalignment_error])[:, None, None]  # index: bases_match
    t = branches.transmittance[None, :, None]
    m = branches.photons[None, :, :]
    both_silent = (1 - pd) ** 2 * (1 - t) ** m
    right_silent = (1 - pd) * (1 - t * (1 - e)) ** m
    wrong_silent = (1 - pd) * (1 - t * e) ** m
    clicked = 1.0 - both_silent
    with np.errstate(invalid="ignore", divide="ignore"):
        p_only_right = np.nan_to_num((wrong_silent - both_silent) / clicked)
        p_right_or_wrong = np.nan_to_num((wrong_silent + right_silent - 2 * both_silent) / clicked)
    n_cols = m.shape[2]
    index = (bases_match.astype(np.int64) * branches.photons.shape[0] + branch) * n_cols + photon_number
    u = rng.random(photon_number.size)
    is_right = u < p_only_right.ravel()[index]
    is_wrong = (~is_right) & (u < p_right_or_wrong.ravel()[index])
    double_click = ~(is_right | is_wrong)
    bit = np.where(is_wrong, 1 - state_bit, state_bit).astype(np.uint8)
    if double_click.any():
        # Squashed to a uniformly random bit, drawn as a flip of the state's bit: the same
        # distribution, and the error pattern stays a function of the seed alone.
        flips = rng.integers(0, 2, int(double_click.sum()), dtype=np.uint8)
        bit[double_click] = state_bit[double_click] ^ flips
    return bit, double_click
