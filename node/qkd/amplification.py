"""Privacy amplification by Toeplitz hashing, evaluated as a convolution with real FFTs.

Layer: sans-I/O kernel. Toeplitz matrices are a 2-universal family, so the leftover hash lemma
applies. The l x n matrix is fixed by n + l - 1 public random bits t; output bit i is
sum_j t[i - j + n - 1] x[j] mod 2, the middle of the linear convolution t * x. Sums stay below
n < 2^31, far inside float64's exact integers, so rounding the FFT result is exact.
"""

from __future__ import annotations

import numpy as np


def toeplitz_hash(key_bits: np.ndarray, seed_bits: np.ndarray, out_bits: int) -> np.ndarray:
    n = key_bits.size
    if out_bits <= 0:
        return np.empty(0, np.uint8)
    if seed_bits.size != n + out_bits - 1:
        raise ValueError("Toeplitz seed must have n + l - 1 bits")
    import scipy.fft as sfft  # deferred: it doubles a node's start-up time, and only blocks need it

    size = sfft.next_fast_len(n + seed_bits.size - 1, real=True)
    spectrum = sfft.rfft(key_bits.astype(np.float64), size) * sfft.rfft(seed_bits.astype(np.float64), size)
    conv = sfft.irfft(spectrum, size)[n - 1:n - 1 + out_bits]
    return (np.rint(conv).astype(np.int64) & 1).astype(np.uint8)


def toeplitz_hash_direct(key_bits: np.ndarray, seed_bits: np.ndarray, out_bits: int) -> np.ndarray:
    """Matrix form, for tests on small sizes."""
    n = key_bits.size
    rows = np.arange(out_bits)[:, None] - np.arange(n)[None, :] + n - 1
    return ((seed_bits[rows].astype(np.int64) @ key_bits.astype(np.int64)) & 1).astype(np.uint8)
