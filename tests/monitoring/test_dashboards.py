"""The shipped Grafana dashboards: the committed JSON is the generator's output, the layout fits
Grafana's 24-column grid, and every query reads documented metrics or the shipped recording rules
(tests/orchestrator/test_prometheus.py runs each query against a live Prometheus)."""

import json
import pathlib
import re

import yaml

from qkdnet.orchestrator.monitoring import RULES_FILE, dashboards

DOCS = pathlib.Path(__file__).parents[2] / "docs" / "metrics.md"
NAME = re.compile(r"\b(qkdnet(?:_|:)[a-z0-9_:]+)")


def test_the_committed_dashboards_are_the_generators_output():
    for view in dashboards.VIEWS:
        committed = json.loads((dashboards.DIRECTORY / f"qkdnet-{view}.json").read_text())
        assert committed == dashboards.dashboard(view), "rerun python -m qkdnet.orchestrator.monitoring.dashboards"


def test_three_views_on_the_grid_with_unique_panels():
    assert set(dashboards.VIEWS) == {"executive", "on-call", "debug"}
    for view in dashboards.VIEWS:
        board = dashboards.dashboard(view)
        assert board["uid"] == f"qkdnet-{view}" and board["panels"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and panel["targets"]


def test_every_query_reads_documented_metrics_or_recording_rules():
    documented = set(re.findall(r"^\| `(qkdnet_[a-z0-9_]+)`", DOCS.read_text(), re.MULTILINE))
    recorded = {rule["record"] for group in yaml.safe_load(RULES_FILE.read_text())["groups"]
                for rule in group["rules"] if "record" in rule}
    for query in dashboards.queries():
        for name in set(NAME.findall(query)) - {"qkdnet_node"}:  # that one is the scrape target's label
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert base in documented or name in recorded, (name, query)
