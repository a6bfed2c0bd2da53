"""Conversions between protobuf messages and node domain objects, in one place."""

from __future__ import annotations

import numpy as np
from qkdnet_proto.v1 import node_pb2 as pb

from node.link_runtime import FrameForPeer
from node.settings import KmeSettings, LinkSettings, NodeSettings, params_from_json, processing_from_json
from node.trusted_node import RelayItem


def frame_to_pb(frame: FrameForPeer) -> pb.QuantumFrame:
    return pb.QuantumFrame(link_id=frame.link_id, frame_id=frame.frame_id, n_pulses=frame.n_pulses,
                           count=frame.count, slot_gaps=frame.slot_gaps, bases=frame.bases, bits=frame.bits,
                           double_clicks=frame.double_clicks)


def frame_from_pb(msg: pb.QuantumFrame) -> FrameForPeer:
    return FrameForPeer(msg.link_id, msg.frame_id, msg.n_pulses, msg.count, msg.slot_gaps, msg.bases,
                        msg.bits, msg.double_clicks)


def items_to_pb(items: list[RelayItem]) -> list[pb.RelayItem]:
    return [pb.RelayItem(key_id=i.key_id, ciphertext=i.ciphertext, link_key_id=i.link_key_id,
                         master_sae=i.master_sae, slave_sae=i.slave_sae, share_index=i.share_index,
                         share_count=i.share_count) for i in items]


def items_from_pb(items) -> list[RelayItem]:
    return [RelayItem(i.key_id, i.ciphertext, i.link_key_id, i.master_sae, i.slave_sae, i.share_index, i.share_count)
            for i in items]


def inventory_to_pb(link_id: str, inventory: dict) -> pb.PoolInventory:
    return pb.PoolInventory(link_id=link_id, chunks=[
        pb.PoolChunk(half=half, frame_id=frame_id, unused=np.packbits(mask).tobytes(), size=mask.size)
        for (half, frame_id), mask in inventory.items()])


def inventory_from_pb(msg: pb.PoolInventory) -> dict:
    return {(c.half, c.frame_id): np.unpackbits(np.frombuffer(c.unused, np.uint8), count=c.size).astype(bool)
            for c in msg.chunks}


def link_settings_from_pb(l: pb.LinkConfig) -> LinkSettings:
    if l.role not in ("transmitter", "receiver"):
        raise ValueError(f"link {l.link_id}: role must be transmitter or receiver")
    return LinkSettings(link_id=l.link_id, peer=l.peer, peer_address=l.peer_address, role=l.role,
                        params=params_from_json(l.params_json), processing=processing_from_json(l.processing_json),
                        bootstrap_secret=l.bootstrap_secret, pool_capacity_bits=l.pool_capacity_bits, seed=l.seed)


def settings_from_pb(msg: pb.NodeConfig) -> NodeSettings:
    links = tuple(link_settings_from_pb(l) for l in msg.links)
    kme = None
    if msg.HasField("kme"):
        k = msg.kme
        kme = KmeSettings(host=k.host or "127.0.0.1", port=k.port, cert_file=k.cert_file, key_file=k.key_file,
                          ca_file=k.ca_file, key_ttl_s=k.key_ttl_s, max_keys=k.max_keys or 100_000,
                          max_key_per_request=k.max_key_per_request or 128,
                          default_key_size=k.default_key_size or 256, max_key_size=k.max_key_size or 8192,
                          min_key_size=k.min_key_size or 8)
        if not (kme.cert_file and kme.key_file and kme.ca_file):
            raise ValueError("kme needs cert_file, key_file and ca_file")
    routes = {tuple(r.path)[-1]: tuple(r.path) for r in msg.routes if len(r.path) >= 2}
    return NodeSettings(name=msg.name, links=links, time_scale=msg.time_scale, sae_nodes=dict(msg.sae_nodes),
                        routes=routes, kme=kme)
