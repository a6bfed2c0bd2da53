"""Compiled per-event loops of the channel sampler.

Layer: sans-I/O kernel, compiled by numba (``cache=True``). Pure functions of their arrays.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def sample_rows(cdf_rows: np.ndarray, row: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per event i, the first column c with u[i] < cdf_rows[row[i], c] (the last if none).

    Equal to an inverse-CDF search, done as a scan from column 0: photon numbers and channel
    branches concentrate in the first columns, so the scan is shorter than a binary search.
    """
    n_cols = cdf_rows.shape[1]
    out = np.empty(row.size, np.int64)
    for i in range(row.size):
        r = row[i]
        c = 0
        while c < n_cols - 1 and u[i] >= cdf_rows[r, c]:
            c += 1
        out[i] = c
    return out
