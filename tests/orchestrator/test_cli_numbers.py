"""CLI numbers: negative, infinite or malformed values are one line and exit status 2."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("args, needle", [
    (["run", "line:3", "--time-scale", "-1"], "must not be negative"),
    (["run", "line:3", "--timeout", "0"], "must be positive"),
    (["run", "line:3", "--timeout", "nan"], "must be finite"),
    (["run", "line:3", "--seed", "-4"], "a seed is a whole number"),
    (["up", "line:3", "--time-scale", "inf"], "must be finite"),
    (["keyrate", "--distances", "10,nan"], "finite non-negative"),
    (["relay", "n0", "n1", "--timeout", "-5"], "must be positive"),
    (["run", "grid:1000x1000"], "a grid needs 2 to 1000 nodes"),
])
def test_bad_numbers_exit_2_with_one_line(args, needle, tmp_path):
    result = subprocess.run([sys.executable, "-m", "qkdnet.orchestrator", *args], capture_output=True, text=True,
                            timeout=60, env={"QKDNET_STATE_DIR": str(tmp_path), "PATH": ""})
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
