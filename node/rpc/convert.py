"""Conversions between protobuf messages and node domain objects, in one place."""

from __future__ import annotations

from qkdnet_proto.v1 import node_pb2 as pb

from node.link_runtime import FrameForPeer
from node.settings import LinkSettings, NodeSettings, params_from_json, processing_from_json
from node.trusted_node import RelayItem


def frame_to_pb(frame: FrameForPeer) -> pb.QuantumFrame:
    return pb.QuantumFrame(link_id=frame.link_id, frame_id=frame.frame_id, n_pulses=frame.n_pulses,
                           count=frame.count, slot_gaps=frame.slot_gaps, bases=frame.bases, bits=frame.bits,
                           double_clicks=frame.double_clicks)


def frame_from_pb(msg: pb.QuantumFrame) -> FrameForPeer:
    return FrameForPeer(msg.link_id, msg.frame_id, msg.n_pulses, msg.count, msg.slot_gaps, msg.bases,
                        msg.bits, msg.double_clicks)


def items_to_pb(items: list[RelayItem]) -> list[pb.RelayItem]:
    return [pb.RelayItem(key_id=i.key_id, ciphertext=i.ciphertext, link_key_id=i.link_key_id) for i in items]


def items_from_pb(items) -> list[RelayItem]:
    return [RelayItem(i.key_id, i.ciphertext, i.link_key_id) for i in items]


def settings_from_pb(msg: pb.NodeConfig) -> NodeSettings:
    links = tuple(LinkSettings(link_id=l.link_id, peer=l.peer, peer_address=l.peer_address, role=l.role,
                               params=params_from_json(l.params_json),
                               processing=processing_from_json(l.processing_json),
                               bootstrap_secret=l.bootstrap_secret, pool_capacity_bits=l.pool_capacity_bits,
                               seed=l.seed)
                  for l in msg.links)
    for link in links:
        if link.role not in ("transmitter", "receiver"):
            raise ValueError(f"link {link.link_id}: role must be transmitter or receiver")
    return NodeSettings(name=msg.name, links=links, time_scale=msg.time_scale)
