import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qkdnet.node.qkd.amplification import toeplitz_hash, toeplitz_hash_direct


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), out=st.integers(1, 200), seed=st.integers(0, 2**32 - 1))
def test_fft_toeplitz_equals_matrix_product(n, out, seed):
    rng = np.random.default_rng(seed)
    key = rng.integers(0, 2, n, dtype=np.uint8)
    toeplitz = rng.integers(0, 2, n + out - 1, dtype=np.uint8)
    assert np.array_equal(toeplitz_hash(key, toeplitz, out), toeplitz_hash_direct(key, toeplitz, out))


def test_large_block_is_exact():
    rng = np.random.default_rng(4)
    n, out = 1 << 20, 2000
    key = np.ones(n, np.uint8)  # worst case for float rounding: every term contributes
    toeplitz = rng.integers(0, 2, n + out - 1, dtype=np.uint8)
    fast = toeplitz_hash(key, toeplitz, out)
    rows = np.arange(out)
    windows = np.cumsum(np.concatenate([[0], toeplitz.astype(np.int64)]))
    direct = (windows[rows + n] - windows[rows]) & 1  # each row sums n consecutive seed bits
    assert np.array_equal(fast, direct.astype(np.uint8))
