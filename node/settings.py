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
class NodeSettings:
    name: str
    links: tuple[LinkSettings, ...]
    time_scale: float  # emulated seconds per wall second; 0 = as fast as possible


def processing_from_json(text: str) -> ProcessingParams:
    data = json.loads(text) if text else {}
    return ProcessingParams(**data)


def params_from_json(text: str) -> LinkParams:
    return link_params_from_mapping(json.loads(text) if text else {})


def processing_to_json(processing: ProcessingParams) -> str:
    return json.dumps(dataclasses.asdict(processing))


def params_to_json(params: LinkParams) -> str:
    return json.dumps(dataclasses.asdict(params))
