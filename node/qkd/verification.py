"""Verification of the corrected key by a universal hash: a mismatch means no key from the block.

Layer: sans-I/O kernel. Alice picks a random Poly1305 hash key (r, s = 0) and sends it with the
tag of her key; Bob compares the tag of his. Two different keys of L bytes collide with
probability at most 8 ceil(L/16) / 2^106, which bounds epsilon_cor; the 128 disclosed tag bits
are charged to the error-correction leak.
"""

from __future__ import annotations

import hmac
import math

import numpy as np
from cryptography.hazmat.primitives.poly1305 import Poly1305

from .bits import pack

TAG_BITS = 128


def new_hash_key(rng: np.random.Generator) -> bytes:
    return rng.bytes(16) + bytes(16)


def key_tag(key_bits: np.ndarray, hash_key: bytes) -> bytes:
    return Poly1305.generate_tag(hash_key, pack(key_bits) + len(key_bits).to_bytes(8, "big"))


def tags_match(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def collision_probability(n_bits: int) -> float:
    return 8 * math.ceil((n_bits // 8 + 9) / 16) / 2.0 ** 106
