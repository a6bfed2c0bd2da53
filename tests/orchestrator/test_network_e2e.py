"""Real node processes on loopback (slow; run in CI)."""

import asyncio
import os
import signal
import sys

import pytest

from qkdnet.orchestrator.network import Network, comparison_salt
from qkdnet.orchestrator.topology import load
from tests.helpers import eventually

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    """Running and not a zombie (an orphan's zombie waits for whoever reaps it)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


async def test_five_node_line_relays_100_keys_end_to_end():
    network = Network(load("line:5"), time_scale=0, seed=42)
    await network.start()
    pids = [h.local_process.pid for h in network.nodes.values()]
    try:
        delivered = []
        for _ in range(10):
            report = await network.relay("n0", "n4", count=10, key_bits=256, timeout_s=120)
            assert report.error == "" and report.path == ["n0", "n1", "n2", "n3", "n4"]
            delivered += report.key_ids
        # Concurrent one-key requests share batches at the source; each still gets its own key.
        singles = await asyncio.gather(*(network.relay("n0", "n4", count=1, key_bits=256, timeout_s=120)
                                         for _ in range(20)))
        assert all(r.error == "" and len(r.key_ids) == 1 for r in singles)
        delivered += [r.key_ids[0] for r in singles]
        assert len(delivered) == 120 == len(set(delivered))

        salt = comparison_salt()
        at_source = {k.key_id: k.digest for k in await network.list_keys("n0", salt=salt)}
        at_destination = {k.key_id: k.digest for k in await network.list_keys("n4", salt=salt)}
        assert set(delivered) <= set(at_source) and set(delivered) <= set(at_destination)
        assert all(at_source[k] == at_destination[k] for k in delivered)
        assert len(set(at_source.values())) == len(at_source)  # no two keys alike

        status = await network.status()
        for name, node in status.items():
            for link in node.links:
                assert link.generated_bits == link.pool_bits + link.consumed_bits + link.discarded_bits, (name, link)
        # Both ends of every link consumed exactly the same bits: what one sent, the other took.
        pairs = [("n0", "n1"), ("n1", "n2"), ("n2", "n3"), ("n3", "n4")]
        for u, v in pairs:
            a = next(l for l in status[u].links if l.peer == v)
            b = next(l for l in status[v].links if l.peer == u)
            assert a.consumed_bits == b.consumed_bits == 120 * 256
        # Links keep generating, so one end may have accepted a block the other is still
        # finishing; between blocks both ends hold the same generated total.
        async def ends_agree():
            status = await network.status()
            ends = [(status[u].link_to(v), status[v].link_to(u)) for u, v in pairs]
            return all(a.generated_bits == b.generated_bits for a, b in ends)
        await eventually(ends_agree, 30, "link ends agreeing on generated bits")
    finally:
        await network.stop()
    await eventually(lambda: not any(_alive(pid) for pid in pids), 30, "every node process gone")


async def test_a_dead_node_fails_relays_through_it_cleanly_and_the_rest_works():
    network = Network(load("ring:5"), time_scale=0, seed=7)
    await network.start()
    pids = [h.local_process.pid for h in network.nodes.values()]
    try:
        await network.wait_for_link_key(4096, 120)
        victim = network.nodes["n1"]
        os.kill(victim.local_process.pid, signal.SIGKILL)
        await eventually(lambda: "n1" in network.failures(), 30, "n1's death noticed")
        assert "n1" in network.failures()
        # Routing avoids the dead node; n0 -> n2 goes the long way round the ring.
        report = await network.relay("n0", "n2", count=2, key_bits=256, timeout_s=60)
        assert report.error == "" and "n1" not in report.path
        # A relay forced through it fails without leaving a key at either end.
        reply = await network.relay("n0", "n2", 1, 256, 5, [["n0", "n1", "n2"]])
        assert reply.error and not reply.key_ids
        status = await network.status()
        assert status["n1"] is None
        link = next(l for l in status["n0"].links if l.peer == "n1")
        assert link.discarded_bits >= 256
        assert link.generated_bits == link.pool_bits + link.consumed_bits + link.discarded_bits
    finally:
        await network.stop()
    await eventually(lambda: not any(_alive(pid) for pid in pids), 30, "every node process gone")


async def test_nodes_die_with_a_killed_orchestrator(tmp_path):
    script = tmp_path / "orch.py"
    script.write_text(
        "import asyncio, os, sys\n"
        "from orchestrator.network import Network, comparison_salt\n"
        "from orchestrator.topology import load\n"
        "async def main():\n"
        "    net = Network(load('line:3'), time_scale=0)\n"
        "    await net.start()\n"
        "    print(' '.join(str(h.local_process.pid) for h in net.nodes.values()), flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])))
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    pids = [int(p) for p in line.split()]
    assert pids and all(_alive(p) for p in pids)
    proc.kill()
    await proc.wait()
    await eventually(lambda: not any(_alive(p) for p in pids), 30, "the orphaned nodes gone")


async def test_a_link_reconciled_by_ldpc_relays_beside_one_reconciled_by_cascade(tmp_path):
    """Node processes run the one-way LDPC exchange over gRPC like Cascade's: n0-n1 uses LDPC,
    n1-n2 Cascade; keys relayed across both are identical at both ends."""
    path = tmp_path / "mixed.yaml"
    path.write_text("nodes: [n0, n1, n2]\nprocessing: {block_detections: 200000}\n"
                    "links:\n  - {source: n0, target: n1, length_km: 10, reconciler: ldpc}\n"
                    "  - {source: n1, target: n2, length_km: 10}\n")
    network = Network(load(str(path)), time_scale=0, seed=5)
    await network.start()
    try:
        report = await network.relay("n0", "n2", count=20, key_bits=256, timeout_s=120)
        assert report.error == "" and len(report.key_ids) == 20
        salt = comparison_salt()
        at_source = {k.key_id: k.digest for k in await network.list_keys("n0", salt=salt)}
        at_destination = {k.key_id: k.digest for k in await network.list_keys("n2", salt=salt)}
        assert all(at_source[k] == at_destination[k] for k in report.key_ids)
        status = await network.status()
        for name in ("n0", "n1"):
            ldpc_link = next(link for link in status[name].links if {name, link.peer} == {"n0", "n1"})
            assert ldpc_link.generated_bits > 0, ldpc_link
    finally:
        await network.stop()
