"""End-to-end key lifecycle: the states, the allowed transitions, and nothing else.

Every state change in the key store goes through ``check_transition``, so a key cannot be
delivered twice, revived after expiry, or handed out after revocation.

    relayed ──> delivered ──> destroyed
       │  └──> expired ──────────┘
       └─────> revoked ──────────┘

``relayed``: held by this KME (source or destination), not yet handed to an SAE.
``delivered``: handed to its SAE (material is then overwritten: the SAE holds the only copy).
``expired``/``revoked``: withdrawn before delivery; ``destroyed``: material overwritten and row
reduced to its audit trail.
"""

from __future__ import annotations

from enum import StrEnum

from qkdnet.node.errors import LifecycleError


class KeyState(StrEnum):
    RELAYED = "relayed"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DESTROYED = "destroyed"


__all__ = ["ALLOWED", "KeyState", "LifecycleError", "check_transition"]

ALLOWED: dict[KeyState, frozenset[KeyState]] = {
    KeyState.RELAYED: frozenset({KeyState.DELIVERED, KeyState.EXPIRED, KeyState.REVOKED}),
    KeyState.DELIVERED: frozenset({KeyState.DESTROYED}),
    KeyState.EXPIRED: frozenset({KeyState.DESTROYED}),
    KeyState.REVOKED: frozenset({KeyState.DESTROYED}),
    KeyState.DESTROYED: frozenset(),
}


def check_transition(key_id: str, old: KeyState, new: KeyState) -> None:
    if new not in ALLOWED[old]:
        raise LifecycleError(f"key {key_id}: {old.value} -> {new.value} is not allowed")
