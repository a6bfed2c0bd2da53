"""Virtual time end to end: an experiment's results do not depend on the host's load, its cores
or how processes are scheduled."""

import csv
import json
import os
import pathlib
import subprocess
import sys

import pytest

from qkdnet.orchestrator.experiment.report import WALL_CLOCK_FIGURES

EXPERIMENT = """
name: reproducible
topology: ring:4
link_changes: {pulse_rate_hz: 5000000}
duration_s: 5
warmup_s: 2
warmup_key_bits: 4096
poll_s: 1
demand:
  poisson:
    - {source: n0, destination: n2, rate_per_s: 3}
    - {source: n1, destination: n3, rate_per_s: 2, key_bits: 512}
strategies: [{name: multipath, k: 2}]
seeds: [11]
events:
  - {at_s: 1, impair: [n0, n1], with: {extra_loss_db: 1}}
  - {at_s: 1.5, burst: {source: n1, destination: n3, requests: 6}}
  - {at_s: 2, cut: [n2, n3]}
  - {at_s: 3.5, restore: [n2, n3]}
"""

RUN = """
import asyncio, pathlib, sys
from qkdnet.orchestrator.experiment.config import load_config
from qkdnet.orchestrator.experiment.report import write_results
from qkdnet.orchestrator.experiment.runner import run_experiment
config = load_config(pathlib.Path(sys.argv[1]))
write_results(config, asyncio.run(run_experiment(config)), pathlib.Path(sys.argv[2]))
"""
KEY_COLUMNS = {"key_id"}  # the keys themselves: fresh randomness at every run, by design


def _run(config: pathlib.Path, out: pathlib.Path, cpu: int | None) -> None:
    def pin() -> None:  # inherited by the orchestrator's node processes, every one of them
        os.sched_setaffinity(0, {cpu})

    done = subprocess.run([sys.executable, "-c", RUN, str(config), str(out)], capture_output=True, text=True,
                          timeout=1800, preexec_fn=pin if cpu is not None else None)
    assert done.returncode == 0, done.stderr[-2000:]


def _rows(path: pathlib.Path) -> list[dict]:
    with path.open(newline="") as f:
        return [{k: v for k, v in row.items() if k not in KEY_COLUMNS} for row in csv.DictReader(f)]


def _without_wall_clock(value):
    if isinstance(value, dict):
        return {k: _without_wall_clock(v) for k, v in value.items() if k not in WALL_CLOCK_FIGURES}
    return value


@pytest.mark.slow
def test_a_virtual_time_experiment_gives_the_same_results_pinned_and_loaded_or_free(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(EXPERIMENT)
    cpu = min(os.sched_getaffinity(0))
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                              preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    try:
        _run(config, tmp_path / "loaded", cpu)  # every process on one CPU, beside a CPU burner
    finally:
        burner.kill()
        burner.wait()
    _run(config, tmp_path / "free", None)  # all cores, nothing else running
    loaded, free = tmp_path / "loaded", tmp_path / "free"
    for name in ("requests.csv", "pools.csv", "links.csv", "events.csv", "exposure.csv"):
        assert _rows(loaded / name) == _rows(free / name), name
    requests = _rows(free / "requests.csv")
    assert sum(r["outcome"] == "delivered" for r in requests) > 10
    assert sum(r["t_s"] == "1.5" for r in requests) == 6  # the burst: concurrent, served in one order
    assert {r["event"] for r in _rows(free / "events.csv")} == {"impair", "burst", "cut", "restore"}
    summaries = [json.loads((out / "summary.json").read_text()) for out in (loaded, free)]
    assert _without_wall_clock(summaries[0]) == _without_wall_clock(summaries[1])
    assert summaries[0]["clock"] == "virtual"


@pytest.mark.slow
def test_qkdnet_run_in_virtual_time_repeats_its_link_statistics_with_a_seed(tmp_path):
    summaries = []
    for name in ("first", "second"):
        out = tmp_path / f"{name}.json"
        done = subprocess.run([sys.executable, "-m", "qkdnet.orchestrator", "run", "line:3", "--clock", "virtual",
                               "--keys", "8", "--seed", "21", "--json", str(out), "--quiet"],
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        summaries.append(json.loads(out.read_text()))
    first, second = summaries
    assert first["pairs"][0]["delivered"] == 8 and first["pairs"][0]["identical_at_both_ends"]
    assert first["links"] == second["links"]  # blocks, QBER, rates, pool levels: all from physics and seed
    assert [{k: v for k, v in p.items() if k != "keys_per_s"} for p in first["pairs"]] == \
           [{k: v for k, v in p.items() if k != "keys_per_s"} for p in second["pairs"]]
