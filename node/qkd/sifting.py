"""Sifting: which detection events become key, which become test data.

Layer: sans-I/O kernel. Both parties apply the same masks to the bases announced on the public
channel, so each ends with its own bits in the same order without seeing the other's bits.
"""

from __future__ import annotations

from dataclasses import dataclass

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
