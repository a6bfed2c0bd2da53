"""What a node reports about itself: typed status of the node and of each link end.

Layer: node domain. The orchestrator receives the same types (decoded by ``node.rpc.convert``,
whose test checks they match the proto field for field). Counts and rates only, never keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinkStatus:
    link_id: str
    peer: str
    role: str  # "transmitter" or "receiver"
    state: str  # starting, running, full, down, cut
    length_km: float
    blocks_accepted: int
    blocks_aborted: int
    last_abort_reason: str
    qber: float
    sifted_bits: int
    generated_bits: int  # net secret bits put into the pool
    pool_bits: int
    consumed_bits: int
    discarded_bits: int
    emulated_seconds: float
    sifted_bits_per_s: float  # per emulated second
    secret_bits_per_s: float  # per emulated second
    auth_bits: int
    sendable_bits: int  # link key this end can still send with (its own half)
    resyncs: int = 0  # resynchronisations after lost, late or repeated messages
    # Transmitter with a time scale: emulated time covered per emulated second of the clock while
    # generating (1.0: the host keeps up; 0.2: the link made key for a fifth of the time the
    # physics allows). 0 where there is no clock to keep up with (time_scale 0, the receiver).
    clock_ratio: float = 0.0
    # Transmitter in virtual time: wall seconds it waited for the network's clock to reach its
    # next block (the barrier's cost on this link; not counting pauses at a full pool).
    clock_wait_s: float = 0.0
    # Blocks of this link under way at this end now (up to ProcessingParams.blocks_in_flight).
    open_blocks: int = 0

    @property
    def balanced(self) -> bool:
        """Every bit generated is in the pool, consumed or discarded."""
        return self.generated_bits == self.pool_bits + self.consumed_bits + self.discarded_bits


@dataclass(frozen=True)
class NodeStatus:
    name: str
    links: tuple[LinkStatus, ...]
    app_keys: int  # end-to-end keys held awaiting delivery
    relays_forwarded: int
    keys_read_whole: int  # end-to-end keys decrypted whole as an intermediate
    shares_read: int  # XOR shares of keys decrypted as an intermediate
    kme_url: str = ""
    metrics_url: str = ""

    def link_to(self, peer: str) -> LinkStatus | None:
        return next((link for link in self.links if link.peer == peer), None)


@dataclass(frozen=True)
class KeyEntry:
    """An end-to-end key as a node lists it for comparison: its ID and HMAC-SHA256(salt, key) for
    the salt the comparer chose (empty for keys no longer held or shorter than 128 bits), never
    the key."""

    key_id: str
    peer: str
    digest: bytes
    bits: int


@dataclass(frozen=True)
class ExposureEntry:
    key_id: str
    share_index: int  # 0: the whole key
    share_count: int


@dataclass(frozen=True)
class ExposureReport:
    """What a node decrypted as an intermediate: the most recent entries, and totals since start."""

    entries: tuple[ExposureEntry, ...]
    keys_read_whole: int
    shares_read: int
