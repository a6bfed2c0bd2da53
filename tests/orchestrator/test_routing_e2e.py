"""Routing on live node processes: multipath secrecy from what nodes saw, a cut routed around,
and a small experiment end to end."""

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from qkdnet.node.routing import LiveState, RouteRequest, make_strategy
from qkdnet.orchestrator.experiment.config import load_config
from qkdnet.orchestrator.experiment.live_metrics import ExperimentMetrics
from qkdnet.orchestrator.experiment.report import write_results
from qkdnet.orchestrator.experiment.runner import run_experiment
from qkdnet.orchestrator.network import Network, comparison_salt
from qkdnet.orchestrator.router import Router
from qkdnet.orchestrator.topology import load

pytestmark = pytest.mark.slow


async def test_multipath_shares_leave_no_intermediate_able_to_read_the_key():
    network = Network(load("ring:4"), time_scale=0, seed=3, kme=False)
    await network.start()
    try:
        await network.wait_for_link_key(20 * 256, 120)
        router = Router(network, make_strategy("multipath", k=2))
        await router.refresh()
        routed = await router.relay(RouteRequest("n0", "n2", 256, count=10), timeout_s=60)
        assert routed.outcome == "delivered", routed.error
        assert sorted(routed.paths) == [("n0", "n1", "n2"), ("n0", "n3", "n2")]
        salt = comparison_salt()
        at_source = {k.key_id: k.digest for k in await network.list_keys("n0", salt=salt)}
        at_destination = {k.key_id: k.digest for k in await network.list_keys("n2", salt=salt)}
        assert all(at_source[k] == at_destination[k] for k in routed.key_ids)
        for intermediate in ("n1", "n3"):
            seen = await network.exposure(intermediate)
            assert seen.keys_read_whole == 0 and seen.shares_read == 10
            by_key = {}
            for entry in seen.entries:
                by_key.setdefault(entry.key_id, set()).add(entry.share_index)
                assert entry.share_count == 2
            # one share of each key, never both
            assert set(by_key) == set(routed.key_ids) and all(len(v) == 1 for v in by_key.values())
        shares_n1 = {e.key_id: e.share_index for e in (await network.exposure("n1")).entries}
        shares_n3 = {e.key_id: e.share_index for e in (await network.exposure("n3")).entries}
        assert all(shares_n1[k] != shares_n3[k] for k in routed.key_ids)
        # single-path relays expose the whole key to the intermediate
        single = await network.relay("n0", "n2", 1, 256, 60, [["n0", "n1", "n2"]])
        assert single.error == "" and (await network.exposure("n1")).keys_read_whole == 1
    finally:
        await network.stop()


async def test_a_cut_link_is_routed_around_and_relays_over_it_fail_cleanly():
    network = Network(load("ring:4"), time_scale=0, seed=4, kme=False)
    await network.start()
    try:
        await network.wait_for_link_key(8 * 256, 120)
        await network.cut_link("n0", "n1")
        refused = await network.relay("n0", "n2", 1, 256, 10, [["n0", "n1", "n2"]])
        assert "out of service" in refused.error
        # The router's live state is stale (it still believes n0-n1 is up): the first attempt
        # fails, the retry goes the other way round with a fresh key and fresh link key.
        live = LiveState.of(network.topology)
        router = Router(network, make_strategy("fewest_hops"), live)
        await router.refresh()
        live.links[frozenset(("n0", "n1"))].up = True
        live.links[frozenset(("n0", "n1"))].state = "running"
        routed = await router.relay(RouteRequest("n0", "n2", 256), timeout_s=30)
        assert routed.outcome == "delivered" and routed.paths == (("n0", "n3", "n2"),) and routed.attempts == 2
        status = await network.status()
        assert {l.state for s in status.values() for l in s.links if {s.name, l.peer} == {"n0", "n1"}} == {"cut"}
        for node in status.values():
            for link in node.links:
                assert link.generated_bits == link.pool_bits + link.consumed_bits + link.discarded_bits
    finally:
        await network.stop()


async def test_a_small_experiment_writes_its_results(tmp_path):
    (tmp_path / "exp.yaml").write_text("""
name: tiny
topology: ring:4
duration_s: 6
warmup_s: 3
warmup_key_bits: 4096
clock: realtime
time_scale: 1
poll_s: 1
demand:
  poisson:
    - {source: n0, destination: n2, rate_per_s: 2}
strategies: [fewest_hops, {name: multipath, k: 2}]
seeds: [3]
events:
  - {at_s: 1, impair: [n0, n1], with: {extra_loss_db: 1}}
  - {at_s: 2, burst: {source: n1, destination: n3, requests: 5}}
  - {at_s: 3, cut: [n2, n3]}
  - {at_s: 4, restore: [n2, n3]}
""")
    config = load_config(tmp_path / "exp.yaml")
    metrics = ExperimentMetrics()
    results = await run_experiment(config, metrics=metrics)
    summary = write_results(config, results, tmp_path / "out")
    for name in ("requests.csv", "pools.csv", "links.csv", "exposure.csv", "summary.json", "report.md",
                 "delivered_rate.png", "blocking.png", "latency_cdf.png", "pool_levels.png", "exposure.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary
    runs = summary["strategies"]
    assert runs["fewest_hops"]["requests"] == runs["multipath-k2"]["requests"] > 0  # the same demand
    assert all(r["links_balanced"] for r in runs.values())
    assert runs["multipath-k2"]["delivered"] > 0
    assert all(v == 0 for v in runs["multipath-k2"]["exposure"].values())
    for result in results:  # every fault ran, in order, with its time, in every run
        assert [(e["event"], e["link"]) for e in result.events] == [
            ("impair", "n0-n1"), ("burst", "n1->n3"), ("cut", "n2-n3"), ("restore", "n2-n3")]
        assert sum(1 for r in result.requests if (r["source"], r["destination"]) == ("n1", "n3")) == 5
    counted = {}  # the live per-strategy metrics saw every request the report did
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == "qkdnet_experiment_requests_total":
                counted[sample.labels["strategy"]] = counted.get(sample.labels["strategy"], 0) + sample.value
    assert counted == {label: r["requests"] for label, r in runs.items()}
