"""Servicers: decode, one awaited call on the TrustedNode, encode. Errors map to status codes."""

from __future__ import annotations

import asyncio

import grpc
from qkdnet_proto.v1 import node_pb2 as pb
from qkdnet_proto.v1 import node_pb2_grpc as rpc

from node.keystore.app_store import KeyNotAvailable, StoreError
from node.keystore.lifecycle import LifecycleError
from node.keystore.link_pool import KeyPoolError
from node.rpc.convert import (frame_from_pb, inventory_from_pb, inventory_to_pb, items_from_pb,
                              link_settings_from_pb, settings_from_pb)
from node.rpc.streams import serve_multiplexed
from node.trusted_node import RelayError, TrustedNode


class LinkServicer(rpc.LinkServicer):
    def __init__(self, node: TrustedNode) -> None:
        self.node = node

    async def DeliverFrame(self, request, context):
        try:
            envelopes = await self.node.on_frame(frame_from_pb(request))
        except KeyError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return pb.ClassicalBatch(link_id=request.link_id, frame_id=request.frame_id, envelopes=envelopes)

    async def Exchange(self, request, context):
        try:
            envelopes, done = await self.node.on_exchange(request.link_id, request.frame_id, list(request.envelopes))
        except KeyError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return pb.ClassicalBatch(link_id=request.link_id, frame_id=request.frame_id, envelopes=envelopes, done=done)


    async def ReconcilePool(self, request, context):
        try:
            kept = await self.node.on_reconcile(request.link_id, inventory_from_pb(request))
        except KeyError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return inventory_to_pb(request.link_id, kept)


class RelayServicer(rpc.RelayServicer):
    def __init__(self, node: TrustedNode) -> None:
        self.node = node

    async def Forward(self, request, context):
        return await self._forward(request)

    async def ForwardStream(self, request_iterator, context):
        async for message in serve_multiplexed(request_iterator, self._forward, pb.ForwardReplies):
            yield message

    async def Abort(self, request, context):
        try:
            await self.node.abort(list(request.path), request.hop, list(request.key_ids))
        except (RelayError, StoreError) as exc:
            return pb.ForwardReply(ok=False, reason=str(exc))
        return pb.ForwardReply(ok=True)

    async def _forward(self, request: pb.ForwardRequest) -> pb.ForwardReply:
        try:
            await self.node.forward(list(request.path), request.hop, items_from_pb(request.items))
        except (RelayError, KeyPoolError) as exc:
            return pb.ForwardReply(ok=False, reason=str(exc))
        return pb.ForwardReply(ok=True)


class ControlServicer(rpc.ControlServicer):
    def __init__(self, node: TrustedNode, stop: asyncio.Event, kme) -> None:
        self.node = node
        self.stop = stop
        self.kme = kme  # node.server.KmeHolder

    def kme_url(self) -> str:
        return self.kme.url

    async def Configure(self, request, context):
        try:
            settings = settings_from_pb(request)
            await self.node.configure(settings)
            await self.kme.start(settings)
        except (ValueError, TypeError, OSError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.Ack(ok=True, message=self.kme.url)

    async def ResetLink(self, request, context):
        try:
            await self.node.reset_link(link_settings_from_pb(request))
        except (ValueError, TypeError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.Ack(ok=True)

    async def Status(self, request, context):
        status = await self.node.status()
        return pb.NodeStatus(name=status["name"], links=[pb.LinkStatus(**link) for link in status["links"]],
                             app_keys=status["app_keys"], relays_forwarded=status["relays_forwarded"],
                             kme_url=self.kme_url(), keys_read_whole=status["keys_read_whole"],
                             shares_read=status["shares_read"])

    async def RelayKeys(self, request, context):
        return await self._relay(request)

    async def RelayStream(self, request_iterator, context):
        async for message in serve_multiplexed(request_iterator, self._relay, pb.RelayResults):
            yield message

    async def _relay(self, request: pb.RelayRequest) -> pb.RelayResult:
        try:
            paths = [list(r.path) for r in request.paths] or [list(request.path)]
            outcome = await self.node.relay_multipath(paths, request.count, request.key_bits,
                                                      request.timeout_s or 30.0)
        except RelayError as exc:
            return pb.RelayResult(error=str(exc))
        return pb.RelayResult(key_ids=outcome.key_ids, latencies_s=outcome.latencies_s,
                              link_bits_consumed=outcome.link_bits_consumed)

    async def ListKeys(self, request, context):
        return pb.KeyList(keys=[pb.KeyEntry(key_id=k, peer=p, digest=d, bits=b)
                                for k, p, d, b in await self.node.list_keys(request.peer)])

    async def SetLinkState(self, request, context):
        if request.up:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "a cut link cannot be restored; restart the network")
        try:
            await self.node.set_link_down(request.peer)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return pb.Ack(ok=True)

    async def ListExposure(self, request, context):
        log = self.node.exposure
        return pb.ExposureList(entries=[pb.ExposureEntry(key_id=e.key_id, share_index=e.share_index,
                                                         share_count=e.share_count) for e in log.entries],
                               keys_read_whole=log.keys_read_whole, shares_read=log.shares_read)

    async def RevokeKeys(self, request, context):
        store = self.node.store
        try:
            await store.run(store.store.revoke_many, list(request.key_ids), request.reason or "revoked by operator")
        except KeyNotAvailable as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except LifecycleError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return pb.Ack(ok=True, message=f"{len(request.key_ids)} key(s) revoked")

    async def Shutdown(self, request, context):
        self.stop.set()
        return pb.Ack(ok=True)
