"""Node configuration as frozen dataclasses (decoded from Control.Configure by ``node.rpc.convert``).

Layer: node domain. ``Role`` is the one place that says what a link end's role implies: the
transmitter end is Alice (owns the source and the channel physics) and sends with half "a" of
every block; the receiver end is Bob and sends with half "b". ``KmeSettings`` holds the one set
of KME defaults.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import StrEnum

from qkdnet.node.qkd.params import LinkParams, ProcessingParams, link_params_from_mapping
from qkdnet.node.routing.live_state import RoutingState


class ClockMode(StrEnum):
    """How a network's emulated time runs: ``realtime`` is wall time times the time scale, and a
    slow host makes links produce less key; ``virtual`` is one clock the controller advances
    once every link has produced its key up to it (``node.virtual_clock``), so results do not
    depend on the host."""

    REALTIME = "realtime"
    VIRTUAL = "virtual"


CLOCK_MODES = tuple(m.value for m in ClockMode)


class Role(StrEnum):
    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"

    @property
    def qkd_role(self) -> str:
        """The BB84 party this end plays (``node.qkd`` calls them alice and bob)."""
        return "alice" if self is Role.TRANSMITTER else "bob"

    @property
    def send_half(self) -> str:
        """The half of every block's key this end sends with (the peer sends with the other)."""
        return "a" if self is Role.TRANSMITTER else "b"


@dataclass(frozen=True)
class LinkSettings:
    link_id: str
    peer: str
    peer_address: str
    role: Role
    params: LinkParams
    processing: ProcessingParams
    bootstrap_secret: bytes = dataclasses.field(repr=False)
    pool_capacity_bits: int
    seed: int


@dataclass(frozen=True)
class KmeSettings:
    """The node's ETSI GS QKD 014 key-delivery limits (the defaults live here only). Where the KME
    listens and its certificate are the node's own, given when it starts (``node.server``)."""

    key_ttl_s: float = 3600.0  # undelivered keys expire after this long; 0 = never
    max_keys: int = 100_000
    max_key_per_request: int = 128
    default_key_size: int = 256
    max_key_size: int = 8192
    min_key_size: int = 8


@dataclass(frozen=True)
class NodeSettings:
    name: str
    links: tuple[LinkSettings, ...]
    time_scale: float  # emulated seconds per wall second; 0 = as fast as possible
    sae_nodes: dict[str, str] = dataclasses.field(default_factory=dict)  # SAE ID -> node
    routing: RoutingState = dataclasses.field(default_factory=RoutingState)  # for application key requests
    kme: KmeSettings | None = None
    # Start from empty stores: every key, relay in flight, link pool and channel fault this node
    # kept from an earlier network is destroyed first (an experiment's run on attached nodes).
    fresh_start: bool = False
    clock: ClockMode = ClockMode.REALTIME


def processing_from_json(text: str) -> ProcessingParams:
    data = json.loads(text) if text else {}
    return ProcessingParams(**data)


def params_from_json(text: str) -> LinkParams:
    return link_params_from_mapping(json.loads(text) if text else {})


def processing_to_json(processing: ProcessingParams) -> str:
    return json.dumps(dataclasses.asdict(processing))


def params_to_json(params: LinkParams) -> str:
    return json.dumps(dataclasses.asdict(params))
