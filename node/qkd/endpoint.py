"""One end of a QKD link: authentication state, envelopes, and the per-block result.

Layer: sans-I/O. A ``LinkEndpoint`` lives as long as the link; each block of pulses gets a
session (``AliceSession``/``BobSession``) that borrows the endpoint's authenticator. Messages
travel as envelopes: the encoded message plus its Wegman-Carter tag, except the Cascade rounds,
which are covered by one tag over the whole Cascade transcript (sent with ReconciliationDone)
so that hundreds of round trips do not each burn 128 bits of key. Nothing derived from an
unverified message reaches the final key.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.poly1305 import Poly1305

from .authentication import TAG_BYTES, AuthKeyPool, MessageAuthenticator
from .bits import SecretBits, os_secret_bits
from .errors import AuthenticationError, ProtocolError
from .estimation import DecoyEstimate
from .messages import MESSAGE_TYPES, TRANSCRIPT_TYPES, Message, decode, encode
from .params import LinkParams, ProcessingParams


@dataclass(frozen=True)
class BlockResult:
    """What one side knows at the end of a block. ``key`` is empty unless accepted."""

    frame_id: int
    role: str
    accepted: bool
    abort_reason: str | None
    key: np.ndarray = field(repr=False)
    n_pulses: int = 0
    detections: int = 0
    sifted_key_bits: int = 0
    test_bits: int = 0
    qber_z: float | None = None
    qber_x: float | None = None
    leak_ec_bits: int = 0
    verification_bits: int = 0
    amplified_bits: int = 0
    auth_bits: int = 0
    cascade_rounds: int = 0
    estimate: DecoyEstimate | None = None
    gain_per_intensity: tuple[float, ...] = ()
    qber_x_per_intensity: tuple[float, ...] = ()

    @property
    def net_key_bits(self) -> int:
        return int(self.key.size)


class LinkEndpoint:
    """Long-lived state of one side of a link: parameters, authentication pool, counters."""

    def __init__(self, role: str, params: LinkParams, processing: ProcessingParams,
                 preshared_secret: bytes, rng: np.random.Generator,
                 secret_bits: SecretBits = os_secret_bits) -> None:
        """``rng``: seeded, for public choices (hash keys and seeds, Cascade permutations);
        ``secret_bits``: the device's secret randomness (the OS CSPRNG)."""
        if role not in ("alice", "bob"):
            raise ValueError("role must be 'alice' or 'bob'")
        if len(preshared_secret) < 1024:
            raise ProtocolError("pre-shared authentication secret must be at least 1024 bytes")
        self.role = role
        self.params = params
        self.processing = processing
        self.rng = rng
        self.secret_bits = secret_bits
        self.auth_pool = AuthKeyPool(preshared_secret)
        self.authenticator = MessageAuthenticator(self.auth_pool)
        self._transcript: Poly1305 | None = None

    # -- envelopes ----------------------------------------------------------------------
    def seal(self, message: Message) -> bytes:
        payload = encode(message)
        if isinstance(message, TRANSCRIPT_TYPES):
            self._add_to_transcript(b"S", payload)
            return payload
        return payload + self.authenticator.tag(payload)

    def open(self, envelope: bytes) -> Message:
        if not envelope:
            raise ProtocolError("empty message")
        cls = MESSAGE_TYPES.get(envelope[0])
        if cls is None:
            raise ProtocolError(f"unknown message type {envelope[0]}")
        if issubclass(cls, TRANSCRIPT_TYPES):
            if self._transcript is None:
                raise ProtocolError("Cascade message outside the reconciliation phase")
            self._add_to_transcript(b"R", envelope)
            return decode(envelope)
        if len(envelope) < 1 + TAG_BYTES:
            raise ProtocolError("message too short for its tag")
        payload, tag = envelope[:-TAG_BYTES], envelope[-TAG_BYTES:]
        self.authenticator.verify(payload, tag)
        return decode(payload)

    # -- Cascade transcript -------------------------------------------------------------
    def begin_transcript(self) -> None:
        key = self.auth_pool.take(32)
        self._transcript = Poly1305(key)

    def _add_to_transcript(self, direction: bytes, payload: bytes) -> None:
        if self._transcript is None:
            raise ProtocolError("Cascade message outside the reconciliation phase")
        # Direction as seen by Bob: his sent queries and received replies.
        bob_view = direction if self.role == "bob" else (b"R" if direction == b"S" else b"S")
        self._transcript.update(bob_view + struct.pack("<Q", len(payload)) + payload)

    def finish_transcript(self) -> bytes:
        if self._transcript is None:
            raise ProtocolError("no Cascade transcript open")
        tag, self._transcript = self._transcript.finalize(), None
        return tag

    def check_transcript(self, tag: bytes) -> None:
        mine = self.finish_transcript()
        if not hmac.compare_digest(mine, tag):
            raise AuthenticationError("Cascade transcript failed authentication")

    def abandon_transcript(self) -> None:
        self._transcript = None
