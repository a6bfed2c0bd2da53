"""One node's Control service as the orchestrator uses it: domain objects in, domain objects out.

Layer: control plane, RPC client. Nothing above this module sees protobuf or ``AioRpcError``:
replies are decoded by ``node.rpc.convert``, a node's refusal arrives as the node's own error
class (``node.errors``), and a node that does not answer is a ``NodeFailure``. Key material
never passes here: relays return key IDs, listings return digests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from qkdnet.node.errors import NodeError
from qkdnet.node.impairment import Impairment
from qkdnet.node.relay.result import RelayResult, Route
from qkdnet.node.routing.live_state import RoutingState
from qkdnet.node.rpc import convert
from qkdnet.node.rpc.errors import ERROR_KIND_KEY, node_error
from qkdnet.node.rpc.streams import StreamBroken, StreamMux
from qkdnet.node.rpc.tls import TlsIdentity, secure_channel
from qkdnet.node.settings import LinkSettings, NodeSettings
from qkdnet.node.status import ExposureEntry, ExposureReport, KeyEntry, NodeStatus
from qkdnet.orchestrator.errors import NodeFailure
from qkdnet_proto.v1 import node_pb2 as pb
from qkdnet_proto.v1 import node_pb2_grpc as rpc

CALL_TIMEOUT_S = 10.0
CONFIGURE_TIMEOUT_S = 30.0
HEALTH_TIMEOUT_S = 10.0
# Virtual time: a node answers an advance once its links finished the blocks that reach past it,
# however slow the host; only a node that stops answering altogether is a failure.
ADVANCE_TIMEOUT_S = 3600.0
RELAY_GRACE_S = 5.0  # a relay order's answer may come this long after the relay's own timeout
_UNANSWERED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
Reply = TypeVar("Reply")


class NodeClient:
    def __init__(self, name: str, address: str, identity: TlsIdentity) -> None:
        """``identity``: the controller's certificate, key and CA; the node must prove it is
        ``name`` (mutual TLS)."""
        self.name = name
        self.address = address
        self._channel = secure_channel(address, identity, name)
        self._control = rpc.ControlStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._relays = StreamMux(self._control.RelayStream, pb.RelayRequests)  # relay orders share one stream

    async def wait_serving(self, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
        """Until the node's health service says SERVING (watched, not polled)."""
        try:
            async for reply in self._health.Watch(health_pb2.HealthCheckRequest(), timeout=timeout_s):
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.aio.AioRpcError as exc:
            detail = (exc.details() or "").partition("\n")[0][:300]
            raise NodeFailure(f"node {self.name} never became healthy: {exc.code().name}"
                              + (f" ({detail})" if detail else "")) from None
        raise NodeFailure(f"node {self.name} never became healthy")

    async def configure(self, settings: NodeSettings) -> str:
        """Returns the node's KME URL ('' without one)."""
        ack = await self._call(self._control.Configure, convert.settings_to_pb(settings), CONFIGURE_TIMEOUT_S)
        return str(ack.message)

    async def reset_link(self, link: LinkSettings) -> None:
        await self._call(self._control.ResetLink, convert.link_settings_to_pb(link), CONFIGURE_TIMEOUT_S)

    async def set_routing(self, state: RoutingState) -> None:
        await self._call(self._control.SetRouting, convert.routing_to_pb(state))

    async def status(self) -> NodeStatus:
        return convert.status_from_pb(await self._call(self._control.Status, pb.StatusRequest()))

    async def advance_clock(self, to_s: float, horizon_s: float = 0.0) -> NodeStatus:
        """Virtual time: the node's status once its links settled at ``to_s``; ``horizon_s``: no
        fault comes before it (0: the clock itself)."""
        reply = await self._call(self._control.AdvanceClock, pb.ClockRequest(to_s=to_s, horizon_s=horizon_s),
                                 ADVANCE_TIMEOUT_S)
        return convert.status_from_pb(reply)

    async def relay(self, paths: Sequence[Sequence[str]], count: int, key_bits: int, timeout_s: float) -> RelayResult:
        route = Route.of(paths)
        request = pb.RelayRequest(paths=convert.routes_to_pb(route.paths), count=count, key_bits=key_bits,
                                  timeout_s=timeout_s)
        try:
            reply = await self._relays.call(request, timeout_s + RELAY_GRACE_S)
        except (StreamBroken, TimeoutError) as exc:
            return RelayResult.failed(self.name, route.destination, route.paths,
                                      NodeFailure(f"{self.name}: {exc or 'no answer in time'}"))
        return convert.result_from_pb(reply)

    async def list_keys(self, peer: str, salt: bytes) -> list[KeyEntry]:
        """Keys for comparison: HMAC-SHA256(salt, key) per key (see ``node.status.KeyEntry``)."""
        reply = await self._call(self._control.ListKeys, pb.ListKeysRequest(peer=peer, salt=salt))
        return [KeyEntry(k.key_id, k.peer, k.digest, k.bits) for k in reply.keys]

    async def set_link_down(self, peer: str) -> None:
        await self._call(self._control.SetLinkState, pb.LinkStateRequest(peer=peer, up=False))

    async def restore_link(self, link: LinkSettings) -> None:
        await self._call(self._control.SetLinkState,
                         pb.LinkStateRequest(peer=link.peer, up=True, link=convert.link_settings_to_pb(link)),
                         CONFIGURE_TIMEOUT_S)

    async def set_impairment(self, peer: str, impairment: Impairment) -> str:
        """Switch a fault on the channel to ``peer`` on or off (this node transmits on that link)."""
        reply = await self._call(self._control.SetImpairment, pb.ImpairmentRequest(
            peer=peer, extra_loss_db=impairment.extra_loss_db, misalignment_error=impairment.misalignment_error,
            dark_count_factor=impairment.dark_count_factor,
            intercept_resend_fraction=impairment.intercept_resend_fraction,
            photon_number_splitting=impairment.photon_number_splitting,
            misalignment_drift_per_s=impairment.misalignment_drift_per_s))
        return reply.message

    async def exposure(self) -> ExposureReport:
        reply = await self._call(self._control.ListExposure, pb.ExposureRequest())
        return ExposureReport(tuple(ExposureEntry(e.key_id, e.share_index, e.share_count) for e in reply.entries),
                              reply.keys_read_whole, reply.shares_read)

    async def revoke(self, key_ids: list[str], reason: str) -> None:
        await self._call(self._control.RevokeKeys, pb.RevokeRequest(key_ids=key_ids, reason=reason))

    async def shutdown(self, timeout_s: float = 2.0) -> None:
        await self._call(self._control.Shutdown, pb.ShutdownRequest(), timeout_s)

    async def close(self) -> None:
        await self._relays.close()
        await self._channel.close()

    async def _call(self, method: Callable[..., Awaitable[Reply]], request: Any,
                    timeout_s: float = CALL_TIMEOUT_S) -> Reply:
        try:
            return await method(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    def _error(self, exc: grpc.aio.AioRpcError) -> NodeError | NodeFailure:
        named = any(key == ERROR_KIND_KEY for key, _ in (exc.trailing_metadata() or ()))
        if not named and exc.code() in _UNANSWERED:
            return NodeFailure(f"node {self.name} did not answer: {exc.code().name}")
        return node_error(exc, self.name)
