"""Experiment files: validation with one-line errors, and reproducible demand."""

import re
import subprocess
import sys

import pytest

from qkdnet.node.impairment import Impairment
from qkdnet.node.settings import ClockMode
from qkdnet.orchestrator.experiment.config import ConfigError, PoissonDemand, load_config
from qkdnet.orchestrator.experiment.demand import poisson_arrivals, trace_arrivals

GOOD = """
name: t
topology: ring:4
duration_s: 100
time_scale: 2
demand:
  poisson:
    - {source: n0, destination: n2, rate_per_s: 3}
    - {source: n1, destination: n3, rate_per_s: 1, key_bits: 512}
strategies: [fewest_hops, {name: multipath, k: 2}]
events:
  - {at_s: 50, cut: [n0, n1]}
  - {at_s: 70, restore: [n0, n1]}
  - {at_s: 20, impair: [n1, n2], with: {intercept_resend_fraction: 0.5, extra_loss_db: 2}}
  - {at_s: 40, impair: [n1, n2]}
  - {at_s: 60, burst: {source: n0, destination: n2, requests: 50}}
"""


def _write(tmp_path, text):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_a_good_file_loads(tmp_path):
    config = load_config(_write(tmp_path, GOOD))
    assert [s.label for s in config.strategies] == ["fewest_hops", "multipath-k2"]
    assert config.events[0].u == "n0" and config.time_scale == 2.0 and config.seeds == (1,)
    assert [e.kind for e in config.events] == ["cut", "restore", "impair", "impair", "burst"]
    assert (config.events[4].requests, config.events[4].key_bits) == (50, 256)
    assert config.events[2].impairment == Impairment(extra_loss_db=2.0, intercept_resend_fraction=0.5)
    assert config.events[3].impairment == Impairment()  # no fields: healthy again
    assert config.clock is ClockMode.VIRTUAL and config.clock_step_s == 0.01  # results independent of the host
    realtime = load_config(_write(tmp_path, GOOD + "clock: realtime\nclock_step_s: 0.5\n"))
    assert realtime.clock is ClockMode.REALTIME and realtime.clock_step_s == 0.5


@pytest.mark.parametrize("change, message", [
    (("rate_per_s: 3", "rate_per_s: -3"), "rate_per_s must be a positive number"),
    (("destination: n2", "destination: n9"), "unknown node 'n9'"),
    (("duration_s: 100", "duration_s: soon"), "duration_s must be a number"),
    (("[fewest_hops,", "[dijkstra,"), "unknown routing strategy 'dijkstra'"),
    (("k: 2", "k: 1"), "k must be an integer >= 2"),
    (("cut: [n0, n1]", "cut: [n0, n2]"), "n0-n2, which is not a link"),
    (("intercept_resend_fraction: 0.5", "intercept_resend_fraction: 1.5"), "fraction must be in [0, 1]"),
    (("intercept_resend_fraction: 0.5", "eavesdropper: 0.5"), "an impairment has the fields"),
    (("restore: [n0, n1]}", "restore: [n0, n1], cut: [n0, n1]}"), "an event is"),
    (("{at_s: 40, impair: [n1, n2]}", "{at_s: 40, impair: [n1, n2], with: 3}"), "an impairment has the fields"),
    (("requests: 50", "requests: 0"), "requests must be an integer from 1"),
    (("destination: n2, requests", "destination: n0, requests"), "two different nodes"),
    (("source: n0, destination: n2, requests", "source: n7, destination: n2, requests"), "unknown node 'n7'"),
    (("requests: 50}", "requests: 50, colour: red}"), "an event is"),
    (("name: t", "colour: blue"), "unknown key(s) colour"),
    (("time_scale: 2", "clock: sundial"), "clock must be one of realtime, virtual, got 'sundial'"),
    (("time_scale: 2", "clock_step_s: 0"), "clock_step_s must be positive, got 0"),
    (("time_scale: 2", "clock_step_s: -0.5"), "clock_step_s must be positive, got -0.5"),
    (("time_scale: 2", "hop_processing_s: -1"), "hop_processing_s must be non-negative"),
    (("time_scale: 2", "lookahead_s: 0"), "lookahead_s must be positive, got 0"),
])
def test_bad_files_name_the_problem(tmp_path, change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(_write(tmp_path, GOOD.replace(*change)))


def test_the_cli_refuses_a_bad_file_with_exit_2_and_one_line(tmp_path):
    path = _write(tmp_path, GOOD.replace("rate_per_s: 3", "rate_per_s: 0"))
    done = subprocess.run([sys.executable, "-m", "qkdnet.orchestrator", "experiment", str(path), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "rate_per_s" in done.stderr and not (tmp_path / "r").exists()


def test_a_seed_reproduces_the_demand_sequence(tmp_path):
    config = load_config(_write(tmp_path, GOOD))
    first = poisson_arrivals(config.demand, config.duration_s, seed=5)
    assert first == poisson_arrivals(config.demand, config.duration_s, seed=5)
    assert first != poisson_arrivals(config.demand, config.duration_s, seed=6)
    assert first != poisson_arrivals(config.demand, config.duration_s, seed=5, repetition=1)
    assert all(0 <= a.t_s < 100 for a in first) and [a.t_s for a in first] == sorted(a.t_s for a in first)


def test_poisson_counts_match_the_rates():
    # n0->n2 at 3/s over 2000 s: 6000 expected; 5 sigma is about 390.
    flows = (PoissonDemand("n0", "n2", 3.0), PoissonDemand("n1", "n3", 1.0))
    arrivals = poisson_arrivals(flows, 2000.0, seed=11)
    fast = sum(a.source == "n0" for a in arrivals)
    slow = len(arrivals) - fast
    assert abs(fast - 6000) < 390 and abs(slow - 2000) < 225


def test_trace_files_are_replayed_and_checked(tmp_path):
    config = load_config(_write(tmp_path, GOOD))
    trace = tmp_path / "t.csv"
    trace.write_text("t_s,source,destination,key_bits\n2.5,n0,n2,256\n1.0,n1,n3,128\n500,n0,n2,256\n")
    arrivals = trace_arrivals(trace, config.topology, 100)
    assert [(a.t_s, a.source) for a in arrivals] == [(1.0, "n1"), (2.5, "n0")]
    trace.write_text("t_s,source,destination,key_bits\n1.0,n0,n2,100\n")
    with pytest.raises(ConfigError, match="t.csv:2: key_bits must be a positive multiple of 8"):
        trace_arrivals(trace, config.topology, 100)


def test_a_burst_adds_its_requests_to_the_demand_at_its_time(tmp_path):
    from qkdnet.orchestrator.experiment.runner import arrivals_for

    config = load_config(_write(tmp_path, GOOD))
    arrivals = arrivals_for(config, 1, 0)
    at_burst = [a for a in arrivals if a.t_s == 60.0 and (a.source, a.destination) == ("n0", "n2")]
    assert len(at_burst) == 50
    assert [a.t_s for a in arrivals] == sorted(a.t_s for a in arrivals)
    plain = load_config(_write(tmp_path, GOOD.replace("  - {at_s: 60, burst: {source: n0, destination: n2, "
                                                      "requests: 50}}\n", "")))
    assert len(arrivals) == len(arrivals_for(plain, 1, 0)) + 50


def test_an_experiment_on_nodes_placed_elsewhere_without_their_pki_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "placed.yaml").write_text("""
name: placed
nodes: [n0, n1]
links: [{source: n0, target: n1, length_km: 10}]
deployment: {n0: "127.0.0.1:9", n1: "127.0.0.1:9"}
""")
    path = _write(tmp_path, """
topology: placed.yaml
duration_s: 10
demand: {poisson: [{source: n0, destination: n1, rate_per_s: 1}]}
strategies: [fewest_hops]
""")
    done = subprocess.run([sys.executable, "-m", "qkdnet.orchestrator", "experiment", str(path), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--certs" in done.stderr and not (tmp_path / "r").exists()
