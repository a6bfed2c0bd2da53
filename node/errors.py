"""The node's exceptions: one hierarchy, and one table of what each means to a caller.

Layer: node domain; no grpc, no aiohttp. Every error a node reports derives from ``NodeError``
(a ``QkdnetError``, the root the orchestrator's errors share too) through one of five kinds:
invalid request, not found, conflict, unavailable, unauthenticated, permission denied. ``STATUS`` maps each kind to its gRPC status code name and its HTTP status under ETSI GS QKD 014
(which knows only 400, 401 and 503); the RPC adapter, the KME and the clients all read it. A
client rebuilds the exact class from its name (``error_class``), so a ``RelayError`` raised three
hops away arrives as a ``RelayError`` with its failed hop.
"""

from __future__ import annotations

from dataclasses import dataclass

_KINDS: dict[str, type[NodeError]] = {}


class QkdnetError(Exception):
    """Base of every qkdnet error: its message is one line a user can read (the CLI prints it)."""


class NodeError(QkdnetError):
    """Base of every error a node reports to a caller."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        _KINDS[cls.__name__] = cls


class InvalidRequest(NodeError):
    """The caller is wrong: a malformed argument or message; retrying will not help."""


class NotFound(NodeError):
    """The request names a link, peer or key this node does not have."""


class Conflict(NodeError):
    """The request contradicts the node's state (a key ID already held, a forbidden transition)."""


class Unavailable(NodeError):
    """A sound request that cannot be served now: no link key, a link out of service, a full store."""


class Unauthenticated(NodeError):
    """The caller did not prove who it is."""


class PermissionDenied(NodeError):
    """The caller is known but may not make this call (on this link, for this key)."""


@dataclass(frozen=True)
class Status:
    grpc_code: str  # a grpc.StatusCode member name
    http_status: int  # as ETSI GS QKD 014 answers it


STATUS: dict[type[NodeError], Status] = {
    InvalidRequest: Status("INVALID_ARGUMENT", 400),
    NotFound: Status("NOT_FOUND", 400),
    Conflict: Status("FAILED_PRECONDITION", 400),
    Unavailable: Status("UNAVAILABLE", 503),
    Unauthenticated: Status("UNAUTHENTICATED", 401),
    PermissionDenied: Status("PERMISSION_DENIED", 401),  # ETSI GS QKD 014 has no 403
    NodeError: Status("INTERNAL", 500),
}
_BY_CODE = {status.grpc_code: kind for kind, status in STATUS.items()}


def status_of(error: NodeError) -> Status:
    """The wire status of an error: that of the nearest kind it derives from."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return STATUS[NodeError]


def error_class(kind: str, grpc_code: str = "") -> type[NodeError]:
    """Client side: the class named ``kind``, else the kind of ``grpc_code``, else ``NodeError``."""
    return _KINDS.get(kind) or _BY_CODE.get(grpc_code) or NodeError


# -- specific errors ----------------------------------------------------------------------
class RelayError(Unavailable):
    """A relay could not complete; every link key it consumed is accounted as discarded.

    ``failed_hop`` names the link at fault (sender, receiver) when one is known, so a router
    can avoid it on the retry.
    """

    def __init__(self, message: str, failed_hop: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.failed_hop = failed_hop


class NoKeyPath(Unavailable):
    """No usable path between two nodes (like networkx.NetworkXNoPath)."""


class KeyPoolError(NodeError):
    """A link-key request a pool cannot serve. ``taken_bits``: pads consumed before the failure."""

    taken_bits: int = 0


class LinkKeyShortage(KeyPoolError, Unavailable):
    """The pool does not hold enough sendable link key (now, or within the wait allowed)."""


class BadLinkKey(KeyPoolError, InvalidRequest):
    """A link-key ID that is malformed, unknown, of the wrong half, or already used."""


class StoreError(NodeError):
    """A request the durable store refuses or cannot carry out; nothing was changed."""


class StoreFull(StoreError, Unavailable):
    """Taking these keys would exceed the store's maximum key count."""


class StoreFailure(StoreError, Unavailable):
    """The database itself failed (disk full, I/O error); the transaction was rolled back."""


class DuplicateKey(StoreError, Conflict):
    """A key ID is already held (or was withdrawn before it arrived)."""


class KeyNotAvailable(StoreError, NotFound):
    """A key ID that is unknown, not the caller's, or no longer deliverable."""


class LifecycleError(Conflict):
    """A key was asked to make a transition its state does not allow."""

