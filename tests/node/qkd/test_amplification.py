import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qkdnet.node.qkd.amplification import (
    MERSENNE_EXPONENTS,
    HashChoice,
    choose_hash,
    mersenne_exponent,
    universal_hash,
)


def _as_int(bits: np.ndarray) -> int:
    return sum(int(b) << i for i, b in enumerate(bits))


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 700), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_hash_is_the_low_bits_of_a_x_plus_b_mod_p(n, seed, data):
    rng = np.random.default_rng(seed)
    key = rng.integers(0, 2, n, dtype=np.uint8)
    out = data.draw(st.integers(0, n))
    choice = choose_hash(rng, n)
    p = (1 << mersenne_exponent(n)) - 1
    expected = ((choice.a * _as_int(key) + choice.b) % p) % (1 << out)
    got = universal_hash(key, choice, out)
    assert got.size == out
    assert _as_int(got) == expected


@pytest.mark.parametrize("n, out", [(3, 1), (4, 2), (4, 1)])
def test_the_family_is_two_universal_by_exhaustion(n, out):
    """Every pair of distinct keys collides under at most a 2^-out share of all (a, b)."""
    e = mersenne_exponent(n)  # 5 (p = 31) for n = 3 and 4
    p = (1 << e) - 1
    keys = [np.array([(x >> i) & 1 for i in range(n)], np.uint8) for x in range(1 << n)]
    digests = {}
    for a in range(1, p):
        for b in range(p):
            choice = HashChoice(n, a, b)
            digests[a, b] = [_as_int(universal_hash(k, choice, out)) for k in keys]
    family = len(digests)
    for x, y in itertools.combinations(range(1 << n), 2):
        collisions = sum(d[x] == d[y] for d in digests.values())
        assert collisions <= family / (1 << out)


def test_a_large_block_hashes_to_the_same_bits_at_both_ends():
    rng = np.random.default_rng(3)
    n = 1 << 20
    key = rng.integers(0, 2, n, dtype=np.uint8)
    choice = choose_hash(rng, n)
    received = HashChoice.from_bytes(n, choice.to_bytes())
    assert received == choice
    assert np.array_equal(universal_hash(key, choice, 300_000), universal_hash(key.copy(), received, 300_000))
    # The all-ones key (x = 2^n - 1) is a valid input too: it stays below p.
    ones = universal_hash(np.ones(n, np.uint8), choice, 64)
    p = (1 << mersenne_exponent(n)) - 1
    assert _as_int(ones) == ((choice.a * ((1 << n) - 1) + choice.b) % p) % (1 << 64)


def test_a_choice_outside_the_family_or_of_the_wrong_size_is_refused():
    e = mersenne_exponent(100)
    width = (e + 7) // 8
    p = (1 << e) - 1
    with pytest.raises(ValueError, match="outside the family"):
        HashChoice.from_bytes(100, (0).to_bytes(width, "little") + (1).to_bytes(width, "little"))
    with pytest.raises(ValueError, match="outside the family"):
        HashChoice.from_bytes(100, (1).to_bytes(width, "little") + p.to_bytes(width, "little"))
    with pytest.raises(ValueError, match="bytes"):
        HashChoice.from_bytes(100, bytes(width))
    with pytest.raises(ValueError, match="another key length"):
        universal_hash(np.zeros(10, np.uint8), HashChoice(100, 1, 0), 5)


def test_exponents_are_increasing_and_cover_the_largest_block():
    assert list(MERSENNE_EXPONENTS) == sorted(set(MERSENNE_EXPONENTS))
    assert mersenne_exponent(100_000_000) == 136279841
    assert mersenne_exponent(3_240_000) == 6972593
