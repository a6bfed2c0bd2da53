"""The controller attaching to nodes it did not start (slow; run in CI).

Each node is started by the test on its own, as an operator or a container would: `qkdnet node`
with its own listen address, advertised address, data directory and identity files. The
topology's deployment section says where each one lives.
"""

import asyncio
import dataclasses
import json
import os
import sys

import pytest

from qkdnet.orchestrator import certs
from qkdnet.orchestrator.errors import NodeFailure
from qkdnet.orchestrator.network import Network, comparison_salt
from qkdnet.orchestrator.topology import load
from tests.helpers import etsi_pair, eventually

pytestmark = pytest.mark.slow

CAPACITY_BITS = 40_000  # one or two blocks: generation stops at capacity, so statistics can be compared


async def _start_node(name, pki, data_dir, listen="127.0.0.1:0", advertise=None):
    cert, key = pki.node[name]
    kme_cert, kme_key = pki.kme[name]
    argv = [sys.executable, "-m", "qkdnet.node", "--name", name, "--listen", listen, "--data-dir", str(data_dir),
            "--cert", str(cert), "--key", str(key), "--ca", str(pki.ca_file), "--kme-cert", str(kme_cert),
            "--kme-key", str(kme_key)]
    if advertise:
        argv += ["--advertise", advertise]
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE,
                                                   env=dict(os.environ, GRPC_VERBOSITY="NONE"))
    ready = json.loads(await process.stdout.readline())
    assert ready["event"] == "ready" and ready["name"] == name
    return process, ready["address"]


@pytest.fixture
async def attached(tmp_path):
    """Three nodes of line:3 started on their own, and the topology that places them."""
    topology = load("line:3")
    topology = dataclasses.replace(topology, pool_capacity_bits=CAPACITY_BITS)
    pki = certs.create(topology, tmp_path / "pki")
    processes, deployment = {}, {}
    for name in topology.nodes:
        processes[name], deployment[name] = await _start_node(name, pki, tmp_path / "nodes" / name)
    yield dataclasses.replace(topology, deployment=deployment), pki, processes
    for process in processes.values():
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _full(network):
    """Each link's statistics once both its ends are full (generation paused: nothing changes)."""
    async def all_full():
        return all(link.state == "full" for node in (await network.status()).values() for link in node.links)
    await eventually(all_full, 120, "every link full")
    status = await network.status()
    return {(name, link.peer): (link.blocks_accepted, link.qber, link.sifted_bits, link.generated_bits)
            for name, node in status.items() for link in node.links}


async def test_attached_nodes_relay_serve_etsi_and_match_a_local_network(attached, tmp_path):
    topology, pki, processes = attached
    network = Network(topology, time_scale=0, seed=7, certs=pki)
    await network.start()
    try:
        assert all(h.process is None for h in network.nodes.values())
        attached_stats = await _full(network)
        report = await network.relay("n0", "n2", count=5, key_bits=256, timeout_s=60)
        assert report.ok and len(report.key_ids) == 5
        salt = comparison_salt()
        source = {k.key_id: k.digest for k in await network.list_keys("n0", salt=salt)}
        destination = {k.key_id: k.digest for k in await network.list_keys("n2", salt=salt)}
        assert all(source[k] == destination[k] for k in report.key_ids)

        # ETSI GS QKD 014 at the attached nodes' KMEs, at the URLs they advertise.
        await etsi_pair(pki, network.nodes["n0"].kme_url, network.nodes["n2"].kme_url, "sae-n0", "sae-n2")
    finally:
        await network.stop()
    # The controller configured them, so it shut them down (what runs them starts them again).
    codes = await asyncio.gather(*(asyncio.wait_for(p.wait(), 30) for p in processes.values()))
    assert codes == [0, 0, 0]

    # The same topology and seed with local processes: the same link statistics, block by block.
    local = Network(dataclasses.replace(topology, deployment={}), time_scale=0, seed=7, data_dir=tmp_path / "local")
    await local.start()
    try:
        assert await _full(local) == attached_stats
    finally:
        await local.stop()


async def test_unreachable_or_wrong_node_is_one_error_naming_it_and_nothing_is_touched(attached):
    topology, pki, processes = attached
    deployment = dict(topology.deployment)
    deployment["n1"] = deployment["n2"]  # n2 answers where n1 should: its certificate says n2
    network = Network(dataclasses.replace(topology, deployment=deployment), certs=pki, attach_timeout_s=1.0)
    with pytest.raises(NodeFailure, match=rf"node n1 at {deployment['n1']}: never became healthy"):
        await network.start()

    deployment["n1"] = "127.0.0.1:9"  # nothing listens there
    network = Network(dataclasses.replace(topology, deployment=deployment), certs=pki, attach_timeout_s=1.0)
    with pytest.raises(NodeFailure, match=r"node n1 at 127.0.0.1:9: never became healthy: UNAVAILABLE"):
        await network.start()

    # Nodes it reached but never configured are left running and unconfigured: a right
    # deployment still attaches to them.
    assert all(p.returncode is None for p in processes.values())
    network = Network(topology, time_scale=0, seed=1, certs=pki)
    await network.start()
    try:
        assert (await network.relay("n0", "n2", count=1, key_bits=256, timeout_s=60)).ok
    finally:
        await network.stop()


async def test_a_node_listens_on_every_interface_and_advertises_a_name(tmp_path):
    topology = load("line:2")
    pki = certs.create(topology, tmp_path / "pki")
    process, address = await _start_node("n0", pki, tmp_path / "n0", listen="0.0.0.0:0", advertise="localhost")
    try:
        host, port = address.rsplit(":", 1)
        assert host == "localhost" and int(port) > 0
        solo = dataclasses.replace(load("line:2"), deployment={"n0": address, "n1": "127.0.0.1:9"})
        with pytest.raises(NodeFailure, match="node n1 at 127.0.0.1:9"):
            await Network(solo, certs=pki, attach_timeout_s=0.5).start()
    finally:
        process.kill()
        await process.wait()


def _identity_dir(pki, name, directory):
    """A node's identity as a mounted secret holds it (the names `qkdnet node --identity-dir` reads)."""
    directory.mkdir(parents=True)
    cert, key = pki.node[name]
    kme_cert, kme_key = pki.kme[name]
    for file_name, source in {"node.pem": cert, "node.key": key, "ca.pem": pki.ca_file, "kme.pem": kme_cert,
                              "kme.key": kme_key}.items():
        (directory / file_name).write_bytes(source.read_bytes())
    return directory


async def test_identity_dir_and_health_probe_with_the_nodes_own_identity(tmp_path):
    topology = load("line:2")
    pki = certs.create(topology, tmp_path / "pki")
    own = _identity_dir(pki, "n0", tmp_path / "secret-n0")
    other = _identity_dir(pki, "n1", tmp_path / "secret-n1")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qkdnet.node", "--name", "n0", "--identity-dir", str(own), "--data-dir",
        str(tmp_path / "n0"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ, GRPC_VERBOSITY="NONE"))
    try:
        address = json.loads(await process.stdout.readline())["address"]

        async def probe(identity_dir):
            run = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "qkdnet.node.probe", "--name", "n0", "--identity-dir", str(identity_dir),
                address, stdout=asyncio.subprocess.PIPE, env=dict(os.environ, GRPC_VERBOSITY="NONE"))
            out, _ = await run.communicate()
            return run.returncode, out.decode().strip()

        assert await probe(own) == (0, f"n0 at {address}: SERVING")
        assert await probe(other) == (1, f"n0 at {address}: PERMISSION_DENIED")  # n1 may not ask n0's health
    finally:
        process.kill()
        await process.wait()


def test_cli_attach_needs_the_pki_and_names_an_unreachable_node(tmp_path, capsys):
    from qkdnet.orchestrator.cli import main

    topology = tmp_path / "placed.yaml"
    topology.write_text("nodes: [n0, n1]\nlinks: [{source: n0, target: n1}]\n"
                        "deployment: {n0: '127.0.0.1:9', n1: '127.0.0.1:9'}\n")
    assert main(["run", str(topology)]) == 2
    assert "give their PKI, --certs DIR" in capsys.readouterr().err
    certs.create(load(str(topology)), tmp_path / "pki")
    assert main(["run", str(topology), "--certs", str(tmp_path / "pki"), "--attach-timeout", "0.5", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qkdnet: error: node n") and "at 127.0.0.1:9: never became healthy" in err
    assert len(err.splitlines()) == 1


async def test_an_experiment_attaches_for_every_run_and_starts_each_from_empty_stores(attached, tmp_path):
    """`qkdnet experiment` on nodes it did not start: each run attaches, configures them with a
    fresh start (the keys and pools of the run before are destroyed, audited), relays and
    collects, then shuts them down; here the test starts them again, as a restart policy would."""
    from qkdnet.node.keystore.store import open_tables
    from qkdnet.orchestrator.experiment.config import load_config
    from qkdnet.orchestrator.experiment.runner import run_experiment

    topology, pki, processes = attached
    restarts = dict.fromkeys(processes, 0)

    async def keep_running(name):  # what Compose's `restart:` or a StatefulSet does
        while True:
            await processes[name].wait()
            restarts[name] += 1
            processes[name], _ = await _start_node(name, pki, tmp_path / "nodes" / name,
                                                   listen=topology.deployment[name])

    (tmp_path / "exp.yaml").write_text("""
name: attached
topology: line:3
duration_s: 4
warmup_key_bits: 2048
clock: realtime
time_scale: 1
poll_s: 1
demand:
  poisson:
    - {source: n0, destination: n2, rate_per_s: 3}
strategies: [fewest_hops, load_balancing]
seeds: [5]
""")
    config = dataclasses.replace(load_config(tmp_path / "exp.yaml"), topology=topology)
    keepers = [asyncio.create_task(keep_running(name)) for name in processes]
    try:
        results = await run_experiment(config, certs=pki)
        await eventually(lambda: all(count >= len(results) - 1 for count in restarts.values()), 30,
                         "every node started again between runs")
    finally:
        for keeper in keepers:
            keeper.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
    assert [r.strategy for r in results] == ["fewest_hops", "load_balancing"]
    assert len(results[0].requests) == len(results[1].requests) > 0  # the same demand on each
    delivered = [{r["key_id"] for r in run.requests if r["outcome"] == "delivered"} for run in results]
    assert all(delivered)
    assert all(link["balanced"] for run in results for link in run.links)
    # The second run's fresh start destroyed the first run's keys at the source, in its audit.
    tables = open_tables(tmp_path / "nodes" / "n0" / "keys.db")
    try:
        revoked = {e["key_id"] for e in tables.audit.entries()
                   if e["event"] == "revoked" and "fresh start" in json.dumps(e)}
    finally:
        tables.close()
    assert delivered[0] <= revoked and not delivered[1] & revoked
