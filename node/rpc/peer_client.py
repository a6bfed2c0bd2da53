"""Client side of a neighbour: one channel per neighbour, Link and Relay calls."""

from __future__ import annotations

import grpc
from qkdnet_proto.v1 import node_pb2 as pb
from qkdnet_proto.v1 import node_pb2_grpc as rpc

from node.link_runtime import FrameForPeer
from node.rpc.convert import frame_to_pb, inventory_from_pb, inventory_to_pb, items_to_pb
from node.rpc.streams import StreamBroken, StreamMux
from node.trusted_node import RelayError, RelayItem

CHANNEL_OPTIONS = [("grpc.max_send_message_length", 512 << 20), ("grpc.max_receive_message_length", 512 << 20)]


class GrpcPeer:
    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._link = rpc.LinkStub(self._channel)
        relay = rpc.RelayStub(self._channel)
        self._forward = StreamMux(relay.ForwardStream, pb.ForwardRequests)
        self._abort = relay.Abort

    async def deliver_frame(self, frame: FrameForPeer) -> tuple[list[bytes], bool]:
        reply = await self._link.DeliverFrame(frame_to_pb(frame), timeout=120)
        return list(reply.envelopes), reply.done

    async def exchange(self, link_id: str, frame_id: int, envelopes: list[bytes]) -> tuple[list[bytes], bool]:
        reply = await self._link.Exchange(pb.ClassicalBatch(link_id=link_id, frame_id=frame_id, envelopes=envelopes),
                                          timeout=120)
        return list(reply.envelopes), reply.done

    async def reconcile(self, link_id: str, inventory: dict) -> dict:
        reply = await self._link.ReconcilePool(inventory_to_pb(link_id, inventory), timeout=30)
        return inventory_from_pb(reply)

    async def forward(self, path: list[str], hop: int, items: list[RelayItem]) -> None:
        try:
            reply = await self._forward.call(pb.ForwardRequest(path=path, hop=hop, items=items_to_pb(items)), 60)
        except StreamBroken as exc:
            raise RelayError(f"{self.address}: {exc}") from None
        if not reply.ok:
            raise RelayError(reply.reason)

    async def abort(self, path: list[str], hop: int, key_ids: list[str]) -> None:
        reply = await self._abort(pb.AbortRequest(path=path, hop=hop, key_ids=key_ids), timeout=30)
        if not reply.ok:
            raise RelayError(reply.reason)

    async def close(self) -> None:
        await self._forward.close()
        await self._channel.close()
