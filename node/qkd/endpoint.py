"""One end of a QKD link: authentication state, envelopes, and the per-block result.

Layer: sans-I/O. A ``LinkEndpoint`` lives as long as the link; each block of pulses gets a
session (``AliceSession``/``BobSession``) with its own ``BlockAuth``, which draws on the
endpoint's authentication keys, so blocks of one link can run side by side (in threads).
Messages travel as envelopes: the encoded message, the index of its one-time key and its
Wegman-Carter tag, except the Cascade rounds, which are covered by one tag over the whole
Cascade transcript (sent with ReconciliationDone, under a key Alice names in Reconcile) so that
hundreds of round trips do not each burn a key. Nothing derived from an unverified message
reaches the final key.
"""

from __future__ import annotations

import hmac
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.poly1305 import Poly1305

from .authentication import (
    KEY_BITS,
    SENDERS,
    TRAILER_BYTES,
    AuthKeyIndex,
    AuthKeyRange,
    AuthKeyStore,
    KeyUse,
    MessageAuthenticator,
)
from .bits import SecretBits, os_secret_bits, pack
from .cascade import SHUFFLE_REUSE_BLOCKS, ShuffleCache
from .errors import AuthenticationError, ProtocolError
from .estimation import DecoyEstimate
from .messages import MESSAGE_TYPES, TRANSCRIPT_TYPES, Message, decode, encode_parts
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
    auth_refill_bits: int = 0
    cascade_rounds: int = 0
    """Round trips of reconciliation: Cascade's parity rounds, or LDPC's reveal retries."""
    reconciler: str = "cascade"
    frames: int = 0
    """LDPC frames in the block (0 for Cascade)."""
    frames_failed_first: int = 0
    """LDPC frames not decoded at the first try (Bob's count; the frame error rate's numerator)."""
    frames_dropped: int = 0
    estimate: DecoyEstimate | None = None
    gain_per_intensity: tuple[float, ...] = ()
    qber_x_per_intensity: tuple[float, ...] = ()

    @property
    def net_key_bits(self) -> int:
        return int(self.key.size)


AUTH_RESERVE_KEYS = 12
"""Authentication units of QKD origin kept in hand for each end: a block uses five of each
(Bob's r and four pads, Alice's five pads), so a failed block or two still leaves the
pre-shared secret untouched."""


class LinkEndpoint:
    """Long-lived state of one side of a link: parameters, authentication keys, counters."""

    def __init__(self, role: str, params: LinkParams, processing: ProcessingParams,
                 preshared_secret: bytes, rng: np.random.Generator,
                 secret_bits: SecretBits = os_secret_bits, auth_ledger: list[KeyUse] | None = None) -> None:
        """``rng``: seeded, for public choices (hash keys and seeds, Cascade permutations;
        drawn per block, see ``block_rng``);
        ``secret_bits``: the device's secret randomness (the OS CSPRNG); ``auth_ledger``: a
        list that records every authentication-key use (for tests)."""
        if role not in ("alice", "bob"):
            raise ValueError("role must be 'alice' or 'bob'")
        if len(preshared_secret) < 1024:
            raise ProtocolError("pre-shared authentication secret must be at least 1024 bytes")
        self.role = role
        self.params = params
        self.processing = processing
        self.rng = rng
        self.secret_bits = secret_bits
        self.auth_keys = AuthKeyStore(role, preshared_secret, auth_ledger)
        self.cascade_shuffles = ShuffleCache()  # this end's copy of the current seed's shuffles
        # Public randomness per block, from the seeded stream, by the block's place in the link:
        # blocks running side by side draw the same values whatever order their threads run in.
        self._block_entropy = [int(word) for word in rng.integers(0, 1 << 63, size=4)]
        # Alice's ledger of the keys of QKD origin held, per sender, after the blocks ended so far.
        self._ledger_lock = threading.Lock()
        self._ledger_next = 0  # the first block not yet in it
        self._ledger_pending: dict[int, tuple[dict[str, int], tuple[int, int]]] = {}
        self._refill_held = dict.fromkeys(SENDERS, 0)

    def block_auth(self) -> BlockAuth:
        """The authentication state of one new block."""
        return BlockAuth(self.role, self.auth_keys)

    def block_rng(self, block_index: int) -> np.random.Generator:
        """The public randomness of the link's ``block_index``-th block (counted from 0)."""
        return np.random.default_rng(np.random.SeedSequence(self._block_entropy, spawn_key=(0, block_index)))

    def cascade_seed(self, block_index: int) -> int:
        """Alice: the public seed of this block's Cascade plan, one for each run of
        ``SHUFFLE_REUSE_BLOCKS`` blocks so that both ends reuse their shuffles."""
        run = np.random.SeedSequence(self._block_entropy, spawn_key=(1, block_index // SHUFFLE_REUSE_BLOCKS))
        return int(np.random.default_rng(run).integers(1 << 62))

    # -- authentication keys -------------------------------------------------------------
    def refill_wanted(self, block_index: int, used_so_far: dict[str, int]) -> tuple[int, int]:
        """Keys (Alice's, Bob's) block ``block_index`` should refill so both ends keep their
        reserve of QKD origin; Alice decides and announces it, so both ends refill alike. Every
        earlier block must have ended (``ended_before``): the reserve is counted from their
        ledger and this block's own use, not from the store, which blocks running beside this one
        draw on at times their threads decide."""
        with self._ledger_lock:
            if self._ledger_next != block_index:
                raise ProtocolError(f"block {block_index} decided its refill before block {self._ledger_next} ended")
            alice, bob = (max(0, AUTH_RESERVE_KEYS - max(0, self._refill_held[sender] - used_so_far[sender]))
                          for sender in SENDERS)
        return alice, bob

    def block_ended(self, block_index: int, used: dict[str, int], refilled: tuple[int, int]) -> None:
        """Alice: account an ended block's keys in the ledger, in block order (a block ending
        before an earlier one waits in it until that one ends)."""
        with self._ledger_lock:
            self._ledger_pending[block_index] = (dict(used), refilled)
            while self._ledger_next in self._ledger_pending:
                used_then, refill_then = self._ledger_pending.pop(self._ledger_next)
                for sender, added in zip(SENDERS, refill_then, strict=True):
                    # Refills serve first, the pre-shared secret once they are used up.
                    self._refill_held[sender] = max(0, self._refill_held[sender] - used_then[sender]) + added
                self._ledger_next += 1

    def ended_before(self, block_index: int) -> bool:
        """Whether every block before ``block_index`` has ended (and is in the ledger)."""
        with self._ledger_lock:
            return self._ledger_next >= block_index

    def keep_only(self, peer_inventory: Iterable[AuthKeyRange]) -> None:
        """Resynchronisation (no block open): keep the keys both ends hold; the ledger restarts
        from what the store holds."""
        self.auth_keys.keep_only(peer_inventory)
        with self._ledger_lock:
            self._refill_held = {sender: self.auth_keys.held(sender, refills_only=True) for sender in SENDERS}

    def refill(self, frame_id: int, key: np.ndarray, alice_keys: int, bob_keys: int) -> np.ndarray:
        """File the announced keys from the front of a verified block key; returns the rest."""
        bits = KEY_BITS * (alice_keys + bob_keys)
        if bits:
            self.auth_keys.add(frame_id, pack(key[:bits]), alice_keys, bob_keys)
        return key[bits:]


class BlockAuth:
    """One block's authentication at one end: its hash key r, the pads it takes from the link's
    store, the Cascade transcript, and the envelopes sealed and opened under them."""

    def __init__(self, role: str, store: AuthKeyStore) -> None:
        self.role = role
        self.authenticator = MessageAuthenticator(store)
        self._transcript: Poly1305 | None = None

    @property
    def used_bits(self) -> int:
        """Authentication key bits this block has taken (tagging and checking)."""
        return self.authenticator.used_bits

    @property
    def used_units(self) -> dict[str, int]:
        """Keys this block has taken so far, by the sender they belong to."""
        return dict(self.authenticator.used_units)

    def new_hash_key(self) -> None:
        """Bob, opening the block: draw r from his own units."""
        self.authenticator.new_hash_key()

    def end_block(self) -> None:
        """Erase the block's r and drop any open transcript."""
        self._transcript = None
        self.authenticator.end_block()

    # -- envelopes ----------------------------------------------------------------------
    def seal(self, message: Message) -> bytes:
        parts = encode_parts(message)
        if isinstance(message, TRANSCRIPT_TYPES):
            payload = b"".join(parts)
            self._add_to_transcript(b"S", payload)
            return payload
        parts.append(self.authenticator.tag(parts))
        return b"".join(parts)

    def open(self, envelope: bytes, *, opens_block: bool = False) -> Message:
        """Decode the peer's envelope after checking its tag; ``opens_block``: the block's first
        message, which names the block's hash key."""
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
        if len(envelope) < 1 + TRAILER_BYTES:
            raise ProtocolError("message too short for its tag")
        payload, trailer = memoryview(envelope)[:-TRAILER_BYTES], envelope[-TRAILER_BYTES:]
        self.authenticator.verify(payload, trailer, opens_block=opens_block)
        return decode(payload)

    # -- Cascade transcript -------------------------------------------------------------
    def open_transcript(self) -> AuthKeyIndex:
        """Alice: start the transcript under the block's r and her next pad; Reconcile names it."""
        index, key = self.authenticator.next_one_time_key()
        self._transcript = Poly1305(key)
        return index

    def join_transcript(self, index: AuthKeyIndex) -> None:
        """Bob: start the transcript under the pad Alice named."""
        if index.sender != "alice":
            raise AuthenticationError(f"transcript pad {index} is not one Alice may choose")
        self._transcript = Poly1305(self.authenticator.one_time_key(index, "check"))

    def _add_to_transcript(self, direction: bytes, payload: bytes) -> None:
        if self._transcript is None:
            raise ProtocolError("Cascade message outside the reconciliation phase")
        # Direction as seen by Bob: his sent queries and received replies.
        bob_view = direction if self.role == "bob" else (b"R" if direction == b"S" else b"S")
        self._transcript.update(bob_view + struct.pack("<Q", len(payload)))
        self._transcript.update(payload)

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
