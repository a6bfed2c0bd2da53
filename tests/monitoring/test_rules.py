"""The shipped Prometheus rules: valid (`promtool check rules`), each alert unit-tested
(`promtool test rules` on rules_test.yml), and each alert's runbook written."""

import pathlib
import shutil
import subprocess

import pytest
import yaml

from qkdnet.orchestrator.monitoring import RULES_FILE

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parents[1]
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="needs Debian's prometheus (CI installs it)")


def _alerts() -> list[dict]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@needs_promtool
def test_the_rule_file_is_valid():
    done = subprocess.run(["promtool", "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_every_alert_passes_its_unit_tests():
    done = subprocess.run(["promtool", "test", "rules", "rules_test.yml"], cwd=HERE, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    cases = yaml.safe_load((HERE / "rules_test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in cases for t in case.get("alert_rule_test", []) if t["exp_alerts"]}
    assert tested == {rule["alert"] for rule in _alerts()}  # each alert seen firing at least once


def test_every_alert_has_a_summary_and_a_runbook_that_says_what_to_do():
    for rule in _alerts():
        annotations = rule["annotations"]
        assert annotations["summary"] and rule["labels"]["severity"] in ("warning", "critical")
        runbook = ROOT / annotations["runbook_url"]
        text = runbook.read_text()
        for heading in ("## What it means", "## What to check", "## How to recover"):
            assert heading in text, f"{runbook.name}: no {heading!r}"
