"""XOR secret sharing for multipath relay, and the record of what a node saw as an intermediate.

Layer: node domain (no grpc, no asyncio). A key K is split as K = S1 xor ... xor Sk, with
S1..S(k-1) uniformly random; each share travels over a different node-disjoint path, so an
intermediate node sees one share, which alone is independent of K. The destination holds shares
until all k have arrived, then stores K.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from qkdnet.node.status import ExposureEntry

PARTIAL_KEY_TTL_S = 60.0  # shares of a key whose other shares never arrive are dropped after this
EXPOSURE_LOG_SIZE = 100_000


def split_key(key: bytes, count: int) -> list[bytes]:
    if count < 2:
        raise ValueError("a key is split into at least two shares")
    shares = [secrets.token_bytes(len(key)) for _ in range(count - 1)]
    return shares + [combine_shares([key, *shares])]


def combine_shares(shares: list[bytes]) -> bytes:
    acc = np.frombuffer(shares[0], np.uint8).copy()
    for share in shares[1:]:
        if len(share) != acc.size:
            raise ValueError("shares differ in length")
        acc ^= np.frombuffer(share, np.uint8)
    return acc.tobytes()


@dataclass
class _Partial:
    count: int
    source: str
    master_sae: str
    slave_sae: str
    first_seen: float
    shares: dict[int, bytes] = field(default_factory=dict, repr=False)


class ShareAssembler:
    """Destination side: collects the shares of each key ID until the key is whole."""

    def __init__(self, ttl_s: float = PARTIAL_KEY_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._partial: dict[str, _Partial] = {}
        self.dropped_incomplete = 0

    def add(self, key_id: str, index: int, count: int, share: bytes, source: str, master_sae: str = "",
            slave_sae: str = "", now: float | None = None) -> bytes | None:
        """The whole key once its last share arrives, else None. Inconsistent shares raise."""
        now = time.monotonic() if now is None else now
        self.expire(now)
        if not 1 <= index <= count or count < 2:
            raise ValueError(f"share {index} of {count} is not a valid share")
        partial = self._partial.setdefault(key_id, _Partial(count, source, master_sae, slave_sae, now))
        if (partial.count, partial.source, partial.master_sae, partial.slave_sae) != (count, source, master_sae, slave_sae):
            raise ValueError(f"share {index} of key {key_id} disagrees with its other shares")
        if index in partial.shares:
            raise ValueError(f"share {index} of key {key_id} arrived twice")
        partial.shares[index] = share
        if len(partial.shares) < count:
            return None
        del self._partial[key_id]
        return combine_shares([partial.shares[i] for i in range(1, count + 1)])

    def expire(self, now: float) -> list[str]:
        stale = [k for k, p in self._partial.items() if now - p.first_seen > self.ttl_s]
        for key_id in stale:
            del self._partial[key_id]
        self.dropped_incomplete += len(stale)
        return stale

    def drop(self, key_ids: list[str]) -> None:
        """Forget the shares of keys their source aborted."""
        for key_id in key_ids:
            self._partial.pop(key_id, None)

    @property
    def waiting(self) -> int:
        return len(self._partial)


class ExposureLog:
    """What this node decrypted while forwarding: the basis of per-node exposure figures."""

    def __init__(self, size: int = EXPOSURE_LOG_SIZE) -> None:
        self.entries: deque[ExposureEntry] = deque(maxlen=size)
        self.keys_read_whole = 0
        self.shares_read = 0

    def record(self, key_id: str, share_index: int, share_count: int) -> None:
        self.entries.append(ExposureEntry(key_id, share_index, share_count))
        if share_index:
            self.shares_read += 1
        else:
            self.keys_read_whole += 1
