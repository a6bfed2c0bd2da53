"""One-time-pad relay: the pure XOR.

Layer: node domain (no grpc, no asyncio). A relayed key K travels as K xor P where P is fresh
link key shared with the next hop and used for nothing else; the receiver recovers K with its
copy of P.
"""

from __future__ import annotations

import numpy as np


def one_time_pad(data: bytes, pad_bits: np.ndarray) -> bytes:
    """data xor pad; the pad must have exactly as many bits as data (used once by the caller)."""
    pad = np.packbits(pad_bits)
    if pad.size != len(data) or pad_bits.size != 8 * len(data):
        raise ValueError("one-time pad length differs from the data length")
    return (np.frombuffer(data, np.uint8) ^ pad).tobytes()


def pad_each(payloads: list[bytes], pads: np.ndarray) -> list[bytes]:
    """Each payload xor its own stretch of the concatenated pads (one numpy operation for all)."""
    padded = one_time_pad(b"".join(payloads), pads)
    out, start = [], 0
    for payload in payloads:
        out.append(padded[start:start + len(payload)])
        start += len(payload)
    return out
