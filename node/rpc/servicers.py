"""Servicers: decode, one awaited call on a domain object, encode. Nothing else.

Layer: RPC adapter. Errors are not caught here: ``node.rpc.errors.NodeErrorInterceptor`` maps
every ``NodeError`` to its status code. The multiplexed streams answer each call in its own
reply, so a failed call there becomes that reply's ``failure``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

from qkdnet.node.errors import InvalidRequest, NodeError
from qkdnet.node.impairment import Impairment
from qkdnet.node.rpc import convert
from qkdnet.node.rpc.streams import serve_multiplexed
from qkdnet.node.trusted_node import TrustedNode
from qkdnet_proto.v1 import node_pb2 as pb
from qkdnet_proto.v1 import node_pb2_grpc as rpc

Context = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)


class Forwarder(Protocol):
    """What the relay servicer serves (``node.relay.engine.RelayEngine``)."""

    async def forward(self, path: tuple[str, ...], hop: int, items: list[Any]) -> None: ...

    async def abort(self, path: tuple[str, ...], hop: int, key_ids: list[str]) -> None: ...


class Kme(Protocol):
    """The node's ETSI GS QKD 014 endpoint as Control sees it (``node.server.KmeHolder``)."""

    url: str

    async def start(self, settings: Any) -> None: ...


class LinkServicer(rpc.LinkServicer):
    def __init__(self, node: TrustedNode) -> None:
        self.node = node

    async def DeliverFrame(self, request: pb.QuantumFrame, context: Context) -> pb.ClassicalBatch:
        envelopes = await self.node.on_frame(convert.frame_from_pb(request))
        return pb.ClassicalBatch(link_id=request.link_id, frame_id=request.frame_id, envelopes=envelopes)

    async def Exchange(self, request: pb.ClassicalBatch, context: Context) -> pb.ClassicalBatch:
        envelopes, done = await self.node.on_exchange(request.link_id, request.frame_id, list(request.envelopes))
        return pb.ClassicalBatch(link_id=request.link_id, frame_id=request.frame_id, envelopes=envelopes, done=done)

    async def ReconcilePool(self, request: pb.PoolInventory, context: Context) -> pb.PoolInventory:
        kept = await self.node.on_reconcile(request.link_id, convert.inventory_from_pb(request))
        return convert.inventory_to_pb(request.link_id, kept)

    async def Resync(self, request: pb.AuthResync, context: Context) -> pb.AuthResync:
        return convert.resync_to_pb(await self.node.on_resync(convert.resync_from_pb(request)))


class RelayServicer(rpc.RelayServicer):
    def __init__(self, relay: Forwarder) -> None:
        self.relay = relay

    async def ForwardStream(self, request_iterator: AsyncIterator[pb.ForwardRequests],
                            context: Context) -> AsyncIterator[pb.ForwardReplies]:
        async for message in serve_multiplexed(request_iterator, self._forward, pb.ForwardReplies):
            yield message

    async def Abort(self, request: pb.AbortRequest, context: Context) -> pb.ForwardReply:
        try:
            await self.relay.abort(tuple(request.path), request.hop, list(request.key_ids))
        except NodeError as exc:
            return pb.ForwardReply(failure=convert.error_to_pb(exc))
        return pb.ForwardReply()

    async def _forward(self, request: pb.ForwardRequest) -> pb.ForwardReply:
        try:
            await self.relay.forward(tuple(request.path), request.hop, convert.items_from_pb(request.items))
        except NodeError as exc:
            return pb.ForwardReply(failure=convert.error_to_pb(exc))
        return pb.ForwardReply()


class ControlServicer(rpc.ControlServicer):
    def __init__(self, node: TrustedNode, stop: asyncio.Event, kme: Kme) -> None:
        self.node = node
        self.stop = stop
        self.kme = kme

    async def Configure(self, request: pb.NodeConfig, context: Context) -> pb.Ack:
        settings = convert.settings_from_pb(request)
        await self.node.configure(settings)
        await self.kme.start(settings)
        return pb.Ack(ok=True, message=self.kme.url)

    async def ResetLink(self, request: pb.LinkConfig, context: Context) -> pb.Ack:
        await self.node.reset_link(convert.link_settings_from_pb(request))
        return pb.Ack(ok=True)

    async def SetRouting(self, request: pb.RoutingState, context: Context) -> pb.Ack:
        self.node.set_routing(convert.routing_from_pb(request))
        return pb.Ack(ok=True)

    async def Status(self, request: pb.StatusRequest, context: Context) -> pb.NodeStatus:
        return convert.status_to_pb(await self.node.status(self.kme.url))

    async def RelayStream(self, request_iterator: AsyncIterator[pb.RelayRequests],
                          context: Context) -> AsyncIterator[pb.RelayResults]:
        async for message in serve_multiplexed(request_iterator, self._relay, pb.RelayResults):
            yield message

    async def _relay(self, request: pb.RelayRequest) -> pb.RelayResult:
        result = await self.node.relay.order(convert.route_from_pb(request.paths), request.count, request.key_bits,
                                             request.timeout_s or 30.0)
        return convert.result_to_pb(result)

    async def ListKeys(self, request: pb.ListKeysRequest, context: Context) -> pb.KeyList:
        return pb.KeyList(keys=[pb.KeyEntry(key_id=k.key_id, peer=k.peer, digest=k.digest, bits=k.bits)
                                for k in await self.node.list_keys(request.peer, request.salt)])

    async def SetLinkState(self, request: pb.LinkStateRequest, context: Context) -> pb.Ack:
        if not request.up:
            await self.node.set_link_down(request.peer)
        elif not request.HasField("link") or request.link.peer != request.peer:
            raise InvalidRequest("restoring a link needs its fresh configuration for that peer")
        else:
            await self.node.restore_link(convert.link_settings_from_pb(request.link))
        return pb.Ack(ok=True)

    async def SetImpairment(self, request: pb.ImpairmentRequest, context: Context) -> pb.Ack:
        impairment = Impairment(request.extra_loss_db, request.misalignment_error, request.dark_count_factor or 1.0,
                                request.intercept_resend_fraction, request.photon_number_splitting,
                                request.misalignment_drift_per_s)
        await self.node.set_impairment(request.peer, impairment)
        return pb.Ack(ok=True, message=impairment.describe())

    async def ListExposure(self, request: pb.ExposureRequest, context: Context) -> pb.ExposureList:
        log = self.node.relay.exposure
        return pb.ExposureList(entries=[pb.ExposureEntry(key_id=e.key_id, share_index=e.share_index,
                                                         share_count=e.share_count) for e in log.entries],
                               keys_read_whole=log.keys_read_whole, shares_read=log.shares_read)

    async def RevokeKeys(self, request: pb.RevokeRequest, context: Context) -> pb.Ack:
        await self.node.revoke(list(request.key_ids), request.reason or "revoked by operator")
        return pb.Ack(ok=True, message=f"{len(request.key_ids)} key(s) revoked")

    async def AdvanceClock(self, request: pb.ClockRequest, context: Context) -> pb.NodeStatus:
        return convert.status_to_pb(await self.node.advance_clock(request.to_s, request.horizon_s))

    async def Shutdown(self, request: pb.ShutdownRequest, context: Context) -> pb.Ack:
        self.stop.set()
        return pb.Ack(ok=True)
