"""The servicers over real gRPC with mutual TLS (127.0.0.1:0), behind the node's one policy
interceptor: each call reaches its domain object, every node error comes back to the client as
the same class, and a caller the policy does not admit is refused and changes nothing.

Node n1 of a 4-node line serves; its neighbours are n0 and n2; n3 is a node of the network that
is not its neighbour; "another CA" is a second PKI of the same names.
"""

import asyncio

import grpc
import pytest

from qkdnet.node.errors import Conflict, InvalidRequest, KeyNotAvailable, NotFound, Unavailable
from qkdnet.node.keystore.store import NodeStore
from qkdnet.node.routing import RoutingState
from qkdnet.node.rpc.errors import NodeInterceptor
from qkdnet.node.rpc.servicers import ControlServicer, LinkServicer, RelayServicer
from qkdnet.node.rpc.tls import TlsIdentity, secure_channel, server_credentials
from qkdnet.node.settings import NodeSettings
from qkdnet.node.trusted_node import TrustedNode
from qkdnet.orchestrator import certs
from qkdnet.orchestrator.errors import NodeFailure
from qkdnet.orchestrator.node_client import NodeClient
from qkdnet.orchestrator.topology import load
from qkdnet_proto.v1 import node_pb2 as pb
from qkdnet_proto.v1 import node_pb2_grpc as rpc
from tests.node.inprocess import link_pair


class NoKme:
    url = ""

    async def start(self, settings):
        pass


class Unreachable:
    """The neighbours' clients: nobody answers (this test looks at n1 alone)."""

    def __getattr__(self, name):
        async def refuse(*args, **kwargs):
            raise Unavailable("not in this test")
        return refuse

    async def close(self):
        pass


def _identity(pki, kind, name=None):
    cert, key = pki.controller if kind == "controller" else getattr(pki, kind)[name]
    return TlsIdentity.load(cert, key, pki.ca_file)


@pytest.fixture
async def served(tmp_path):
    pki = certs.create(load("line:4"), tmp_path / "pki")
    store = NodeStore.open(tmp_path / "k.db")
    node = TrustedNode("n1", lambda name, address: Unreachable(), store)
    stop = asyncio.Event()
    server = grpc.aio.server(interceptors=[NodeInterceptor(node.neighbours)])
    rpc.add_LinkServicer_to_server(LinkServicer(node), server)
    rpc.add_RelayServicer_to_server(RelayServicer(node.relay), server)
    rpc.add_ControlServicer_to_server(ControlServicer(node, stop, NoKme()), server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(_identity(pki, "node", "n1")))
    await server.start()
    address = f"127.0.0.1:{port}"
    client = NodeClient("n1", address, _identity(pki, "controller"))
    yield node, client, stop, pki, address
    await client.close()
    await server.stop(None)
    await node.close()
    await store.close()


def _links():
    """n1's two link ends, both as the receiver (so no BB84 engine of its own runs here)."""
    _, from_n0 = link_pair("n0", "n1")
    _, from_n2 = link_pair("n2", "n1")
    return from_n0, from_n2


async def test_control_calls_reach_the_node(served):
    node, client, stop, _, _ = served
    assert await client.configure(NodeSettings("n1", (), 0.0)) == ""
    assert node.configured
    status = await client.status()
    assert (status.name, status.links, status.app_keys) == ("n1", (), 0)
    await client.set_routing(RoutingState("shortest_fibre"))
    assert node.routing.strategy.name == "shortest_fibre"
    assert await client.list_keys("", bytes(16)) == []
    assert (await client.exposure()).keys_read_whole == 0
    await client.shutdown()
    assert stop.is_set()


async def test_node_errors_come_back_as_their_own_class(served):
    node, client, _, _, _ = served
    with pytest.raises(InvalidRequest, match="sent to node"):
        await client.configure(NodeSettings("B", (), 0.0))
    await client.configure(NodeSettings("n1", (), 0.0))
    with pytest.raises(Conflict, match="already configured"):
        await client.configure(NodeSettings("n1", (), 0.0))
    with pytest.raises(KeyNotAvailable, match="unknown key_ID"):
        await client.revoke(["no-such-key"], "test")
    with pytest.raises(NotFound, match="no link"):
        await client.set_link_down("B")
    with pytest.raises(InvalidRequest, match="unknown routing strategy"):
        await client.set_routing(RoutingState("dijkstra"))


async def test_a_relay_order_fails_in_its_result_not_as_an_error(served):
    _, client, _, _, _ = served
    result = await client.relay([["n1", "B"]], 1, 256, 1.0)
    assert not result.ok and result.failure.kind == "RelayError" and "no link to B" in result.error
    result = await client.relay([["B", "n1"]], 1, 256, 1.0)
    assert result.failure.kind == "InvalidRequest"


async def test_a_node_that_does_not_answer_is_a_node_failure(tmp_path):
    pki = certs.create(load("line:2"), tmp_path / "pki")
    client = NodeClient("Z", "127.0.0.1:1", _identity(pki, "controller"))  # nothing listens there
    try:
        with pytest.raises(NodeFailure, match="node Z did not answer"):
            await client.status()
    finally:
        await client.close()


async def _call(address, credentials_or_identity, method, request, server_name="n1"):
    """One call as some caller: a TlsIdentity, or raw channel credentials; its status code."""
    if isinstance(credentials_or_identity, TlsIdentity):
        channel = secure_channel(address, credentials_or_identity, server_name)
    else:
        channel = grpc.aio.secure_channel(address, credentials_or_identity,
                                          options=[("grpc.ssl_target_name_override", server_name)])
    try:
        stub = {"Control": rpc.ControlStub, "Link": rpc.LinkStub, "Relay": rpc.RelayStub}[method[0]](channel)
        await getattr(stub, method[1])(request, timeout=10)
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    finally:
        await channel.close()


CALLS = [  # one per service and method class
    (("Control", "Status"), pb.StatusRequest()),
    (("Control", "RevokeKeys"), pb.RevokeRequest(key_ids=["k"])),
    (("Control", "AdvanceClock"), pb.ClockRequest(to_s=1.0)),
    (("Link", "ReconcilePool"), pb.PoolInventory(link_id="n0~n1")),
    (("Link", "Exchange"), pb.ClassicalBatch(link_id="n0~n1", frame_id=1)),
    (("Relay", "Abort"), pb.AbortRequest(path=["n0", "n1", "n2"], hop=1, key_ids=["k"])),
]


async def _snapshot(node):
    status = await node.status()
    return [(l.link_id, l.pool_bits, l.generated_bits, l.consumed_bits, l.discarded_bits)
            for l in status.links], status.app_keys, await node.store.keys.audit_entries()


@pytest.mark.parametrize("method, request_", CALLS)
async def test_callers_without_a_certificate_or_from_another_ca_are_refused(served, tmp_path, method, request_):
    node, client, _, pki, address = served
    await client.configure(NodeSettings("n1", _links(), 0.0))
    before = await _snapshot(node)
    anonymous = grpc.ssl_channel_credentials(root_certificates=pki.ca_file.read_bytes())
    other = certs.create(load("line:4"), tmp_path / "other")
    for caller in (anonymous, _identity(other, "controller"), _identity(other, "node", "n0")):
        assert await _call(address, caller, method, request_) == grpc.StatusCode.UNAVAILABLE  # no handshake
    assert await _snapshot(node) == before


@pytest.mark.parametrize("method, request_", CALLS)
async def test_nodes_may_not_control_and_only_neighbours_may_link_or_relay(served, method, request_):
    node, client, _, pki, address = served
    await client.configure(NodeSettings("n1", _links(), 0.0))
    before = await _snapshot(node)
    stranger = _identity(pki, "node", "n3")  # a node of the network, not n1's neighbour
    assert await _call(address, stranger, method, request_) == grpc.StatusCode.PERMISSION_DENIED
    neighbour = _identity(pki, "node", "n0")
    expected = grpc.StatusCode.PERMISSION_DENIED if method[0] == "Control" else None
    if expected is not None:
        assert await _call(address, neighbour, method, request_) == expected
    assert await _snapshot(node) == before


async def test_a_node_in_real_time_refuses_to_advance_a_clock_it_does_not_have(served):
    node, client, _, pki, address = served
    await client.configure(NodeSettings("n1", _links(), 0.0))
    controller = _identity(pki, "controller")
    assert await _call(address, controller, ("Control", "AdvanceClock"), pb.ClockRequest(to_s=1.0)) == (
        grpc.StatusCode.FAILED_PRECONDITION)


async def test_a_neighbour_acts_only_on_its_own_link_and_as_its_own_hop(served):
    node, client, _, pki, address = served
    await client.configure(NodeSettings("n1", _links(), 0.0))
    before = await _snapshot(node)
    n0 = _identity(pki, "node", "n0")
    # n0 may not speak for n2: the n2~n1 link, or hop n2 of a path, are not n0's.
    assert await _call(address, n0, ("Link", "ReconcilePool"), pb.PoolInventory(link_id="n2~n1")) == (
        grpc.StatusCode.PERMISSION_DENIED)
    assert await _call(address, n0, ("Relay", "Abort"), pb.AbortRequest(path=["n2", "n1", "n0"], hop=1,
                                                                          key_ids=["k"])) == grpc.StatusCode.OK
    # Abort answers in its reply: the refusal is there, and nothing changed.
    channel = secure_channel(address, n0, "n1")
    reply = await rpc.RelayStub(channel).Abort(pb.AbortRequest(path=["n2", "n1", "n0"], hop=1, key_ids=["k"]))
    await channel.close()
    assert reply.failure.kind == "PermissionDenied"
    # Its own link it may reconcile (here: nothing held on either side).
    assert await _call(address, n0, ("Link", "ReconcilePool"), pb.PoolInventory(link_id="n0~n1")) == (
        grpc.StatusCode.OK)
    assert await _snapshot(node) == before
