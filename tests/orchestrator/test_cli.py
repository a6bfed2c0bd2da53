"""Bad input: one line on stderr, exit status 2, nothing started."""

import subprocess
import sys

import pytest


def _qkdnet(*args):
    return subprocess.run([sys.executable, "-m", "qkdnet.orchestrator", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args,needle", [
    (["run", "no/such/file.yaml"], "no such file"),
    (["run", "line:4", "--pairs", "n0:n9"], "unknown node 'n9'"),
    (["run", "line:4", "--pairs", "n0-n3"], "not of the form A:B"),
    (["run", "line:4", "--keys", "0"], "must be positive"),
    (["keyrate", "--distances", "ten"], "not a comma-separated list"),
    (["keyrate", "--preset", "nope"], "invalid choice"),
])
def test_user_mistakes_exit_2_with_one_line(args, needle):
    result = _qkdnet(*args)
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_pairs_in_different_components_are_refused(tmp_path):
    path = tmp_path / "split.yaml"
    path.write_text("nodes: [A, B, C, D]\nlinks:\n  - {source: A, target: B}\n  - {source: C, target: D}\n")
    result = _qkdnet("run", str(path), "--pairs", "A:C")
    assert result.returncode == 2 and "different components" in result.stderr


def test_keyrate_json_has_the_documented_fields(tmp_path):
    out = tmp_path / "kr.json"
    result = _qkdnet("keyrate", "--preset", "gys2004", "--distances", "10", "--detections", "200000",
                     "--json", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    import json
    row = json.loads(out.read_text())[0]
    for key in ("distance_km", "analytic_rate_per_pulse", "measured_rate_per_pulse", "qber", "plob_per_pulse"):
        assert key in row
    assert row["measured_rate_per_pulse"] <= row["plob_per_pulse"]


def test_up_with_an_incomplete_pki_starts_nothing(tmp_path):
    made = _qkdnet("certs", "line:2", str(tmp_path / "pki"))
    assert made.returncode == 0, made.stderr
    result = _qkdnet("up", "line:3", "--certs", str(tmp_path / "pki"), "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 2 and "n2.pem: missing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "network.json").exists()
