"""Lost, repeated and late link messages over real gRPC with mutual TLS, at every step of a block:
the transmitter (a link runtime here) resynchronises with the receiver (a served node), blocks
are accepted again, both ends hold the same link key, and no authentication unit serves twice.

Each step is one RPC of a block: DeliverFrame, then the Exchange that carries each of Alice's
messages in turn. A fault: the request is lost, the answer is lost, the request arrives twice,
or it arrives late (after the transmitter gave up on it and resynchronised).
"""

import asyncio

import grpc
import numpy as np
import pytest

from qkdnet.node.errors import Unavailable
from qkdnet.node.keystore.link_pool import LinkKeyPool
from qkdnet.node.keystore.store import NodeStore
from qkdnet.node.link_runtime import LinkRuntime
from qkdnet.node.qkd.authentication import KeyUse
from qkdnet.node.qkd.messages import MESSAGE_TYPES
from qkdnet.node.rpc.errors import NodeInterceptor
from qkdnet.node.rpc.peer_client import GrpcPeer
from qkdnet.node.rpc.servicers import LinkServicer
from qkdnet.node.rpc.tls import server_credentials
from qkdnet.node.settings import NodeSettings
from qkdnet.node.trusted_node import TrustedNode
from qkdnet.orchestrator import certs
from qkdnet.orchestrator.topology import load
from qkdnet_proto.v1 import node_pb2_grpc as rpc
from tests.helpers import eventually
from tests.node.inprocess import link_pair
from tests.node.qkd.test_link_faults import assert_no_unit_served_twice
from tests.node.rpc.test_servicers import Unreachable
from tests.node.rpc.test_servicers import _identity as identity

STEPS = ["DeliverFrame", "SiftReply", "Reconcile", "ParityReply", "Amplify", "Finish"]
CAPACITY_BITS = 10**8


class FaultyPeer:
    """The receiver as the transmitter reaches it, with one fault armed at a time."""

    def __init__(self, inner: GrpcPeer) -> None:
        self.inner = inner
        self.armed: tuple[str, str] | None = None
        self.fault_frame = 0
        self.faults = 0
        self.hold_after_fault = False  # resynchronisations after the fault never get through
        self._holding = False
        self._late = None

    def arm(self, kind: str, step: str) -> None:
        self.armed = (kind, step)

    async def deliver_frame(self, frame):
        return await self._call("DeliverFrame", frame.frame_id, lambda: self.inner.deliver_frame(frame))

    async def exchange(self, link_id, frame_id, envelopes):
        step = MESSAGE_TYPES[envelopes[0][0]].__name__
        return await self._call(step, frame_id, lambda: self.inner.exchange(link_id, frame_id, envelopes))

    async def resync(self, request):
        if self._holding:
            await asyncio.Event().wait()  # until the test stops the transmitter
        reply = await self.inner.resync(request)
        if self._late is not None:  # the held-back request arrives now, after the resynchronisation
            late, self._late = self._late, None
            await late()  # its answer goes nowhere: the transmitter gave up on it
        return reply

    async def _call(self, step, frame_id, call):
        if self.armed is None or self.armed[1] != step:
            return await call()
        kind, self.armed = self.armed[0], None
        self.fault_frame = frame_id
        self.faults += 1
        self._holding = self.hold_after_fault
        if kind == "lose request":
            raise Unavailable("request lost")
        if kind == "lose answer":
            await call()
            raise Unavailable("answer lost")
        if kind == "repeat":
            first = await call()
            await call()
            return first
        self._late = call
        raise Unavailable("deadline exceeded")


@pytest.fixture
async def link_over_grpc(tmp_path):
    """n0's transmitting runtime in the test, n1 served over mutual TLS as its receiver."""
    pki = certs.create(load("line:2"), tmp_path / "pki")
    store = NodeStore.open(tmp_path / "n1.db")
    node = TrustedNode("n1", lambda name, address: Unreachable(), store)
    server = grpc.aio.server(interceptors=[NodeInterceptor(node.neighbours)])
    rpc.add_LinkServicer_to_server(LinkServicer(node), server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(identity(pki, "node", "n1")))
    await server.start()
    tx_settings, rx_settings = link_pair("n0", "n1", CAPACITY_BITS)
    await node.configure(NodeSettings("n1", (rx_settings,), 0.0))
    receiver = node.links.by_peer("n0").runtime
    transmitter = LinkRuntime(tx_settings, LinkKeyPool("a", CAPACITY_BITS), 0.0)
    ledger: list[KeyUse] = []
    transmitter.endpoint.auth_keys.ledger = receiver.endpoint.auth_keys.ledger = ledger
    grpc_peer = GrpcPeer("n1", f"127.0.0.1:{port}", identity(pki, "node", "n0"))
    yield transmitter, receiver, FaultyPeer(grpc_peer), ledger
    await transmitter.stop()
    await grpc_peer.close()
    await server.stop(None)
    await node.close()
    await store.close()


def _frames(pool: LinkKeyPool) -> set[int]:
    return {frame_id for _, frame_id in pool.inventory()}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lose request", "lose answer", "repeat", "late"])
async def test_the_link_recovers_from_a_fault_at_every_step(link_over_grpc, kind):
    tx, rx, peer, ledger = link_over_grpc
    tx.start(peer)
    for step in STEPS:
        peer.arm(kind, step)
        await eventually(lambda: peer.armed is None, 120, f"{kind} at {step}")
        await eventually(lambda: any(f > peer.fault_frame for f in _frames(tx.pool) & _frames(rx.pool)), 120,
                         f"a block accepted at both ends after {kind} at {step}")
    await tx.stop()
    await tx.resync(peer.inner)  # settle what the stop may have cut short
    assert peer.faults == len(STEPS) and rx.resyncs >= tx.resyncs >= 1
    ours, theirs = tx.pool.inventory(), rx.pool.inventory()
    assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)
    link_key, bits = tx.pool.allocate(4096)
    assert np.array_equal(rx.pool.take_by_id(link_key), bits)
    assert tx.endpoint.auth_keys.inventory() == rx.endpoint.auth_keys.inventory()
    assert_no_unit_served_twice(ledger)
    assert tx.status().balanced and rx.status().balanced


@pytest.mark.slow
async def test_a_lost_answer_to_finish_keeps_the_block_only_where_both_hold_it(link_over_grpc):
    """The transmitter kept the block unconfirmed; the resynchronisation finds the receiver
    has it (the request arrived) and confirms it; a lost request is discarded at the transmitter."""
    tx, rx, peer, _ = link_over_grpc
    for kind, kept in (("lose answer", True), ("lose request", False)):
        peer.arm(kind, "Finish")
        peer.hold_after_fault = True  # the runtime must not settle the block itself
        tx.start(peer)
        await eventually(lambda: peer.armed is None and tx.pool.unconfirmed, 120, f"{kind} at Finish")
        await tx.stop()
        frame = next(iter(tx.pool.unconfirmed))
        assert rx.pool.holds_block(frame) is kept
        await tx.resync(peer.inner)
        assert not tx.pool.unconfirmed and tx.pool.holds_block(frame) is kept
        assert _frames(tx.pool) == _frames(rx.pool)
    assert tx.status().balanced

