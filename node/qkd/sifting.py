"""Sifting: which detection events become key, which become test data.

Layer: sans-I/O kernel. Both parties apply the same masks to the bases announced on the public
channel, so each ends with its own bits in the same order without seeing the other's bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from .channel import X_BASIS, Z_BASIS


@dataclass(frozen=True)
class SiftMasks:
    key: np.ndarray  # both measured in Z: raw key
    test: np.ndarray  # both in X: disclosed to bound the phase error


def sift(alice_basis: np.ndarray, bob_basis: np.ndarray) -> SiftMasks:
    same = alice_basis == bob_basis
    return SiftMasks(key=same & (bob_basis == Z_BASIS), test=same & (bob_basis == X_BASIS))


def counts_per_intensity(mask: np.ndarray, intensity: np.ndarray, n_intensities: int = 3) -> np.ndarray:
    return np.bincount(intensity[mask], minlength=n_intensities).astype(np.int64)


@nb.njit(cache=True, nogil=True)
def slot_gaps(slots: np.ndarray) -> np.ndarray:
    """Bob's report of sorted slots as uint32 gaps (the first from slot 0): a quarter of the bytes."""
    out = np.empty(slots.size, np.uint32)
    previous = 0
    for i in range(slots.size):
        out[i] = slots[i] - previous
        previous = slots[i]
    return out


@nb.njit(cache=True, nogil=True)
def slots_from_gaps(gaps: np.ndarray, n_pulses: int) -> tuple[np.ndarray, bool]:
    """Alice's reading of Bob's gaps: the slots, or an empty array with ok False (second value)
    when a slot repeats (a zero gap after the first) or falls outside the frame."""
    out = np.empty(gaps.size, np.int64)
    slot = 0
    for i in range(gaps.size):
        if i > 0 and gaps[i] == 0:
            return out[:0], False
        slot += int(gaps[i])
        out[i] = slot
    if gaps.size and slot >= n_pulses:
        return out[:0], False
    return out, True
