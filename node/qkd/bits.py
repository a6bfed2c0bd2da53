"""Bit-array helpers: keys are uint8 arrays of 0/1 in memory and packed bytes on the wire."""

from __future__ import annotations

import numpy as np


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
