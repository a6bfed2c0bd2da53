"""The servicers over real gRPC (127.0.0.1:0): each call reaches its domain object, and every
node error comes back to the client as the same class, mapped by the one interceptor."""

import asyncio

import grpc
import pytest

from node.errors import Conflict, InvalidRequest, KeyNotAvailable, NotFound
from node.keystore.store import NodeStore
from node.routing import RoutingState
from node.rpc.errors import NodeErrorInterceptor
from node.rpc.servicers import ControlServicer, LinkServicer, RelayServicer
from node.settings import NodeSettings
from node.trusted_node import TrustedNode
from orchestrator.errors import NodeFailure
from orchestrator.node_client import NodeClient
from qkdnet_proto.v1 import node_pb2_grpc as rpc


class NoKme:
    url = ""

    async def start(self, settings):
        pass


@pytest.fixture
async def served(tmp_path):
    store = NodeStore.open(tmp_path / "k.db")
    node = TrustedNode("A", lambda address: None, store)
    stop = asyncio.Event()
    server = grpc.aio.server(interceptors=[NodeErrorInterceptor()])
    rpc.add_LinkServicer_to_server(LinkServicer(node), server)
    rpc.add_RelayServicer_to_server(RelayServicer(node.relay), server)
    rpc.add_ControlServicer_to_server(ControlServicer(node, stop, NoKme()), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = NodeClient("A", f"127.0.0.1:{port}")
    yield node, client, stop
    await client.close()
    await server.stop(None)
    await node.close()
    await store.close()


async def test_control_calls_reach_the_node(served):
    node, client, stop = served
    assert await client.configure(NodeSettings("A", (), 0.0)) == ""
    assert node.configured
    status = await client.status()
    assert (status.name, status.links, status.app_keys) == ("A", (), 0)
    await client.set_routing(RoutingState("shortest_fibre"))
    assert node.routing.strategy.name == "shortest_fibre"
    assert await client.list_keys("", bytes(16)) == []
    assert (await client.exposure()).keys_read_whole == 0
    await client.shutdown()
    assert stop.is_set()


async def test_node_errors_come_back_as_their_own_class(served):
    node, client, _ = served
    with pytest.raises(InvalidRequest, match="sent to node"):
        await client.configure(NodeSettings("B", (), 0.0))
    await client.configure(NodeSettings("A", (), 0.0))
    with pytest.raises(Conflict, match="already configured"):
        await client.configure(NodeSettings("A", (), 0.0))
    with pytest.raises(KeyNotAvailable, match="unknown key_ID"):
        await client.revoke(["no-such-key"], "test")
    with pytest.raises(NotFound, match="no link"):
        await client.set_link_down("B")
    with pytest.raises(InvalidRequest, match="unknown routing strategy"):
        await client.set_routing(RoutingState("dijkstra"))


async def test_a_relay_order_fails_in_its_result_not_as_an_error(served):
    _, client, _ = served
    result = await client.relay([["A", "B"]], 1, 256, 1.0)
    assert not result.ok and result.failure.kind == "RelayError" and "no link to B" in result.error
    result = await client.relay([["B", "A"]], 1, 256, 1.0)
    assert result.failure.kind == "InvalidRequest"


async def test_a_node_that_does_not_answer_is_a_node_failure():
    client = NodeClient("Z", "127.0.0.1:1")  # nothing listens there
    try:
        with pytest.raises(NodeFailure, match="node Z did not answer"):
            await client.status()
    finally:
        await client.close()
