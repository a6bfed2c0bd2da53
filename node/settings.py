"""Node configuration as frozen dataclasses, decoded from the Control.Configure message."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from node.qkd.params import LinkParams, ProcessingParams, link_params_from_mapping


@dataclass(frozen=True)
class LinkSettings:
    link_id: str
    peer: str
    peer_address: str
    role: str  # "transmitter" | "receiver"
    params: LinkParams
    processing: ProcessingParams
    bootstrap_secret: bytes = dataclasses.field(repr=False)
    pool_capacity_bits: int
    seed: int


@dataclass(frozen=True)
class KmeSettings:
    """The node's ETSI GS QKD 014 endpoint and its key-delivery limits."""
    host: str
    port: int
    cert_file: str
    key_file: str
    ca_file: str
    key_ttl_s: float = 3600.0
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
    routes: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # destination -> path
    kme: KmeSettings | None = None


def processing_from_json(text: str) -> ProcessingParams:
    data = json.loads(text) if text else {}
    return ProcessingParams(**data)


def params_from_json(text: str) -> LinkParams:
    return link_params_from_mapping(json.loads(text) if text else {})


def processing_to_json(processing: ProcessingParams) -> str:
    return json.dumps(dataclasses.asdict(processing))


def params_to_json(params: LinkParams) -> str:
    return json.dumps(dataclasses.asdict(params))
