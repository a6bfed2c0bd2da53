"""Sifting: which detection events become key, which become test data.

Layer: sans-I/O kernel. Both parties apply the same masks to the bases announced on the public
channel, so each ends with its own bits in the same order without seeing the other's bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from .channel import Z_BASIS


@dataclass(frozen=True)
class Sifted:
    """One end's sifted data: its key bits (both measured in Z) and test bits (both in X), in
    detection order. Alice's also counts per intensity, for the decoy-state estimate."""

    key: np.ndarray  # uint8 0/1
    test: np.ndarray  # uint8 0/1
    test_intensity: np.ndarray  # uint8, Alice's intensity of each test bit (empty at Bob)
    key_counts: np.ndarray  # (3,) int64 key bits per intensity (zeros at Bob)
    test_counts: np.ndarray  # (3,) int64 test bits per intensity
    detected: np.ndarray  # (3,) int64 detections per intensity


def sift(alice_basis: np.ndarray, bob_basis: np.ndarray, bits: np.ndarray,
         intensity: np.ndarray | None = None) -> Sifted:
    """Split this end's ``bits`` by the two announced bases; with ``intensity`` (Alice), count
    per intensity too. One compiled pass (numpy's masks and bincounts took 60 ms per 4 M)."""
    n = bits.size
    with_intensity = intensity is not None
    levels = np.ascontiguousarray(intensity if with_intensity else np.zeros(0, np.uint8), np.uint8)
    key, test = np.empty(n, np.uint8), np.empty(n, np.uint8)
    test_intensity = np.empty(n if with_intensity else 0, np.uint8)
    counts = np.zeros((3, 3), np.int64)
    n_key, n_test = _sift(np.ascontiguousarray(alice_basis, np.uint8), np.ascontiguousarray(bob_basis, np.uint8),
                          np.ascontiguousarray(bits, np.uint8), levels, key, test, test_intensity, counts)
    return Sifted(key=key[:n_key], test=test[:n_test], test_intensity=test_intensity[:n_test],
                  key_counts=counts[0], test_counts=counts[1], detected=counts[2])


@nb.njit(cache=True, nogil=True)
def _sift(alice_basis: np.ndarray, bob_basis: np.ndarray, bits: np.ndarray, intensity: np.ndarray,
          key: np.ndarray, test: np.ndarray, test_intensity: np.ndarray, counts: np.ndarray) -> tuple[int, int]:
    with_intensity = intensity.size > 0
    n_key = 0
    n_test = 0
    for i in range(bits.size):
        level = intensity[i] if with_intensity else 0
        if with_intensity:
            counts[2, level] += 1
        basis = alice_basis[i]
        if basis != bob_basis[i]:
            continue
        if basis == Z_BASIS:
            key[n_key] = bits[i]
            n_key += 1
            if with_intensity:
                counts[0, level] += 1
        else:
            test[n_test] = bits[i]
            if with_intensity:
                test_intensity[n_test] = level
                counts[1, level] += 1
            n_test += 1
    return n_key, n_test


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
