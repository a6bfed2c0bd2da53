"""Conversions between protobuf messages and domain objects, both ways, in one place.

Layer: RPC adapter. The node's servicers and peer clients and the orchestrator's node client
all encode and decode here, so a field added to a domain type is added to the wire once.
Malformed input is an ``InvalidRequest``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from qkdnet.node.errors import InvalidRequest, NodeError
from qkdnet.node.keystore.link_pool import LinkKeyId
from qkdnet.node.link_runtime import FrameForPeer, Resync
from qkdnet.node.qkd.authentication import AuthKeyRange
from qkdnet.node.qkd.errors import ParameterError
from qkdnet.node.relay.result import RelayFailure, RelayItem, RelayResult, Route
from qkdnet.node.routing.live_state import LinkState, RoutingState
from qkdnet.node.settings import (
    CLOCK_MODES,
    ClockMode,
    KmeSettings,
    LinkSettings,
    NodeSettings,
    Role,
    params_from_json,
    params_to_json,
    processing_from_json,
    processing_to_json,
)
from qkdnet.node.status import LinkStatus, NodeStatus
from qkdnet_proto.v1 import node_pb2 as pb

Inventory = dict[tuple[str, int], np.ndarray]


# -- link engine ----------------------------------------------------------------------------
def frame_to_pb(frame: FrameForPeer) -> pb.QuantumFrame:
    return pb.QuantumFrame(**dataclasses.asdict(frame))


def frame_from_pb(msg: pb.QuantumFrame) -> FrameForPeer:
    return FrameForPeer(msg.link_id, msg.frame_id, msg.n_pulses, msg.count, msg.slot_gaps, msg.bases,
                        msg.bits, msg.double_clicks, msg.end_s)


def inventory_to_pb(link_id: str, inventory: Inventory) -> pb.PoolInventory:
    return pb.PoolInventory(link_id=link_id, chunks=[
        pb.PoolChunk(half=half, frame_id=frame_id, unused=np.packbits(mask).tobytes(), size=mask.size)
        for (half, frame_id), mask in inventory.items()])


def inventory_from_pb(msg: pb.PoolInventory) -> Inventory:
    return {(c.half, c.frame_id): np.unpackbits(np.frombuffer(c.unused, np.uint8), count=c.size).astype(bool)
            for c in msg.chunks}


def resync_to_pb(resync: Resync) -> pb.AuthResync:
    return pb.AuthResync(link_id=resync.link_id, frames=list(resync.frames), held=[
        pb.AuthUnits(origin=r.origin, first=r.first, units=r.units) for r in resync.auth_units])


def resync_from_pb(msg: pb.AuthResync) -> Resync:
    return Resync(msg.link_id, tuple(AuthKeyRange(r.origin, r.first, r.units) for r in msg.held), tuple(msg.frames))


# -- relay ------------------------------------------------------------------------------------
def items_to_pb(items: list[RelayItem]) -> list[pb.RelayItem]:
    return [pb.RelayItem(key_id=i.key_id, ciphertext=i.ciphertext,
                         link_key=pb.LinkKeyId(frame_id=i.link_key.frame_id, half=i.link_key.half,
                                               start=i.link_key.start, length=i.link_key.length),
                         master_sae=i.master_sae, slave_sae=i.slave_sae, share_index=i.share_index,
                         share_count=i.share_count) for i in items]


def items_from_pb(items: Iterable[pb.RelayItem]) -> list[RelayItem]:
    out = []
    for i in items:
        k = i.link_key
        out.append(RelayItem(i.key_id, i.ciphertext, LinkKeyId(k.frame_id, k.half, k.start, k.length),
                             i.master_sae, i.slave_sae, i.share_index, i.share_count))
    return out


def routes_to_pb(paths: Iterable[Sequence[str]]) -> list[pb.Route]:
    return [pb.Route(path=list(p)) for p in paths]


def route_from_pb(routes: Iterable[pb.Route]) -> Route:
    return Route.of(r.path for r in routes)


def failure_to_pb(failure: RelayFailure) -> pb.Failure:
    hop = failure.failed_hop or ("", "")
    return pb.Failure(kind=failure.kind, message=failure.message, failed_from=hop[0], failed_to=hop[1])


def failure_from_pb(msg: pb.Failure) -> RelayFailure:
    hop = (msg.failed_from, msg.failed_to) if msg.failed_from else None
    return RelayFailure(msg.kind, msg.message, hop)


def error_to_pb(error: NodeError) -> pb.Failure:
    return failure_to_pb(RelayFailure.of(error))


def result_to_pb(result: RelayResult) -> pb.RelayResult:
    msg = pb.RelayResult(source=result.source, destination=result.destination, paths=routes_to_pb(result.paths),
                         key_ids=list(result.key_ids), latency_s=result.latency_s,
                         link_bits_consumed=result.link_bits_consumed)
    if result.failure is not None:
        msg.failure.CopyFrom(failure_to_pb(result.failure))
    return msg


def result_from_pb(msg: pb.RelayResult) -> RelayResult:
    failure = failure_from_pb(msg.failure) if msg.HasField("failure") else None
    return RelayResult(msg.source, msg.destination, route_from_pb(msg.paths).paths, tuple(msg.key_ids), msg.latency_s,
                       msg.link_bits_consumed, outcome="failed" if failure else "delivered", failure=failure)


# -- status -----------------------------------------------------------------------------------
_LINK_FIELDS = [f.name for f in dataclasses.fields(LinkStatus)]


def status_to_pb(status: NodeStatus) -> pb.NodeStatus:
    return pb.NodeStatus(name=status.name, links=[pb.LinkStatus(**dataclasses.asdict(link)) for link in status.links],
                         app_keys=status.app_keys, relays_forwarded=status.relays_forwarded, kme_url=status.kme_url,
                         metrics_url=status.metrics_url,
                         keys_read_whole=status.keys_read_whole, shares_read=status.shares_read)


def status_from_pb(msg: pb.NodeStatus) -> NodeStatus:
    links = tuple(LinkStatus(**{name: getattr(link, name) for name in _LINK_FIELDS}) for link in msg.links)
    return NodeStatus(name=msg.name, links=links, app_keys=msg.app_keys, relays_forwarded=msg.relays_forwarded,
                      keys_read_whole=msg.keys_read_whole, shares_read=msg.shares_read, kme_url=msg.kme_url,
                      metrics_url=msg.metrics_url)


# -- routing state ----------------------------------------------------------------------------
def routing_to_pb(state: RoutingState) -> pb.RoutingState:
    return pb.RoutingState(
        strategy=state.strategy, strategy_options_json=json.dumps(state.strategy_options, sort_keys=True),
        alive=list(state.alive), qber_threshold=state.qber_threshold,
        links=[pb.LinkView(u=l.u, v=l.v, up=l.up, aborted=l.aborted, state=l.state, length_km=l.length_km,
                           pool_capacity_bits=l.pool_capacity_bits, pool_bits=l.pool_bits,
                           sendable_u_bits=l.sendable_bits[l.u], sendable_v_bits=l.sendable_bits[l.v],
                           secret_bits_per_s=l.secret_bits_per_s, qber=l.qber, emulated_seconds=l.emulated_seconds)
               for l in state.links])


def routing_from_pb(msg: pb.RoutingState) -> RoutingState:
    try:
        options = json.loads(msg.strategy_options_json) if msg.strategy_options_json else {}
    except json.JSONDecodeError:
        raise InvalidRequest("routing strategy options are not valid JSON") from None
    if not isinstance(options, dict):
        raise InvalidRequest("routing strategy options must be a JSON object")
    links = tuple(LinkState(l.u, l.v, l.length_km, l.pool_capacity_bits, l.up, l.state, l.pool_bits,
                            l.secret_bits_per_s, l.qber, l.emulated_seconds, l.aborted,
                            {l.u: l.sendable_u_bits, l.v: l.sendable_v_bits}) for l in msg.links)
    return RoutingState(msg.strategy or RoutingState.strategy, options, tuple(msg.alive), links,
                        msg.qber_threshold or RoutingState.qber_threshold)


# -- configuration ----------------------------------------------------------------------------
def link_settings_to_pb(link: LinkSettings) -> pb.LinkConfig:
    return pb.LinkConfig(link_id=link.link_id, peer=link.peer, peer_address=link.peer_address, role=link.role.value,
                         params_json=params_to_json(link.params), processing_json=processing_to_json(link.processing),
                         bootstrap_secret=link.bootstrap_secret, pool_capacity_bits=link.pool_capacity_bits,
                         seed=link.seed)


def link_settings_from_pb(msg: pb.LinkConfig) -> LinkSettings:
    try:
        role = Role(msg.role)
    except ValueError:
        raise InvalidRequest(f"link {msg.link_id}: role must be transmitter or receiver") from None
    try:
        params, processing = params_from_json(msg.params_json), processing_from_json(msg.processing_json)
    except (ParameterError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"link {msg.link_id}: {exc}") from None
    return LinkSettings(link_id=msg.link_id, peer=msg.peer, peer_address=msg.peer_address, role=role, params=params,
                        processing=processing, bootstrap_secret=msg.bootstrap_secret,
                        pool_capacity_bits=msg.pool_capacity_bits, seed=msg.seed)


_KME_OPTIONAL = ("key_ttl_s", "max_keys", "max_key_per_request", "default_key_size", "max_key_size",
                 "min_key_size")


def kme_to_pb(kme: KmeSettings) -> pb.KmeConfig:
    return pb.KmeConfig(**dataclasses.asdict(kme))


def kme_from_pb(msg: pb.KmeConfig) -> KmeSettings:
    given: dict[str, Any] = {name: getattr(msg, name) for name in _KME_OPTIONAL if msg.HasField(name)}
    return KmeSettings(**given)


def settings_to_pb(settings: NodeSettings) -> pb.NodeConfig:
    msg = pb.NodeConfig(name=settings.name, links=[link_settings_to_pb(l) for l in settings.links],
                        time_scale=settings.time_scale, sae_nodes=settings.sae_nodes,
                        routing=routing_to_pb(settings.routing), fresh_start=settings.fresh_start,
                        clock=settings.clock.value)
    if settings.kme is not None:
        msg.kme.CopyFrom(kme_to_pb(settings.kme))
    return msg


def settings_from_pb(msg: pb.NodeConfig) -> NodeSettings:
    clock = msg.clock or ClockMode.REALTIME.value
    if clock not in CLOCK_MODES:
        raise InvalidRequest(f"unknown clock mode {clock!r}; expected one of {', '.join(CLOCK_MODES)}")
    return NodeSettings(clock=ClockMode(clock), name=msg.name, links=tuple(link_settings_from_pb(l) for l in msg.links),
                        time_scale=msg.time_scale, sae_nodes=dict(msg.sae_nodes),
                        routing=routing_from_pb(msg.routing), kme=kme_from_pb(msg.kme) if msg.HasField("kme") else None,
                        fresh_start=msg.fresh_start)
