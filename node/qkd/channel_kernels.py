"""Compiled per-event loops of the channel sampler.

Layer: sans-I/O kernel, compiled by numba (``cache=True``). Pure functions of their arrays and a
seed. Their randomness is a SplitMix64 stream seeded from the channel's generator: the physics is
reproducible with ``--seed``; Alice's bit values never come from here. Why compiled: drawing the
clicks and every hidden variable of a click in one pass costs about a tenth of the numpy version
(seven full-length arrays of uniforms, a sort-free slot sampler, no temporary per variable).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .splitmix import GOLDEN, mix

_TWO_TO_MINUS_53 = 1.0 / 9007199254740992.0
_LOW_32 = np.uint64(0xFFFFFFFF)


@nb.njit(cache=True, nogil=True)
def place_clicks(exponentials: np.ndarray, rate: float, n_pulses: int, position: int, out: np.ndarray,
                 count: int) -> tuple[int, int, bool]:
    """Extend the clicks of a Bernoulli process on range(n_pulses) from ``position`` (the last
    click, -1 at first), one per standard exponential E: the next click is 1 + floor(E / rate)
    slots on (a geometric gap, rate = -ln(1 - p)). Returns (position, count, finished): finished
    once a gap runs past the frame; otherwise the exponentials or ``out`` ran out."""
    for i in range(exponentials.size):
        if count == out.size:
            break  # the caller grows ``out``; the exponentials left over are simply not used
        gap = exponentials[i] / rate
        if gap >= n_pulses - position:
            return position, count, True
        position += 1 + int(gap)
        if position >= n_pulses:
            return position, count, True
        out[count] = position
        count += 1
    return position, count, False


@nb.njit(cache=True, nogil=True)
def _pick(cdf: np.ndarray, u: float) -> int:
    """First column c with u < cdf[c] (the last if none): an inverse-CDF draw, scanned from 0
    because channel branches concentrate in the first columns."""
    c = 0
    while c < cdf.size - 1 and u >= cdf[c]:
        c += 1
    return c


@nb.njit(cache=True, nogil=True, inline="always")
def _unit(word: np.uint64) -> float:
    """Uniform on [0, 1) with 53 random bits of ``word``."""
    return float(word >> np.uint64(11)) * _TWO_TO_MINUS_53


@nb.njit(cache=True, nogil=True)
def click_variables(count: int, joint_cdf: np.ndarray, guide: np.ndarray, joint_intensity: np.ndarray,
                    joint_photons: np.ndarray, branch_cdf: np.ndarray, eve_holds_table: np.ndarray,
                    z_alice_below: int, z_bob_below: int, intercept_fraction: float,
                    p_only_right: np.ndarray, p_right_or_wrong: np.ndarray, alice_bit: np.ndarray, seed: int,
                    intensity: np.ndarray, photon_number: np.ndarray, alice_basis: np.ndarray,
                    bob_basis: np.ndarray, bob_bit: np.ndarray, double_click: np.ndarray,
                    intercepted: np.ndarray, eve_holds_copy: np.ndarray, intensity_counts: np.ndarray) -> None:
    """Every hidden and observed variable of each click (and clicks per intensity), drawn from its exact posterior given
    that the pulse clicked: intensity and photon number (one draw from their joint table, sorted
    by mass, entered through ``guide``: guide[g] is the first entry whose cumulative mass exceeds
    g / guide.size), channel branch, the two bases (Z when a 32-bit uniform is below
    ``z_*_below``, i.e. p_Z resolved to 2^-32), Eve's intercept-resend (when
    ``intercept_fraction`` > 0) and which detectors fired.

    ``p_only_right`` and ``p_right_or_wrong`` are indexed [bases match, branch, photon number].
    The draws do not depend on Alice's bit values, so a seed fixes the error pattern.
    """
    state = np.uint64(seed)
    slots = guide.size
    z_alice, z_bob = np.uint64(z_alice_below), np.uint64(z_bob_below)
    for i in range(count):
        state += GOLDEN
        u = _unit(mix(state))
        c = guide[int(u * slots)]
        while u >= joint_cdf[c]:
            c += 1
        k, n = joint_intensity[c], joint_photons[c]
        intensity_counts[k] += 1
        branch = 0
        if branch_cdf.shape[1] > 1:
            state += GOLDEN
            branch = _pick(branch_cdf[n], _unit(mix(state)))
        state += GOLDEN
        bases = mix(state)
        a_basis = np.uint8(0) if (bases >> np.uint64(32)) < z_alice else np.uint8(1)
        b_basis = np.uint8(0) if (bases & _LOW_32) < z_bob else np.uint8(1)
        state_basis, state_bit = a_basis, alice_bit[i]
        holds = eve_holds_table[branch, n]
        caught = False
        if intercept_fraction > 0.0:
            state += GOLDEN
            u_eve = _unit(mix(state))
            state += GOLDEN
            word = mix(state)
            eve_basis = np.uint8(word & np.uint64(1))
            guess = np.uint8((word >> np.uint64(1)) & np.uint64(1))
            if n >= 1 and u_eve < intercept_fraction:
                caught = True
                holds = True
                state_bit = alice_bit[i] if eve_basis == a_basis else guess
                state_basis = eve_basis
        state += GOLDEN
        u = _unit(mix(state))
        match = 1 if b_basis == state_basis else 0
        if u < p_only_right[match, branch, n]:
            bit, double = state_bit, False
        elif u < p_right_or_wrong[match, branch, n]:
            bit, double = state_bit ^ np.uint8(1), False
        else:  # both fired: squashed to a uniformly random bit, drawn as a flip of the state's
            state += GOLDEN
            bit, double = state_bit ^ np.uint8(mix(state) & np.uint64(1)), True
        intensity[i], photon_number[i] = k, n
        alice_basis[i], bob_basis[i], bob_bit[i] = a_basis, b_basis, bit
        double_click[i], intercepted[i], eve_holds_copy[i] = double, caught, holds
