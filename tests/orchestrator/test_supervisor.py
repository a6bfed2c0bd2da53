"""The supervisor's socket protocol, through the one typed client the CLI and the shell use."""

import asyncio
import os

import pytest

from qkdnet.node.relay.result import RelayResult, Route
from qkdnet.node.status import KeyEntry, LinkStatus, NodeStatus
from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.network import FaultRecord
from qkdnet.orchestrator.state import StateDir
from qkdnet.orchestrator.supervisor import Supervisor
from qkdnet.orchestrator.supervisor_client import SupervisorClient
from qkdnet.orchestrator.topology import load


def _link(peer, role):
    return LinkStatus(link_id="n0~n1", peer=peer, role=role, state="running", length_km=25.0, blocks_accepted=2,
                      blocks_aborted=0, last_abort_reason="", qber=0.02, sifted_bits=10_000, generated_bits=4000,
                      pool_bits=3000, consumed_bits=512, discarded_bits=488, emulated_seconds=1.0,
                      sifted_bits_per_s=10_000.0, secret_bits_per_s=4000.0, auth_bits=0, sendable_bits=1500)


class Handle:
    def __init__(self, name):
        self.address, self.kme_url, self.failure = f"127.0.0.1:{name[-1]}", "", ""
        self.metrics_url = f"https://127.0.0.1:9{name[-1]}/metrics"


class FakeNetwork:
    """What the supervisor uses of a Network: two nodes, one link, relays that always work."""

    def __init__(self):
        self.topology = load("line:2")
        self.nodes = {"n0": Handle("n0"), "n1": Handle("n1")}
        self.revoked = []
        self.faults = []  # what the supervisor asked for, as (kind, where, what)
        self.cuts = set()

    async def cut_link(self, u, v):
        self.faults.append(FaultRecord(0.0, "cut", f"{u}-{v}"))

    async def impair(self, u, v, impairment):
        self.faults.append(FaultRecord(0.0, "impair", f"{u}-{v}", impairment.describe()))
        return impairment.describe()

    async def status(self):
        return {"n0": NodeStatus("n0", (_link("n1", "transmitter"),), 0, 0, 0, 0),
                "n1": NodeStatus("n1", (_link("n0", "receiver"),), 0, 0, 0, 0)}

    async def relay(self, source, destination, count, key_bits, timeout_s, paths):
        route = Route.of(paths)
        return RelayResult(source, destination, route.paths, tuple(f"k{i}" for i in range(count)), 0.01,
                           count * key_bits * route.hops)

    async def list_keys(self, node, peer="", *, salt):
        return [KeyEntry("k0", "n1", bytes(32), 256)]

    async def revoke(self, node, key_ids, reason=""):
        self.revoked += key_ids


@pytest.fixture
async def client(tmp_path):
    state = StateDir(tmp_path)
    state.prepare()
    supervisor = Supervisor(FakeNetwork(), load("line:2"), state)
    server = await asyncio.start_unix_server(supervisor.serve_client, path=str(state.socket_path))
    state.write({"pid": os.getpid(), "topology": "line-2"})
    yield SupervisorClient(state), supervisor
    server.close()
    await server.wait_closed()


async def test_typed_replies(client):
    client, supervisor = client
    status = await asyncio.to_thread(client.status)
    assert set(status.nodes) == {"n0", "n1"} and status.links[0].link == "n0-n1" and status.links[0].balanced
    result = await asyncio.to_thread(client.relay, "n0", "n1", 3, 256)
    assert result.ok and result.path == ["n0", "n1"] and len(result.key_ids) == 3
    assert result.link_bits_consumed == 3 * 256 and result.attempts == 1
    (entry,) = await asyncio.to_thread(client.keys, "n0")
    assert entry == KeyEntry("k0", "n1", bytes(32), 256)
    assert await asyncio.to_thread(client.revoke, "n1", ["k0"], "test") == ["k0"]
    assert supervisor.network.revoked == ["k0"]
    assert "n0-n1 cut" in await asyncio.to_thread(client.fault, "cut", "n0", "n1")
    said = await asyncio.to_thread(client.fault, "impair", "n0", "n1", {"intercept_resend_fraction": 0.5})
    assert "intercept-resend 50%" in said
    assert [f["fault"] for f in await asyncio.to_thread(client.faults)] == ["cut", "impair"]
    assert status.nodes["n0"].metrics == "https://127.0.0.1:90/metrics"
    await asyncio.to_thread(client.down)
    assert supervisor.stopping.is_set()


@pytest.mark.parametrize("call, message", [
    (lambda c: c.relay("n0", "n9"), "unknown node 'n9'"),
    (lambda c: c.relay("n0", "n1", 0), "count must be"),
    (lambda c: c.relay("n0", "n1", 1, 12), "multiple of 8"),
    (lambda c: c.relay("n0", "n1", strategy="dijkstra"), "unknown routing strategy"),
    (lambda c: c.relay("n0", "n1", strategy="multipath"), "only 1 node-disjoint path"),
    (lambda c: c.keys("n7"), "unknown node 'n7'"),
    (lambda c: c.revoke("n0", [], "x"), "non-empty list"),
    (lambda c: c.fault("cut", "n0", "n9"), "unknown node 'n9'"),
    (lambda c: c.fault("melt", "n0", "n1"), "unknown fault 'melt'"),
    (lambda c: c.fault("impair", "n0", "n1", {"intercept_resend_fraction": 2}), r"fraction must be in \[0, 1\]"),
    (lambda c: c.fault("impair", "n0", "n1", {"eve": 1}), "an impairment has the fields"),
    (lambda c: c.fault("impair", "n0", "n1", {"extra_loss_db": "lots"}), "bad impairment|must be"),
    (lambda c: c.node_fault("kill", "n8"), "unknown node 'n8'"),
])
async def test_wrong_requests_are_one_line_errors(client, call, message):
    client, _ = client
    with pytest.raises(QkdnetError, match=message):
        await asyncio.to_thread(call, client)


def test_no_network_up_is_one_line(tmp_path):
    with pytest.raises(QkdnetError, match="no network is up"):
        SupervisorClient(StateDir(tmp_path)).status()
