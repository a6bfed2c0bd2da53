"""--isolation netns: every node in its own network namespace (root; slow; run in CI)."""

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest

from qkdnet.orchestrator import netns
from qkdnet.orchestrator.network import Network
from qkdnet.orchestrator.stats import percentile
from qkdnet.orchestrator.topology import load
from tests.helpers import etsi_pair, eventually

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)")]

SMALL_POOLS = 200_000  # a few blocks: generation pauses, the relays measure the classical channel


def _topology(spec: str, **classical):
    topology = load(spec)
    links = tuple(dataclasses.replace(link, classical=dataclasses.replace(link.classical, **classical))
                  for link in topology.links)
    for link in links:
        topology.graph.edges[link.transmitter, link.receiver]["link"] = link
    return dataclasses.replace(topology, links=links, pool_capacity_bits=SMALL_POOLS)


def _connects(namespace: str, address: str, port: int) -> bool:
    """Can a TCP connection be opened from inside ``namespace``?"""
    probe = ("import socket,sys\ns=socket.socket()\ns.settimeout(1.0)\n"
             f"sys.exit(0 if s.connect_ex(({address!r},{port}))==0 else 1)")
    return subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", probe]).returncode == 0


async def test_namespaced_network_relays_serves_etsi_to_the_host_and_isolates_non_neighbours():
    network = Network(_topology("line:3"), time_scale=0, seed=3, isolation="netns")
    await network.start()
    fabric = network.fabric
    assert fabric is not None
    try:
        report = await network.relay("n0", "n2", count=3, key_bits=256, timeout_s=120)
        assert report.ok and len(report.key_ids) == 3
        # Applications on the host reach KMEs in different namespaces over the management network.
        assert network.nodes["n0"].kme_url.startswith(f"https://{fabric.management_address('n0')}:")
        await etsi_pair(network.certs, network.nodes["n0"].kme_url, network.nodes["n2"].kme_url, "sae-n0", "sae-n2")
        # n0 reaches its neighbour n1 over their link, and n2 neither over a link nor the management bridge.
        n0 = fabric.namespace("n0")
        assert await asyncio.to_thread(_connects, n0, fabric.address_towards("n0", "n1"), 50051)
        assert not await asyncio.to_thread(_connects, n0, fabric.address_towards("n1", "n2"), 50051)
        assert not await asyncio.to_thread(_connects, n0, fabric.management_address("n2"), 50051)
    finally:
        await network.stop()
    namespaces, interfaces = netns.leftovers()
    assert fabric.namespace("n0") not in namespaces and fabric.bridge not in interfaces


async def _relay_p50_ms(network: Network, relays: int = 15) -> float:
    latencies = []
    for _ in range(relays):
        started = time.perf_counter()
        report = await network.relay("n0", "n3", count=1, key_bits=256, timeout_s=120)
        assert report.ok, report.error
        latencies.append(1000 * (time.perf_counter() - started))
    value = percentile(latencies[1:], 0.5)  # the first opens the channels
    assert value is not None
    return value


@pytest.mark.skipif(os.geteuid() != 0 or not netns.kernel_has_netem(),
                    reason="this kernel has no netem qdisc (sch_netem): packets cannot be delayed")
async def test_classical_delay_raises_a_three_hop_relay_by_at_least_30_ms():
    p50 = {}
    for delay_ms in (0.0, 10.0):
        network = Network(_topology("line:4", delay_ms=delay_ms), time_scale=0, seed=5, isolation="netns")
        await network.start()
        try:
            if delay_ms:
                fabric = network.fabric
                assert fabric is not None
                shown = subprocess.run(["tc", "-n", fabric.namespace("n1"), "qdisc", "show"], capture_output=True,
                                       text=True).stdout
                assert "netem" in shown and "delay 10ms" in shown
            await network.wait_for_link_key(2048, 300)
            p50[delay_ms] = await _relay_p50_ms(network)
        finally:
            await network.stop()
    # Each hop's Forward and its answer cross a link whose two ends each delay 10 ms.
    assert p50[10.0] - p50[0.0] >= 30, p50


async def test_a_cut_takes_the_link_interfaces_down_and_relays_route_around():
    network = Network(_topology("ring:4"), time_scale=0, seed=9, isolation="netns")
    await network.start()
    fabric = network.fabric
    assert fabric is not None
    try:
        await network.wait_for_link_key(2048, 300)
        await network.cut_link("n0", "n1")
        ends = fabric.links[frozenset(("n0", "n1"))]
        for node, interface in ((ends.u, ends.u_interface), (ends.v, ends.v_interface)):
            shown = subprocess.run(["ip", "-n", fabric.namespace(node), "link", "show", "dev", interface],
                                   capture_output=True, text=True).stdout
            assert "state DOWN" in shown or ",UP" not in shown, shown
        report = await network.relay("n0", "n1", count=1, key_bits=256, timeout_s=120)
        assert report.ok and report.path == ["n0", "n3", "n2", "n1"]
    finally:
        await network.stop()


CONTROLLER = """
import asyncio, sys
from qkdnet.orchestrator.network import Network
from qkdnet.orchestrator.topology import load
async def main():
    network = Network(load("line:3"), time_scale=0, seed=1, isolation="netns")
    await network.start()
    print(network.fabric.run_id, flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def test_cleanup_after_the_controller_is_killed_leaves_nothing_behind():
    controller = await asyncio.create_subprocess_exec(sys.executable, "-c", CONTROLLER, stdout=asyncio.subprocess.PIPE)
    run_id = (await controller.stdout.readline()).decode().strip()
    assert run_id
    ours = [f"{netns.NAMESPACE_PREFIX}{run_id}-{i}" for i in range(3)]
    assert set(ours) <= set(netns.leftovers()[0])
    pids = [int(p) for ns in ours for p in subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                                         text=True).stdout.split()]
    assert len(pids) == 3  # one node process in each namespace
    controller.send_signal(signal.SIGKILL)
    await controller.wait()
    from qkdnet.orchestrator.cli import main

    assert main(["cleanup"]) == 0
    namespaces, interfaces = netns.leftovers()
    assert not [n for n in namespaces if run_id in n] and not [i for i in interfaces if run_id in i]

    def gone(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/status") as status:
                return any(line.startswith("State:") and "Z" in line for line in status)  # a zombie is gone too
        except FileNotFoundError:
            return True
    await eventually(lambda: all(gone(pid) for pid in pids), 30, "no node process of the killed run")


async def test_a_rate_limit_is_a_token_bucket_and_no_netem_kernel_says_what_it_cannot_do():
    network = Network(_topology("line:2", rate_mbit=20.0), time_scale=0, seed=2, isolation="netns")
    await network.start()
    try:
        fabric = network.fabric
        assert fabric is not None
        ends = fabric.links[frozenset(("n0", "n1"))]
        shown = subprocess.run(["tc", "-n", fabric.namespace("n0"), "qdisc", "show", "dev", ends.u_interface],
                               capture_output=True, text=True).stdout
        assert "tbf" in shown and "rate 20Mbit" in shown
        assert (await network.relay("n0", "n1", count=1, key_bits=256, timeout_s=120)).ok
    finally:
        await network.stop()
    if not netns.kernel_has_netem():
        delayed = Network(_topology("line:2", delay_ms=5.0), time_scale=0, seed=2, isolation="netns")
        with pytest.raises(netns.QkdnetError, match="no netem qdisc"):
            await delayed.start()
        assert not [n for n in netns.leftovers()[0] if delayed.fabric and delayed.fabric.run_id in n]


def test_without_root_one_line_says_so(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(netns.QkdnetError, match="needs root"):
        netns.check_available()
