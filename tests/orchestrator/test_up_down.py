"""`qkdnet up` leaves a network running; status, relay and down work against it; nothing survives down."""

import json
import os
import ssl
import subprocess
import sys
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def _qkdnet(state, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "qkdnet.orchestrator", *args, "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=timeout)


def _alive(pid):
    from qkdnet.orchestrator.state import process_alive

    return process_alive(pid)


def test_up_status_relay_down(tmp_path):
    state = tmp_path / "s"
    endpoints = tmp_path / "endpoints.json"
    pki = tmp_path / "pki"  # made once, reused by `up`: SAE certificates stay valid across networks
    made = subprocess.run([sys.executable, "-m", "qkdnet.orchestrator", "certs", "line:3", str(pki)], capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    up = _qkdnet(state, "up", "line:3", "--time-scale", "0", "--seed", "3", "--json", str(endpoints), "--quiet",
                 "--certs", str(pki))
    assert up.returncode == 0, up.stderr
    info = json.loads(endpoints.read_text())
    supervisor = info["supervisor_pid"]
    try:
        assert set(info["nodes"]) == {"n0", "n1", "n2"}
        assert all(e["grpc"].startswith("127.0.0.1:") for e in info["nodes"].values())
        assert all(e["kme"].startswith("https://127.0.0.1:") for e in info["nodes"].values())
        assert info["certs_dir"] == str(pki.resolve())
        context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        context.load_cert_chain(str(pki / "sae" / "sae-n0.pem"), str(pki / "sae" / "sae-n0.key"))
        url = info["nodes"]["n0"]["kme"] + "/api/v1/keys/sae-n2/status"
        with urllib.request.urlopen(url, context=context, timeout=30) as reply:
            assert json.load(reply)["slave_SAE_ID"] == "sae-n2"
        again = _qkdnet(state, "up", "line:3")
        assert again.returncode == 2 and "already up" in again.stderr

        relay = _qkdnet(state, "relay", "n0", "n2", "--keys", "3", "--timeout", "60", "--json")
        assert relay.returncode == 0, relay.stderr
        reply = json.loads(relay.stdout)
        assert reply["path"] == ["n0", "n1", "n2"] and len(reply["key_ids"]) == 3
        assert reply["link_bits_consumed"] == 3 * 256 * 2

        unknown = _qkdnet(state, "relay", "n0", "n9")
        assert unknown.returncode == 2 and "unknown node 'n9'" in unknown.stderr
        unroutable = _qkdnet(state, "relay", "n0", "n2", "--strategy", "multipath")
        assert unroutable.returncode == 2 and "only 1 node-disjoint path" in unroutable.stderr

        revoked = _qkdnet(state, "revoke", "n2", reply["key_ids"][0], "--reason", "test")
        assert revoked.returncode == 0 and "revoked 1 key(s) at n2" in revoked.stdout
        again = _qkdnet(state, "revoke", "n2", reply["key_ids"][0], reply["key_ids"][1])
        assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1

        status = json.loads(_qkdnet(state, "status", "--json").stdout)
        assert all(n["alive"] for n in status["nodes"].values())
        assert {l["link"] for l in status["links"]} == {"n0-n1", "n1-n2"}
        assert all(l["consumed_bits"] >= 3 * 256 and l["balanced"] for l in status["links"])
        node_pids = _descendants(supervisor)
        assert len(node_pids) == 4  # the node launcher and the three nodes it forked
    finally:
        down = _qkdnet(state, "down")
    assert down.returncode == 0, down.stderr
    assert not _alive(supervisor)
    assert not any(_alive(pid) for pid in node_pids)
    after = _qkdnet(state, "status")
    assert after.returncode == 2 and "no network is up" in after.stderr


def _descendants(root):
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def test_up_in_virtual_time_keeps_the_clock_moving_and_serves_relays(tmp_path):
    """The supervisor advances the network's clock as fast as the links make key: pools grow,
    relays are served from them (never waiting for key), and every link covers the clock."""
    import time

    state = tmp_path / "s"
    up = _qkdnet(state, "up", "line:3", "--clock", "virtual", "--seed", "3", "--quiet")
    assert up.returncode == 0, up.stderr
    try:
        deadline = time.monotonic() + 300
        while True:  # a relay fails at once while a link has no key yet; the clock then moves on
            relay = _qkdnet(state, "relay", "n0", "n2", "--keys", "2", "--json")
            if relay.returncode == 0 or time.monotonic() > deadline:
                break
        assert relay.returncode == 0, relay.stderr
        assert len(json.loads(relay.stdout)["key_ids"]) == 2
        status = json.loads(_qkdnet(state, "status", "--json").stdout)
        assert all(l["clock_ratio"] == 1.0 and l["blocks_accepted"] > 0 and l["balanced"] for l in status["links"])
    finally:
        down = _qkdnet(state, "down")
    assert down.returncode == 0, down.stderr
