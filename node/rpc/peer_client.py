"""Client side of a neighbour: one channel per neighbour, Link and Relay calls.

Layer: RPC adapter. Failures come back as the node errors the neighbour raised (a relay error
keeps its failed hop); a neighbour that cannot be reached is ``Unavailable``.
"""

from __future__ import annotations

import asyncio

import grpc

from qkdnet.node.errors import RelayError, Unavailable
from qkdnet.node.link_runtime import FrameForPeer, Resync
from qkdnet.node.relay.result import Path, RelayItem
from qkdnet.node.rpc import convert
from qkdnet.node.rpc.errors import node_error
from qkdnet.node.rpc.streams import StreamBroken, StreamMux
from qkdnet.node.rpc.tls import TlsIdentity, secure_channel
from qkdnet_proto.v1 import node_pb2 as pb
from qkdnet_proto.v1 import node_pb2_grpc as rpc

CHANNEL_OPTIONS = [("grpc.max_send_message_length", 512 << 20), ("grpc.max_receive_message_length", 512 << 20),
                   # A neighbour that restarts is back within seconds: try it again every 2 s at most,
                   # not after gRPC's default backoff, which grows to two minutes. (Not the *minimum*
                   # backoff: gRPC also takes it as the deadline of a connection attempt.)
                   ("grpc.initial_reconnect_backoff_ms", 500), ("grpc.max_reconnect_backoff_ms", 2000)]
FRAME_TIMEOUT_S = 120.0
RECONCILE_TIMEOUT_S = 30.0
FORWARD_TIMEOUT_S = 60.0
ABORT_TIMEOUT_S = 30.0
# How long a call waits for the neighbour's channel to reconnect before it fails: longer than one
# reconnect backoff (above), far shorter than any call's own deadline, so a neighbour that has just
# restarted takes the next frame or relay (its link does not flap to "down") while one that is
# gone fails them quickly.
RECONNECT_WAIT_S = 5.0


class GrpcPeer:
    def __init__(self, name: str, address: str, identity: TlsIdentity | None) -> None:
        """``identity``: this node's, presented to the neighbour ``name`` over mutual TLS (None:
        a plaintext channel, for in-process tests only)."""
        self.name = name
        self.address = address
        self._channel = (secure_channel(address, identity, name, CHANNEL_OPTIONS) if identity is not None
                         else grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS))
        self._link = rpc.LinkStub(self._channel)
        relay = rpc.RelayStub(self._channel)
        self._forward = StreamMux(relay.ForwardStream, pb.ForwardRequests)
        self._abort = relay.Abort

    async def deliver_frame(self, frame: FrameForPeer) -> tuple[list[bytes], bool]:
        await self._reconnected()
        try:
            reply = await self._link.DeliverFrame(convert.frame_to_pb(frame), timeout=FRAME_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise node_error(exc, self.address) from None
        return list(reply.envelopes), reply.done

    async def exchange(self, link_id: str, frame_id: int, envelopes: list[bytes]) -> tuple[list[bytes], bool]:
        await self._reconnected()
        try:
            reply = await self._link.Exchange(pb.ClassicalBatch(link_id=link_id, frame_id=frame_id,
                                                                envelopes=envelopes), timeout=FRAME_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise node_error(exc, self.address) from None
        return list(reply.envelopes), reply.done

    async def reconcile(self, link_id: str, inventory: convert.Inventory) -> convert.Inventory:
        await self._reconnected()
        try:
            reply = await self._link.ReconcilePool(convert.inventory_to_pb(link_id, inventory),
                                                   timeout=RECONCILE_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise node_error(exc, self.address) from None
        return convert.inventory_from_pb(reply)

    async def resync(self, request: Resync) -> Resync:
        await self._reconnected()
        try:
            reply = await self._link.Resync(convert.resync_to_pb(request), timeout=RECONCILE_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise node_error(exc, self.address) from None
        return convert.resync_from_pb(reply)

    async def forward(self, path: Path, hop: int, items: list[RelayItem]) -> None:
        request = pb.ForwardRequest(path=path, hop=hop, items=convert.items_to_pb(items))
        try:
            if not self._forward.is_open:  # an open stream is a connected channel
                await self._reconnected()
            reply = await self._forward.call(request, FORWARD_TIMEOUT_S)
        except (StreamBroken, Unavailable) as exc:
            raise RelayError(str(exc) if isinstance(exc, Unavailable) else f"{self.address}: {exc}") from None
        if reply.HasField("failure"):
            raise convert.failure_from_pb(reply.failure).to_error()

    async def _reconnected(self) -> None:
        """Wait (a little) for the channel to be connected before a call goes out on it.

        A call made while the channel waits out a reconnect backoff (the neighbour restarted a
        moment ago) fails at once; waiting for the next attempt lets it through.
        """
        if self._channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY:
            return
        try:
            async with asyncio.timeout(RECONNECT_WAIT_S):
                await self._channel.channel_ready()
        except TimeoutError:
            raise Unavailable(f"{self.address}: unreachable (not connected within {RECONNECT_WAIT_S:g} s)") from None

    async def abort(self, path: Path, hop: int, key_ids: list[str]) -> None:
        await self._reconnected()
        try:
            reply = await self._abort(pb.AbortRequest(path=path, hop=hop, key_ids=key_ids), timeout=ABORT_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise node_error(exc, self.address) from None
        if reply.HasField("failure"):
            raise convert.failure_from_pb(reply.failure).to_error()

    async def close(self) -> None:
        await self._forward.close()
        await self._channel.close()
