"""Who may call what: identities on the gRPC planes and the one table of what each may call.

Layer: node domain (no grpc). Every gRPC channel is mutual TLS under the network's CA; an identity
is the common name of the caller's certificate. The controller (the orchestrator) calls Control
and the health service (which a node may also ask of itself: a container's health probe runs
with the node's own identity); a node calls Link and Relay, and only as the neighbour on the link it
names (``check_neighbour``, checked by the node where a call names its link or path). The RPC
adapter's interceptor applies ``PLANES`` before any servicer runs; servicers never look at
certificates.
"""

from __future__ import annotations

import contextvars

from qkdnet.node.errors import PermissionDenied, Unauthenticated

CONTROLLER = "qkdnet:controller"  # a ":" keeps it apart from every node name
MONITOR = "qkdnet:monitor"  # a scraper (Prometheus): may read /metrics, nothing else
METRICS = "qkdnet.metrics"  # the HTTP /metrics endpoint, as a plane of its own

# gRPC service (or the HTTP metrics plane) -> who may call it: "controller", "controller or self",
# "controller or monitor", or "neighbour" (a configured peer).
PLANES: dict[str, str] = {
    "qkdnet.v1.Control": "controller",
    "grpc.health.v1.Health": "controller or self",
    "qkdnet.v1.Link": "neighbour",
    "qkdnet.v1.Relay": "neighbour",
    METRICS: "controller or monitor",
}

caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")


def current_caller() -> str:
    """The identity of the call being served ('' outside a served call, e.g. in-process tests)."""
    return caller.get()


def check_neighbour(expected: str, what: str) -> None:
    """A call naming a link or path hop must come from the neighbour at its other end."""
    identity = caller.get()
    if identity and identity != expected:
        raise PermissionDenied(f"{identity} may not {what}: that is {expected}'s to do")


def authorise(service: str, identity: str, neighbours: frozenset[str], me: str = "") -> None:
    """Raise unless ``identity`` may call methods of ``service`` (the table above) at node ``me``."""
    if not identity:
        raise Unauthenticated("no client certificate")
    plane = PLANES.get(service)
    if plane in ("controller", "controller or self", "controller or monitor") and identity == CONTROLLER:
        return
    if plane == "controller or self" and me and identity == me:
        return
    if plane == "controller or monitor" and identity == MONITOR:
        return
    if plane == "neighbour" and identity in neighbours:
        return
    raise PermissionDenied(f"{identity} may not call {service}")
