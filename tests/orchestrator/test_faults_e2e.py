"""Faults injected from the command line into a network `qkdnet up` left running (slow; run in CI):
a cut and its repair, a node killed and restarted, impairments, the fault log, the metrics
endpoints in `status`, and bad input refused with one line and nothing changed."""

import json
import time

import pytest

from tests.orchestrator.test_up_down import _qkdnet

pytestmark = pytest.mark.slow


def _relay_path(state, source, destination):
    relay = _qkdnet(state, "relay", source, destination, "--timeout", "60", "--json")
    assert relay.returncode == 0, relay.stderr
    return json.loads(relay.stdout)["path"]


def _link(state, name):
    status = json.loads(_qkdnet(state, "status", "--json").stdout)
    return next(l for l in status["links"] if l["link"] == name)


def test_cut_restore_kill_restart_and_impair_from_the_command_line(tmp_path):
    state = tmp_path / "s"
    up = _qkdnet(state, "up", "ring:4", "--time-scale", "0", "--seed", "5", "--quiet")
    assert up.returncode == 0, up.stderr
    try:
        status = json.loads(_qkdnet(state, "status", "--json").stdout)
        assert all(n["metrics"].startswith("https://127.0.0.1:") for n in status["nodes"].values())
        assert "/metrics" in _qkdnet(state, "status").stdout

        # Bad input: one line, exit 2, and nothing changed (the fault log stays empty).
        for args, message in ((["cut", "n0", "n9"], "unknown node 'n9'"),
                              (["cut", "n0", "n2"], "no link between"),
                              (["restore", "n0", "n1"], "not cut"),
                              (["impair", "n0", "n1", "--intercept-resend", "1.5"], "fraction must be in [0, 1]"),
                              (["impair", "n0", "n1", "--intercept-resend", "nan"], "must be finite"),
                              (["restart", "n1"], "is running"),
                              (["kill", "n7"], "unknown node 'n7'")):
            bad = _qkdnet(state, "fault", *args)
            assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
            assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
        assert "no faults injected" in _qkdnet(state, "fault", "list").stdout
        elsewhere = _qkdnet(tmp_path / "none", "fault", "cut", "n0", "n1")
        assert elsewhere.returncode == 2 and "no network is up" in elsewhere.stderr

        # A cut: relays go the long way round; repaired, the link makes key again and relays use it.
        assert _relay_path(state, "n0", "n1") == ["n0", "n1"]
        cut = _qkdnet(state, "fault", "cut", "n0", "n1")
        assert cut.returncode == 0 and "n0-n1 cut" in cut.stdout
        assert _link(state, "n0-n1")["state"] == "cut"
        assert _relay_path(state, "n0", "n1") == ["n0", "n3", "n2", "n1"]
        generated = _link(state, "n0-n1")["generated_bits"]
        restored = _qkdnet(state, "fault", "restore", "n0", "n1")
        assert restored.returncode == 0, restored.stderr
        deadline = time.monotonic() + 120
        while _link(state, "n0-n1")["generated_bits"] <= generated:  # polls a condition, bounded
            assert time.monotonic() < deadline, "no new key after the repair"
        assert _relay_path(state, "n0", "n1") == ["n0", "n1"]
        assert _link(state, "n0-n1")["balanced"]

        # A node killed and restarted from its key store.
        assert _qkdnet(state, "fault", "kill", "n2").returncode == 0
        assert not json.loads(_qkdnet(state, "status", "--json").stdout)["nodes"]["n2"]["alive"]
        assert _relay_path(state, "n1", "n3") == ["n1", "n0", "n3"]
        restart = _qkdnet(state, "fault", "restart", "n2")
        assert restart.returncode == 0, restart.stderr
        assert json.loads(_qkdnet(state, "status", "--json").stdout)["nodes"]["n2"]["alive"]

        # An impairment switched on and off; every fault is in the log with its time.
        impaired = _qkdnet(state, "fault", "impair", "n1", "n2", "--extra-loss-db", "3", "--intercept-resend", "0.1")
        assert impaired.returncode == 0 and "+3 dB" in impaired.stdout and "intercept-resend 10%" in impaired.stdout
        cleared = _qkdnet(state, "fault", "clear", "n1", "n2")
        assert cleared.returncode == 0 and "healthy" in cleared.stdout
        log = _qkdnet(state, "fault", "list").stdout.splitlines()
        assert [line.split()[1] for line in log] == ["cut", "restore", "kill", "restart", "impair", "impair"]
    finally:
        down = _qkdnet(state, "down")
    assert down.returncode == 0, down.stderr
