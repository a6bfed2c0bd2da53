"""SplitMix64, the public pseudo-random stream of the compiled kernels.

Layer: sans-I/O kernel (numba). For public choices both ends must make alike from a seed
(Cascade's permutations, LDPC codes) and for the seeded physics of the channel; never for
anything secret. The state is a one-element
uint64 array the caller owns.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


GOLDEN = _GOLDEN
"""The stream's increment: the state after k outputs is seed + k * GOLDEN (for kernels that keep
the state in a local variable and call ``mix``)."""


@nb.njit(cache=True, nogil=True, inline="always")
def mix(z: np.uint64) -> np.uint64:
    """The output for state ``z``."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True, nogil=True)
def next_value(state: np.ndarray) -> np.uint64:
    """Advance the stream and return its next 64-bit output."""
    state[0] += _GOLDEN
    return mix(state[0])
