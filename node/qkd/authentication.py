"""Wegman-Carter authentication of the classical channel, keyed from the link's own key.

Layer: sans-I/O kernel. A tag is Poly1305 evaluated with a per-block hash key r and a fresh
one-time pad s per message: tag = (poly_r(message) + s) mod 2^128. Poly1305 with a one-time
(r, s) is an information-theoretic one-time MAC (Bernstein 2005: forgery probability at most
8 ceil(L/16) / 2^106 per attempt for an L-byte message); keeping r for one block while every
message takes a fresh s is the Wegman-Carter construction. Both r and every s come from an
``AuthKeyPool`` filled first from a pre-shared secret, then from each block's secret key, and
every bit taken is counted so the link can be charged for it. Taken bits are zeroed.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.poly1305 import Poly1305

from .errors import AuthenticationError, AuthKeyExhausted

TAG_BYTES = 16
HASH_KEY_BYTES = 16
PAD_BYTES = 16


class AuthKeyPool:
    """Shared secret bits both ends take in the same order; each bit is used once."""

    def __init__(self, initial: bytes) -> None:
        self._buffer = bytearray(initial)
        self._offset = 0
        self.consumed_bits = 0

    @property
    def available_bytes(self) -> int:
        return len(self._buffer) - self._offset

    def take(self, n_bytes: int) -> bytes:
        if self.available_bytes < n_bytes:
            raise AuthKeyExhausted(f"authentication pool holds {self.available_bytes} bytes, "
                                   f"{n_bytes} needed")
        start = self._offset
        out = bytes(self._buffer[start:start + n_bytes])
        self._buffer[start:start + n_bytes] = bytes(n_bytes)
        self._offset += n_bytes
        self.consumed_bits += 8 * n_bytes
        if self._offset > 1 << 16:  # drop the used, zeroed prefix
            del self._buffer[:self._offset]
            self._offset = 0
        return out

    def refill(self, key_bytes: bytes) -> None:
        self._buffer.extend(key_bytes)


class MessageAuthenticator:
    """Tags outgoing and checks incoming messages; one pad per message, in channel order."""

    def __init__(self, pool: AuthKeyPool) -> None:
        self._pool = pool
        self._hash_key: bytes | None = None

    def start_block(self) -> None:
        """A fresh hash key r for the block (both ends call this at the same point)."""
        self._hash_key = self._pool.take(HASH_KEY_BYTES)

    def _key(self) -> bytes:
        if self._hash_key is None:
            self.start_block()
        assert self._hash_key is not None
        return self._hash_key + self._pool.take(PAD_BYTES)

    def tag(self, payload: bytes) -> bytes:
        return Poly1305.generate_tag(self._key(), payload)

    def verify(self, payload: bytes, tag: bytes) -> None:
        expected = Poly1305.generate_tag(self._key(), payload)
        if not hmac.compare_digest(expected, tag):
            raise AuthenticationError("classical message failed authentication")
