"""Privacy amplification by the Carter-Wegman family ((a x + b) mod p) mod 2^l, p a Mersenne prime.

Layer: sans-I/O kernel. The key's n bits are read as an integer x < 2^n <= p, with p = 2^e - 1
the smallest Mersenne prime with e > n. For a in [1, p-1] and b in [0, p-1] drawn uniformly,
two different keys collide in the low l bits of (a x + b) mod p for at most a fraction 2^-l of
the (a, b) pairs (Carter and Wegman 1979; CLRS theorem 11.5): the family is 2-universal, as the
leftover hash lemma asks. It replaces Toeplitz hashing because one product of big integers (GMP,
through gmpy2) costs about 40 ms for a 3-Mbit key on this project's reference machine, where an
exact FFT Toeplitz product cost about 1 s per side; reduction modulo 2^e - 1 is a shift and an add.
"""

from __future__ import annotations

from dataclasses import dataclass

import gmpy2
import numpy as np

# Exponents e of the known Mersenne primes 2^e - 1 (GIMPS, to M136279841 of October 2024).
MERSENNE_EXPONENTS = (
    2, 3, 5, 7, 13, 17, 19, 31, 61, 89, 107, 127, 521, 607, 1279, 2203, 2281, 3217, 4253, 4423,
    9689, 9941, 11213, 19937, 21701, 23209, 44497, 86243, 110503, 132049, 216091, 756839, 859433,
    1257787, 1398269, 2976221, 3021377, 6972593, 13466917, 20996011, 24036583, 25964951, 30402457,
    32582657, 37156667, 42643801, 43112609, 57885161, 74207281, 77232917, 82589933, 136279841,
)


def mersenne_exponent(key_bits: int) -> int:
    """The smallest listed e with 2^e - 1 > every key of ``key_bits`` bits (e > key_bits)."""
    for e in MERSENNE_EXPONENTS:
        if e > key_bits:
            return e
    raise ValueError(f"no listed Mersenne prime above {key_bits} bits")


@dataclass(frozen=True)
class HashChoice:
    """One member (a, b) of the family for keys of ``key_bits`` bits; public."""

    key_bits: int
    a: int
    b: int

    @property
    def exponent(self) -> int:
        return mersenne_exponent(self.key_bits)

    def to_bytes(self) -> bytes:
        width = (self.exponent + 7) // 8
        return self.a.to_bytes(width, "little") + self.b.to_bytes(width, "little")

    @classmethod
    def from_bytes(cls, key_bits: int, data: bytes) -> HashChoice:
        """Decode and check a choice sent by the peer; ValueError when it is not in the family."""
        e = mersenne_exponent(key_bits)
        width = (e + 7) // 8
        if len(data) != 2 * width:
            raise ValueError(f"hash choice must be {2 * width} bytes for a {key_bits}-bit key")
        a, b = int.from_bytes(data[:width], "little"), int.from_bytes(data[width:], "little")
        p = (1 << e) - 1
        if not (1 <= a < p and 0 <= b < p):
            raise ValueError("hash choice outside the family")
        return cls(key_bits, a, b)


def choose_hash(rng: np.random.Generator, key_bits: int) -> HashChoice:
    """A uniform member of the family, by rejection from e-bit draws of the seeded generator."""
    e = mersenne_exponent(key_bits)
    p = (1 << e) - 1

    def draw(low: int) -> int:
        while True:
            value = int.from_bytes(rng.bytes((e + 7) // 8), "little") & p  # e bits: [0, 2^e - 1]
            if low <= value < p:
                return value

    return HashChoice(key_bits, draw(1), draw(0))


def universal_hash(key_bits: np.ndarray, choice: HashChoice, out_bits: int) -> np.ndarray:
    """The low ``out_bits`` bits of (a x + b) mod p, x the key read little-endian; uint8 0/1."""
    n = key_bits.size
    if n != choice.key_bits:
        raise ValueError("hash choice was made for another key length")
    e = choice.exponent
    if not 0 <= out_bits <= min(n, e):
        raise ValueError(f"cannot hash {n} bits to {out_bits}")
    if out_bits == 0:
        return np.empty(0, np.uint8)
    x = gmpy2.mpz(int.from_bytes(np.packbits(key_bits, bitorder="little").tobytes(), "little"))
    y = gmpy2.mpz(choice.a) * x + choice.b  # < p^2
    p = (gmpy2.mpz(1) << e) - 1
    while y > p:  # 2^e = 1 mod p: fold the high part onto the low part
        y = (y & p) + (y >> e)
    if y == p:
        y = gmpy2.mpz(0)
    low = int(y & ((gmpy2.mpz(1) << out_bits) - 1))
    raw = np.frombuffer(low.to_bytes((out_bits + 7) // 8, "little"), np.uint8)
    return np.unpackbits(raw, count=out_bits, bitorder="little")
