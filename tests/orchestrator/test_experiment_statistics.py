"""The experiment report's statistics: intervals over runs, paired comparisons with Holm's
correction, and the warning a real-time run gets when the host could not keep up."""

import dataclasses
import pathlib

import numpy as np
import pytest
from scipy import stats

from qkdnet.node.settings import ClockMode
from qkdnet.orchestrator.experiment.config import load_config
from qkdnet.orchestrator.experiment.report import summarize
from qkdnet.orchestrator.experiment.runner import RunResult
from qkdnet.orchestrator.experiment.significance import compare, holm, mean_interval, paired_difference
from qkdnet.orchestrator.experiment.virtual_runner import step_end, timeline
from tests.orchestrator.test_experiment_config import GOOD


def test_the_interval_is_students_t_over_runs():
    values = [0.10, 0.14, 0.12, 0.18, 0.11]
    interval = mean_interval(values)
    half = stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / np.sqrt(5)
    assert interval["mean"] == pytest.approx(0.13)
    assert (interval["low"], interval["high"]) == pytest.approx((0.13 - half, 0.13 + half), abs=1e-6)
    assert mean_interval([0.5]) == dict(mean=0.5, low=None, high=None, runs=1)  # no interval from one run
    assert mean_interval([])["runs"] == 0


def test_a_paired_test_sees_a_small_steady_difference_an_unpaired_view_would_miss():
    rng = np.random.default_rng(7)  # fixed seed: the runs' shared variation dwarfs the difference
    shared = rng.normal(100.0, 20.0, 8)
    a, b = shared + 1.0 + rng.normal(0, 0.1, 8), shared
    paired = paired_difference(a.tolist(), b.tolist())
    assert paired["p_value"] < 1e-6 and paired["low"] > 0.5
    assert stats.ttest_ind(a, b).pvalue > 0.5  # what ignoring the pairing would conclude
    assert paired_difference([1.0, 2.0], [1.0, 2.0])["p_value"] == 1.0  # identical on every run
    assert paired_difference([3.0, 4.0], [1.0, 2.0])["p_value"] == 0.0
    assert paired_difference([1.0], [2.0])["p_value"] is None


def test_holm_keeps_the_family_wise_level():
    assert holm([0.01, 0.04, 0.03]) == [True, False, False]  # 0.01 <= 0.05/3; then 0.03 > 0.05/2
    assert holm([0.001, 0.02, 0.04]) == [True, True, True]
    assert holm([None, 0.001]) == [False, True]


def test_every_pair_of_strategies_is_compared_on_each_figure():
    per_run = {s: {(seed, 0): {"blocking_probability": base + 0.01 * seed} for seed in range(4)}
               for s, base in (("a", 0.1), ("b", 0.3), ("c", 0.1))}
    rows = compare(per_run, ["blocking_probability"])
    assert [(r["a"], r["b"]) for r in rows] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [r["significant"] for r in rows] == [True, False, True]
    assert rows[0]["mean_difference"] == pytest.approx(-0.2)


def _run(strategy: str, seed: int, delivered: int, clock_ratio: float) -> RunResult:
    run = RunResult(strategy, seed, 0)
    run.requests = [dict(outcome="delivered" if i < delivered else "blocked", latency_ms=5.0, key_bits=256, hops=2,
                         attempts=1, link_bits_consumed=512) for i in range(10)]
    run.links = [dict(role="transmitter", balanced=True, link_clock_ratio=clock_ratio)]
    return run


def test_a_real_time_run_on_a_host_that_fell_behind_is_warned_about(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(GOOD)
    config = dataclasses.replace(load_config(path), clock=ClockMode.REALTIME, seeds=(1, 2))
    results = [_run(s, seed, d, 0.4) for s in ("fewest_hops", "multipath-k2") for seed, d in ((1, 9), (2, 7))]
    summary = summarize(config, results)
    assert len(summary["warnings"]) == 1 and "40 %" in summary["warnings"][0]
    assert summary["strategies"]["fewest_hops"]["intervals"]["blocking_probability"]["mean"] == pytest.approx(0.2)
    assert summary["comparisons"][0]["pairs"] == 2
    keeping_up = [_run(s, seed, 9, 1.0) for s in ("fewest_hops", "multipath-k2") for seed in (1, 2)]
    assert summarize(config, keeping_up)["warnings"] == []
    virtual = dataclasses.replace(config, clock=ClockMode.VIRTUAL)
    assert summarize(virtual, results)["warnings"] == []  # in virtual time the links cover the clock


def test_the_timeline_serves_faults_then_requests_then_polls_at_each_step(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(GOOD)
    config = load_config(path)
    from qkdnet.orchestrator.experiment.runner import arrivals_for

    items = timeline(config, arrivals_for(config, 1, 0))
    orders = [item.order for item in items]
    assert orders == sorted(orders)
    at_50 = [item.kind for item in items if item.t_s == 50]
    assert at_50[0] == "event"  # the cut at 50 s comes before anything else at 50 s
    assert step_end(0.104, 0.01) == pytest.approx(0.11) and step_end(0.11, 0.01) == pytest.approx(0.11)
    assert step_end(2.0, 0.5) == 2.0


def test_the_cli_refuses_a_bad_clock_in_one_line(tmp_path):
    import subprocess
    import sys

    path = pathlib.Path(tmp_path) / "exp.yaml"
    path.write_text(GOOD + "clock_step_s: 0\n")
    done = subprocess.run([sys.executable, "-m", "qkdnet.orchestrator", "experiment", str(path), "--out",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == f"qkdnet: error: {path}: clock_step_s must be positive, got 0"
    assert not (tmp_path / "r").exists()
