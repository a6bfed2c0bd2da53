"""Source, fibre, attack and detection of one frame of pulses, sampled at the cost of detections.

Layer: sans-I/O physics kernel. Every pulse of a frame of N picks an intensity and clicks
independently, so the clicks form a Bernoulli process with the intensity-averaged click
probability (photon-number resolved yield table): the sampler places them by geometric gaps,
then draws every hidden variable of a clicked pulse from its exact posterior: intensity, photon
number, channel branch, Alice's basis and bit, Eve's intervention, Bob's basis and which
detectors fired. The pulses that did not click are split among the intensities by a
multinomial. The joint distribution of everything either party can observe equals that of
simulating every pulse; the work is O(detections), not O(N).

Alice's choices on pulses that produced no click are never observable by Bob and never enter
any later computation, so they are drawn lazily only if a (malicious) report names such a slot.
The two returned records are the only view each party has; ``ChannelTruth`` is for tests.
Alice's bit values are secrets: they come from ``secret_bits`` (the OS CSPRNG unless a test says
otherwise), never from the seeded generator, which draws only what is public or physical. The
error process does not depend on the bit values, so a seed reproduces every statistic of a
frame (clicks, bases, errors) while its key bits stay unpredictable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import channel_kernels as kernels
from .attacks import (
    Attack,
    ChannelBranches,
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


def transmit(params: LinkParams, n_pulses: int, rng: np.random.Generator, attack: Attack | None = None,
             secret_bits: SecretBits = os_secret_bits) -> tuple[AliceRecord, BobRecord, ChannelTruth]:
    """Emit n_pulses, send them through fibre (and Eve), detect at Bob.

    ``rng`` draws the physics and the public choices; ``secret_bits`` Alice's bit values.
    Each pulse clicks independently with the intensity-averaged click probability, so the clicks
    are a Bernoulli process (placed by geometric gaps); given a click, its intensity and hidden
    variables are drawn from their posteriors, and the pulses that did not click are split
    among the intensities by a multinomial of the no-click posteriors.
    """
    branches = channel_branches(params, attack)
    # Click probability per branch and emitted photon number, and the yield per photon number.
    branch_click = click_probability(params, branches.photons, branches.transmittance[:, None])
    joint_branch = branches.weight * branch_click  # (B, n)
    yield_n = joint_branch.sum(axis=0)  # (n,)
    photon_prob = np.stack([poisson_table(mu) for mu in params.intensities])  # (3, n)
    joint_n = photon_prob * yield_n  # (3, n)
    click_per_intensity = np.minimum(joint_n.sum(axis=1), 1.0)
    prior = np.asarray(params.intensity_probabilities, float)
    click_mass = prior * click_per_intensity
    p_click = float(click_mass.sum())

    slots = _click_slots(n_pulses, p_click, rng)
    count = int(slots.size)
    silent_mass = prior * (1.0 - click_per_intensity)
    silent = (rng.multinomial(n_pulses - count, silent_mass / silent_mass.sum()) if silent_mass.sum() > 0
              else np.zeros(3, np.int64))

    alice_bit = secret_bits(count)
    intensity = np.empty(count, np.uint8)
    photon_number = np.empty(count, np.int64)
    alice_basis = np.empty(count, np.uint8)
    bob_basis = np.empty(count, np.uint8)
    bob_bit = np.empty(count, np.uint8)
    double_click = np.empty(count, np.bool_)
    intercepted = np.empty(count, np.bool_)
    eve_holds_copy = np.empty(count, np.bool_)
    p_only_right, p_right_or_wrong = _detector_tables(params, branches)
    fraction = attack.fraction if isinstance(attack, InterceptResend) else 0.0
    joint = _JointTable(prior[:, None] * joint_n)
    clicks = np.zeros(3, np.int64)  # per intensity, counted by the kernel
    kernels.click_variables(
        count, joint.cdf, joint.guide, joint.intensity, joint.photons,
        _cdf((joint_branch / np.maximum(yield_n, 1e-300)).T),
        branches.eve_holds_copy, _below_32(params.p_z_alice), _below_32(params.p_z_bob), float(fraction),
        p_only_right, p_right_or_wrong, np.ascontiguousarray(alice_bit, np.uint8), _kernel_seed(rng),
        intensity, photon_number, alice_basis, bob_basis, bob_bit, double_click, intercepted, eve_holds_copy,
        clicks)
    pulses_per_intensity = (clicks + silent).astype(np.int64)
    alice = AliceRecord(n_pulses=n_pulses, pulses_per_intensity=pulses_per_intensity, slots=slots,
                        intensity=intensity, basis=alice_basis, bit=alice_bit)
    bob = BobRecord(n_pulses=n_pulses, slots=slots, basis=bob_basis, bit=bob_bit,
                    double_click=double_click)
    truth = ChannelTruth(photon_number=photon_number, intercepted=intercepted,
                         eve_holds_copy=eve_holds_copy)
    return alice, bob, truth


def _click_slots(n_pulses: int, p_click: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted slots of range(n_pulses) that click, each independently with ``p_click``: the gaps
    of a Bernoulli process are geometric, drawn from numpy's (ziggurat) exponentials in batches,
    so the slots come in order in O(clicks) with no sort and no repeats to remove."""
    if p_click <= 0.0 or n_pulses <= 0:
        return np.empty(0, np.int64)
    if p_click >= 1.0:
        return np.arange(n_pulses, dtype=np.int64)
    rate = -math.log1p(-p_click)
    mean = n_pulses * p_click
    out = np.empty(int(mean + 10.0 * math.sqrt(mean) + 64.0), np.int64)
    position, count, finished = -1, 0, False
    while not finished:
        if count == out.size:  # beyond ten sigma: grow
            out = np.concatenate([out, np.empty(out.size, np.int64)])
        batch = rng.standard_exponential(min(out.size - count + 1, 1 << 22))
        position, count, finished = kernels.place_clicks(batch, rate, n_pulses, position, out, count)
    return out[:count]


class _JointTable:
    """(intensity, photon number) given a click, as one inverse-CDF table: entries sorted by
    mass, so a draw scans a step or two from the place ``guide`` points it to."""

    GUIDE_SLOTS = 256

    def __init__(self, mass: np.ndarray) -> None:
        flat = mass.ravel() / max(float(mass.sum()), 1e-300)
        order = np.argsort(-flat, kind="stable")
        order = order[flat[order] > 0] if flat.any() else order[:1]  # no impossible (k, n) can come out
        self.cdf = np.cumsum(flat[order])
        self.cdf[-1] = 1.0  # every uniform below 1 finds an entry (rounding aside, it is 1 already)
        self.intensity = (order // mass.shape[1]).astype(np.uint8)
        self.photons = (order % mass.shape[1]).astype(np.int64)
        slots = np.arange(self.GUIDE_SLOTS) / self.GUIDE_SLOTS
        self.guide = np.searchsorted(self.cdf, slots, side="right").astype(np.int64)


def _below_32(probability: float) -> int:
    """The 32-bit threshold a uniform 32-bit word falls below with ``probability`` (to 2^-32)."""
    return min(1 << 32, max(0, math.ceil(probability * (1 << 32))))


def _kernel_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 1 << 63))


def _cdf(rows: np.ndarray) -> np.ndarray:
    """Cumulative rows, clipped to [0, 1], contiguous for the kernels."""
    return np.ascontiguousarray(np.clip(np.cumsum(rows, axis=-1), 0.0, 1.0))


def _detector_tables(params: LinkParams, branches: ChannelBranches) -> tuple[np.ndarray, np.ndarray]:
    """Which detectors fired, given that at least one did: P(only the right one) and P(only the
    right or only the wrong one), indexed [bases match, branch, photon number].

    Each arriving photon is lost, or reaches the detector of the state's bit ("right") or the
    other one ("wrong"): wrong with probability e_d in the matching basis and 1/2 otherwise.
    Dark counts are independent per detector.
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
    return np.ascontiguousarray(p_only_right, float), np.ascontiguousarray(p_right_or_wrong, float)
