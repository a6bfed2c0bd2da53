"""Why a BB84 block was aborted, as one of a few fixed categories.

Layer: node domain. A block's abort reason is a sentence (with figures in it) for logs and
status; metrics and alerts need a bounded label instead. The categories follow the stages of
post-processing, so an operator can tell an eavesdropper (``qber``) from a starved
authentication pool or a peer that stopped answering.
"""

from __future__ import annotations

CATEGORIES = ("qber", "no_key_length", "verification", "authentication", "peer_unreachable",
              "superseded", "protocol")

_PREFIXES = (  # the first matching prefix decides (reasons the link engine and sessions write)
    ("QBER ", "qber"),
    ("decoy-state bounds", "no_key_length"),
    ("too few sifted", "no_key_length"),
    ("key length ", "no_key_length"),
    ("verification failed", "verification"),
    ("authentication key exhausted", "authentication"),
    ("AuthenticationError", "authentication"),
    ("peer stopped answering", "peer_unreachable"),
    ("the exchange with the peer broke off", "peer_unreachable"),
    ("peer unreachable", "peer_unreachable"),
    ("the transmitter went on without it", "superseded"),
    ("the transmitter resynchronised", "superseded"),
)
PEER_ABORTED = "peer aborted: "


def abort_category(reason: str) -> str:
    """The category of an abort reason; a peer's abort counts under the peer's own reason."""
    while reason.startswith(PEER_ABORTED):
        reason = reason[len(PEER_ABORTED):]
    for prefix, category in _PREFIXES:
        if reason.startswith(prefix):
            return category
    return "protocol"  # ProtocolError, ValueError and anything the engine did not expect
