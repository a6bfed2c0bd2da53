"""Bit-array helpers: keys are uint8 arrays of 0/1 in memory and packed bytes on the wire.

Two kinds of randomness, told apart by name: ``random_bits(rng, n)`` draws from a seeded
generator, for what a protocol announces anyway or the physics decides (reproducible with
``--seed``); ``os_secret_bits(n)`` draws from the operating system's CSPRNG, for every value a
real device keeps secret (Alice's raw bits), so that no seed can ever recompute a key.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import numpy as np

SecretBits = Callable[[int], np.ndarray]  # n -> n secret uniform bits (uint8 0/1)


def os_secret_bits(n: int) -> np.ndarray:
    """n uniform bits from the OS CSPRNG, as uint8 0/1."""
    return np.unpackbits(np.frombuffer(secrets.token_bytes((n + 7) // 8), np.uint8), count=n)


def random_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """n uniform bits as uint8 0/1, drawn as bytes (eight bits per generator output byte)."""
    return np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), np.uint8), count=n)


def pack(bits: np.ndarray) -> bytes:
    return np.packbits(np.asarray(bits, np.uint8)).tobytes()


def unpack(data: bytes, n_bits: int) -> np.ndarray:
    raw = np.frombuffer(data, np.uint8)
    if raw.size * 8 < n_bits:
        raise ValueError(f"{raw.size} bytes cannot hold {n_bits} bits")
    return np.unpackbits(raw, count=n_bits)
