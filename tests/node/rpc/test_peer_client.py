"""A neighbour that has just restarted takes the next relay or call; one that is gone fails them quickly."""

import asyncio
import socket

import grpc
import pytest

from qkdnet.node.errors import RelayError, Unavailable
from qkdnet.node.keystore.link_pool import LinkKeyId
from qkdnet.node.relay.result import RelayItem
from qkdnet.node.rpc import peer_client
from qkdnet.node.rpc.peer_client import GrpcPeer
from qkdnet.node.rpc.servicers import RelayServicer
from qkdnet_proto.v1 import node_pb2_grpc as rpc
from tests.helpers import eventually


class Accepting:
    """Stands in for the neighbour's relay engine: takes every forward."""

    def __init__(self) -> None:
        self.forwarded: list[tuple[tuple[str, ...], int, list[str]]] = []
        self.aborted: list[list[str]] = []

    async def forward(self, path, hop, items):
        self.forwarded.append((tuple(path), hop, [i.key_id for i in items]))

    async def abort(self, path, hop, key_ids):
        self.aborted.append(list(key_ids))


def _reserved_port() -> socket.socket:
    """A bound port nobody listens on (connections are refused); a gRPC server can take it
    later, since both set SO_REUSEPORT, and no other process can in between."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    return holder


ITEM = RelayItem("k1", b"\x00" * 32, LinkKeyId(1, "a", 0, 256))


async def test_the_first_relay_after_a_neighbour_restarts_waits_for_the_channel_to_reconnect(monkeypatch):
    monkeypatch.setattr(peer_client, "RECONNECT_WAIT_S", 120.0)  # what is tested is that it waits, not how long
    holder = _reserved_port()
    address = f"127.0.0.1:{holder.getsockname()[1]}"
    peer = GrpcPeer("b", address, None)
    engine = Accepting()
    server = None
    try:
        relay = asyncio.ensure_future(peer.forward(("a", "b"), 1, [ITEM]))
        abort = asyncio.ensure_future(peer.abort(("a", "b"), 1, ["k0"]))  # a unary call, the same way
        # The neighbour is down: the connection is refused and the channel waits out a backoff,
        # the state in which a stream opened at once would fail.
        await eventually(lambda: peer._channel.get_state() == grpc.ChannelConnectivity.TRANSIENT_FAILURE, 30,
                         "the connection refused")
        assert not relay.done() and not abort.done()
        server = grpc.aio.server()
        rpc.add_RelayServicer_to_server(RelayServicer(engine), server)
        server.add_insecure_port(address)
        await server.start()
        await relay
        await abort
        assert engine.forwarded == [(("a", "b"), 1, ["k1"])] and engine.aborted == [["k0"]]
    finally:
        await peer.close()
        if server is not None:
            await server.stop(None)
        holder.close()


async def test_a_relay_to_a_neighbour_that_does_not_come_back_fails_with_its_address(monkeypatch):
    monkeypatch.setattr(peer_client, "RECONNECT_WAIT_S", 0.5)
    holder = _reserved_port()
    address = f"127.0.0.1:{holder.getsockname()[1]}"
    peer = GrpcPeer("b", address, None)
    try:
        with pytest.raises(RelayError, match=f"{address}: unreachable"):
            await peer.forward(("a", "b"), 1, [ITEM])
        with pytest.raises(Unavailable, match=f"{address}: unreachable"):
            await peer.abort(("a", "b"), 1, ["k0"])
    finally:
        await peer.close()
        holder.close()
