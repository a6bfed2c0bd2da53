"""Issue 15: a wheel built from the checkout works outside it, under one importable name.

The wheel holds only ``qkdnet`` and ``qkdnet_proto`` (no top-level ``node`` or ``orchestrator``
to clash with other distributions) and the built-in topologies as package data; installed in a
fresh virtual environment and run from another directory, ``qkdnet run`` finishes on the
embedded default topology.
"""

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_a_wheel_installed_outside_the_checkout_runs_the_default_network(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("qkdnet-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {
        "qkdnet", "qkdnet_proto"}
    assert {"qkdnet/topologies/default.yaml", "qkdnet/node/__main__.py", "qkdnet/orchestrator/cli.py",
            "qkdnet/orchestrator/monitoring/rules.yml",
            "qkdnet/orchestrator/monitoring/dashboards/qkdnet-on-call.json"} <= set(names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, timeout=300)
    # The dependencies come from this environment rather than the network: its site-packages,
    # added after the new environment's own (so qkdnet itself is the wheel's).
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([python, "-c", "import qkdnet; print(qkdnet.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv)), where
    run = subprocess.run([venv / "bin" / "qkdnet", "run"], cwd=elsewhere, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "keys" in run.stdout.lower()
