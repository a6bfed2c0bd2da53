"""Wegman-Carter authentication of the classical channel with addressed one-time keys.

Layer: sans-I/O kernel. A tag is Poly1305 with a hash key r for the whole block and a fresh
one-time pad s per message: tag = (poly_r(index header + message) + s) mod 2^128. Poly1305's
polynomial is almost-delta-universal, so with every s used once this is the Wegman-Carter
construction: each forgery attempt succeeds with probability at most 8 ceil(L/16) / 2^106 for
an L-byte message (Bernstein 2005). Every tagged message names its keys (r's and s's index).

Keys are 16-byte units addressed by ``AuthKeyIndex`` (origin, seq): origin 0 is the installer's
pre-shared secret, any other origin the frame whose verified key refilled the store. Even
sequence numbers belong to the transmitter (Alice), odd ones to the receiver (Bob), so the two
ends never tag with the same pad, whatever is lost, delayed or repeated. Bob, who speaks first
in a block, draws r from his units; Alice takes the one his first message names. Taking a unit
erases it, the sender's copy when it tags and the receiver's when it checks, so a repeated
message finds its pad gone; r is erased at both ends when the block ends. After a loss the two
ends intersect their inventories and go on with what both still hold; an intersection only
removes units, so a forged inventory could stall a link but never make a pad serve twice.

Several blocks of one link may run at once (in threads): the store is shared and locked, each
block holds its own ``MessageAuthenticator`` (its r), and a sender takes its next pad in one
locked step, so no two blocks ever tag with the same pad.
"""

from __future__ import annotations

import bisect
import heapq
import hmac
import struct
import threading
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from cryptography.hazmat.primitives.poly1305 import Poly1305

from .errors import AuthenticationError, AuthKeyExhausted, UnknownAuthKey

Payload = bytes | memoryview | Sequence[bytes | memoryview]
"""What a tag covers: one byte string, or its pieces in order (no copy to join them)."""

TAG_BYTES = 16
KEY_BYTES = 16  # one unit: a hash key r or a pad s
KEY_BITS = 8 * KEY_BYTES
BOOTSTRAP_ORIGIN = 0
SENDERS = ("alice", "bob")
_INDEX = struct.Struct("<QI")
INDEX_BYTES = _INDEX.size
TRAILER_BYTES = 2 * INDEX_BYTES + TAG_BYTES  # r's index, s's index, tag


class AuthKeyIndex(NamedTuple):
    """Where a one-time key came from and its place there; names the same key at both ends."""

    origin: int
    seq: int

    @property
    def sender(self) -> str:
        """The only end that may tag with this key."""
        return SENDERS[self.seq % 2]

    def to_bytes(self) -> bytes:
        return _INDEX.pack(self.origin, self.seq)

    @classmethod
    def from_bytes(cls, data: bytes) -> AuthKeyIndex:
        origin, seq = _INDEX.unpack(data)
        return cls(origin, seq)

    def __str__(self) -> str:
        return f"{self.origin}:{self.seq}"


class AuthKeyRange(NamedTuple):
    """``units`` consecutive sequence numbers of one origin: how inventories travel."""

    origin: int
    first: int
    units: int


class KeyUse(NamedTuple):
    """One use of a key, for accounting: who used it, and whether to tag or to check."""

    owner: str
    purpose: str  # "tag" or "check"
    unit: AuthKeyIndex


class AuthKeyStore:
    """The one-time authentication keys one end holds, by index; each is used once."""

    def __init__(self, owner: str, preshared_secret: bytes, ledger: list[KeyUse] | None = None) -> None:
        """``ledger``: when given, every use is appended to it (tests audit the accounting)."""
        if owner not in SENDERS:
            raise ValueError("owner must be 'alice' or 'bob'")
        self.owner = owner
        self._held: dict[AuthKeyIndex, bytearray] = {}
        # Per sender, a heap of (pre-shared?, origin, seq) in the order ``next_index`` serves
        # them; entries of keys no longer held are skipped lazily. And counts per (sender,
        # pre-shared?). Both replace scans of every held key (thousands) several times a block.
        self._queue: dict[str, list[tuple[bool, int, int]]] = {sender: [] for sender in SENDERS}
        self._counts: dict[tuple[str, bool], int] = {(sender, b): 0 for sender in SENDERS for b in (False, True)}
        self.ledger = ledger
        self._lock = threading.RLock()  # blocks of one link run in threads and share the store
        self.consumed_bits = 0
        self.erased_bits = 0  # dropped because the peer no longer held them
        keys = len(preshared_secret) // KEY_BYTES
        self.add(BOOTSTRAP_ORIGIN, preshared_secret, keys - keys // 2, keys // 2)

    # -- filling ------------------------------------------------------------------------
    def add(self, origin: int, material: bytes, alice_keys: int, bob_keys: int) -> None:
        """File ``alice_keys`` then ``bob_keys`` keys cut from ``material`` under ``origin``.

        The pre-shared secret alternates (both ends hold all of it); a refill gives Alice the
        first keys and Bob the next ones. Both ends call this with identical arguments."""
        if KEY_BYTES * (alice_keys + bob_keys) > len(material):
            raise ValueError("not enough material for the keys asked")
        with self._lock:
            self._add(origin, material, alice_keys, bob_keys)

    def _add(self, origin: int, material: bytes, alice_keys: int, bob_keys: int) -> None:
        if origin == BOOTSTRAP_ORIGIN:
            seqs = list(range(alice_keys + bob_keys))
        else:
            seqs = [2 * k for k in range(alice_keys)] + [2 * k + 1 for k in range(bob_keys)]
        for n, seq in enumerate(seqs):
            index = AuthKeyIndex(origin, seq)
            if index in self._held:
                raise ValueError(f"authentication key {index} is filed already")
            self._held[index] = bytearray(material[n * KEY_BYTES:(n + 1) * KEY_BYTES])
            heapq.heappush(self._queue[index.sender], (origin == BOOTSTRAP_ORIGIN, origin, seq))
            self._counts[(index.sender, origin == BOOTSTRAP_ORIGIN)] += 1

    # -- using --------------------------------------------------------------------------
    def next_index(self, sender: str) -> AuthKeyIndex:
        """The key ``sender`` tags with next: QKD refills first (oldest first), the pre-shared
        secret only when they are used up."""
        with self._lock:
            return self._next_index(sender)

    def _next_index(self, sender: str) -> AuthKeyIndex:
        queue = self._queue[sender]
        while queue:
            _, origin, seq = queue[0]
            index = AuthKeyIndex(origin, seq)
            if index in self._held:
                return index
            heapq.heappop(queue)  # used or erased since it was filed
        raise AuthKeyExhausted(f"no authentication key left for {sender}")

    def take(self, index: AuthKeyIndex, purpose: str) -> bytes:
        """The key at ``index``, erased here. ``UnknownAuthKey`` if this end does not hold it
        (used already, dropped at a resynchronisation, or never shared)."""
        with self._lock:
            return self._take(index, purpose)

    def take_next(self, sender: str, purpose: str) -> tuple[AuthKeyIndex, bytes]:
        """The key ``sender`` tags with next, and its index, in one step: a block running beside
        another never picks the pad the other is about to take."""
        with self._lock:
            index = self._next_index(sender)
            return index, self._take(index, purpose)

    def _take(self, index: AuthKeyIndex, purpose: str) -> bytes:
        stored = self._held.pop(index, None)
        if stored is None:
            raise UnknownAuthKey(f"authentication key {index} is used or unknown here")
        self._counts[(index.sender, index.origin == BOOTSTRAP_ORIGIN)] -= 1
        key = bytes(stored)
        stored[:] = bytes(len(stored))
        self.consumed_bits += KEY_BITS
        if self.ledger is not None:
            self.ledger.append(KeyUse(self.owner, purpose, index))
        return key

    def held(self, sender: str, *, refills_only: bool = False) -> int:
        """How many keys of ``sender`` this end holds (QKD refills only, if asked)."""
        with self._lock:
            refills = self._counts[(sender, False)]
            return refills if refills_only else refills + self._counts[(sender, True)]

    # -- resynchronisation ----------------------------------------------------------------
    def inventory(self) -> tuple[AuthKeyRange, ...]:
        """Every key held, as runs of consecutive sequence numbers."""
        runs: list[AuthKeyRange] = []
        with self._lock:
            held = sorted(self._held)
        for index in held:
            last = runs[-1] if runs else None
            if last is not None and last.origin == index.origin and last.first + last.units == index.seq:
                runs[-1] = last._replace(units=last.units + 1)
            else:
                runs.append(AuthKeyRange(index.origin, index.seq, 1))
        return tuple(runs)

    def keep_only(self, peer_inventory: Iterable[AuthKeyRange]) -> int:
        """Erase every key the peer does not hold; returns how many were erased."""
        starts: dict[int, list[tuple[int, int]]] = {}
        for run in peer_inventory:
            starts.setdefault(run.origin, []).append((run.first, run.first + run.units))
        for runs in starts.values():
            runs.sort()

        def peer_holds(index: AuthKeyIndex) -> bool:
            runs = starts.get(index.origin, [])
            at = bisect.bisect_right(runs, (index.seq, float("inf"))) - 1
            return at >= 0 and runs[at][0] <= index.seq < runs[at][1]

        with self._lock:
            dropped = [i for i in self._held if not peer_holds(i)]
            for index in dropped:
                stored = self._held.pop(index)
                stored[:] = bytes(len(stored))
                self._counts[(index.sender, index.origin == BOOTSTRAP_ORIGIN)] -= 1
            self.erased_bits += KEY_BITS * len(dropped)
        return len(dropped)


class MessageAuthenticator:
    """One block's authentication: tags this end's messages and checks the peer's, under the
    block's r and a fresh addressed s each; counts the key bits the block used."""

    def __init__(self, store: AuthKeyStore) -> None:
        self.store = store
        self._hash_key: tuple[AuthKeyIndex, bytearray] | None = None
        self.used_units = dict.fromkeys(SENDERS, 0)  # keys taken, by the sender they belong to

    @property
    def used_bits(self) -> int:
        return KEY_BITS * sum(self.used_units.values())

    def _take(self, index: AuthKeyIndex, purpose: str) -> bytes:
        key = self.store.take(index, purpose)
        self.used_units[index.sender] += 1
        return key

    def take_next_pad(self, purpose: str) -> tuple[AuthKeyIndex, bytes]:
        """This end's next pad (taken, so erased) and its index."""
        index, key = self.store.take_next(self.store.owner, purpose)
        self.used_units[index.sender] += 1
        return index, key

    @property
    def hash_key_index(self) -> AuthKeyIndex | None:
        return None if self._hash_key is None else self._hash_key[0]

    def new_hash_key(self) -> None:
        """Bob, opening a block: draw r from his own units."""
        if self.store.owner != "bob":
            raise AuthenticationError("only Bob opens a block")
        self.end_block()
        index, key = self.take_next_pad("tag")
        self._hash_key = (index, bytearray(key))

    def end_block(self) -> None:
        """Erase the block's r."""
        if self._hash_key is not None:
            self._hash_key[1][:] = bytes(KEY_BYTES)
            self._hash_key = None

    def one_time_key(self, pad_index: AuthKeyIndex, purpose: str) -> bytes:
        """Poly1305's key: the block's r and the pad at ``pad_index`` (taken, so erased)."""
        return self._hash_key_bytes() + self._take(pad_index, purpose)

    def next_one_time_key(self) -> tuple[AuthKeyIndex, bytes]:
        """Poly1305's key to tag with: the block's r and this end's next pad (taken), with its index."""
        r = self._hash_key_bytes()
        pad, key = self.take_next_pad("tag")
        return pad, r + key

    def _hash_key_bytes(self) -> bytes:
        if self._hash_key is None:
            raise AuthenticationError("no hash key: the block has not opened")
        return bytes(self._hash_key[1])

    def tag(self, payload: Payload) -> bytes:
        """The trailer for the payload (its pieces, in order): r's index, s's index, then the tag."""
        if self._hash_key is None:
            raise AuthenticationError("no hash key: the block has not opened")
        pad, key = self.next_one_time_key()
        header = self._hash_key[0].to_bytes() + pad.to_bytes()
        return header + _poly1305(key, header, payload)

    def verify(self, payload: Payload, trailer: bytes, *, opens_block: bool = False) -> None:
        """Check the peer's message; ``opens_block``: its first of a block, which names the
        block's r (Alice takes it). Any other message must name the r in use."""
        if len(trailer) != TRAILER_BYTES:
            raise AuthenticationError("authentication trailer of the wrong size")
        header, tag = trailer[:2 * INDEX_BYTES], trailer[2 * INDEX_BYTES:]
        hash_index = AuthKeyIndex.from_bytes(header[:INDEX_BYTES])
        pad = AuthKeyIndex.from_bytes(header[INDEX_BYTES:])
        if pad.sender == self.store.owner or hash_index.sender != "bob":
            raise AuthenticationError("message names keys its sender may not choose")
        if opens_block:
            self.end_block()
            self._hash_key = (hash_index, bytearray(self._take(hash_index, "check")))
        elif self.hash_key_index != hash_index:
            raise UnknownAuthKey(f"message of another block (hash key {hash_index})")
        expected = _poly1305(self.one_time_key(pad, "check"), header, payload)
        if not hmac.compare_digest(expected, tag):
            raise AuthenticationError("classical message failed authentication")


def _poly1305(key: bytes, header: bytes, payload: Payload) -> bytes:
    """Poly1305 of header + payload, fed piece by piece: no copy of a large payload."""
    mac = Poly1305(key)
    mac.update(header)
    for piece in (payload,) if isinstance(payload, (bytes, bytearray, memoryview)) else payload:
        mac.update(piece)
    return mac.finalize()
