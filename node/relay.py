"""One-time-pad relay: the pure XOR, and the bookkeeping of one hop.

Layer: node domain (no grpc). A relayed key K travels as K xor P where P is fresh link key
shared with the next hop and used for nothing else; the receiver recovers K with its copy of P.
"""

from __future__ import annotations

import numpy as np


def one_time_pad(data: bytes, pad_bits: np.ndarray) -> bytes:
    """data xor pad; the pad must have exactly as many bits as data (used once by the caller)."""
    pad = np.packbits(pad_bits)
    if pad.size != len(data) or pad_bits.size != 8 * len(data):
        raise ValueError("one-time pad length differs from the data length")
    return (np.frombuffer(data, np.uint8) ^ pad).tobytes()
