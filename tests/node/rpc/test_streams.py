"""Multiplexed relay streams: replies reach their callers; calls queued together share a message."""

import asyncio

import grpc
import pytest

from qkdnet.node.errors import RelayError
from qkdnet.node.rpc.servicers import RelayServicer
from qkdnet.node.rpc.streams import StreamBroken, StreamMux
from qkdnet_proto.v1 import node_pb2 as pb
from qkdnet_proto.v1 import node_pb2_grpc as rpc
from tests.helpers import eventually


class SlowEcho:
    """Stands in for a relay engine: answers each forward after a delay that depends on the hop."""

    async def forward(self, path, hop, items):
        await asyncio.sleep(0.001 * (hop % 5))
        if hop == 13:
            raise RelayError("hop 13 refused", ("b", "c"))


def ok(reply):
    return not reply.HasField("failure")


async def _serve():
    server = grpc.aio.server()
    rpc.add_RelayServicer_to_server(RelayServicer(SlowEcho()), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def _mux(channel, batch=pb.ForwardRequests):
    return StreamMux(rpc.RelayStub(channel).ForwardStream, batch)


async def test_concurrent_calls_share_messages_and_each_gets_its_own_reply():
    server, address = await _serve()
    channel = grpc.aio.insecure_channel(address)
    messages = []

    def counted(calls):
        messages.append(len(calls))
        return pb.ForwardRequests(calls=calls)

    mux = _mux(channel, counted)
    try:
        assert ok(await mux.call(pb.ForwardRequest(path=["a", "b"], hop=1), 5))  # alone: sent at once
        replies = await asyncio.gather(*(mux.call(pb.ForwardRequest(path=["a", "b"], hop=h), 5) for h in range(40)))
        assert [ok(r) for r in replies] == [h != 13 for h in range(40)]
        assert replies[13].failure.message == "hop 13 refused"
        assert (replies[13].failure.kind, replies[13].failure.failed_from, replies[13].failure.failed_to) == (
            "RelayError", "b", "c")
        assert messages[0] == 1 and sum(messages) == 41 and len(messages) < 41
    finally:
        await mux.close()
        await channel.close()
        await server.stop(None)


async def test_calls_on_a_broken_stream_fail_cleanly_and_later_calls_reopen_it():
    server, address = await _serve()
    channel = grpc.aio.insecure_channel(address)
    mux = _mux(channel)
    try:
        assert ok(await mux.call(pb.ForwardRequest(path=["a", "b"], hop=1), 5))
        await server.stop(None)
        with pytest.raises(StreamBroken):
            await mux.call(pb.ForwardRequest(path=["a", "b"], hop=1), 2)
        server = grpc.aio.server()  # the same address again
        rpc.add_RelayServicer_to_server(RelayServicer(SlowEcho()), server)
        server.add_insecure_port(address)
        await server.start()
        replies = []

        async def reopened():  # the channel reconnects with backoff
            try:
                replies[:] = await asyncio.gather(*(mux.call(pb.ForwardRequest(path=["a", "b"], hop=h), 2)
                                                    for h in range(1, 6)))
            except StreamBroken:
                return False
            return True

        await eventually(reopened, 10, "the stream reopened")
        assert all(ok(r) for r in replies)
    finally:
        await mux.close()
        await channel.close()
        await server.stop(None)
