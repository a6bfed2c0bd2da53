"""The live view in a real browser (slow; CI installs Debian's chromium): headless Chromium loads
the page `qkdnet up` serves, and the DOM its script built shows every node and link of the
topology; after `qkdnet fault cut` the next load shows the link cut. A screenshot is kept in
$QKDNET_TEST_ARTIFACTS (or the test's temporary directory)."""

import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from tests.orchestrator.test_up_down import _qkdnet

pytestmark = pytest.mark.slow
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(*args, timeout=120):
    done = subprocess.run([str(BROWSER), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--virtual-time-budget=5000", *args],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _link_states(dom: str) -> dict[str, str]:
    states = {}
    for element in re.findall(r"<line [^>]*>", dom):
        name = re.search(r'id="link-([^"]+)"', element)
        state = re.search(r'data-state="([^"]+)"', element)
        if name and state:
            states[name.group(1)] = state.group(1)
    return states


@pytest.mark.skipif(BROWSER is None, reason="needs Debian's chromium (CI installs it)")
def test_the_live_view_shows_every_node_and_link_and_a_cut(tmp_path):
    state = tmp_path / "s"
    endpoints = tmp_path / "endpoints.json"
    up = _qkdnet(state, "up", "ring:4", "--time-scale", "0", "--seed", "7", "--quiet", "--json", str(endpoints))
    assert up.returncode == 0, up.stderr
    try:
        url = json.loads(endpoints.read_text())["view"]
        assert url.startswith("http://127.0.0.1:") and "token=" in url
        assert url in _qkdnet(state, "dashboard").stdout
        dom = _chromium("--dump-dom", url)
        assert {f"node-n{i}" for i in range(4)} <= set(re.findall(r'id="(node-n\d)"', dom))
        assert _link_states(dom).keys() == {"n0-n1", "n1-n2", "n2-n3", "n0-n3"}
        assert 'class="live"' in dom  # the script reached view.json with the token
        without_token = _chromium("--dump-dom", url.split("?")[0])
        assert "not connected" in without_token or 'id="node-n0"' not in without_token

        cut = _qkdnet(state, "fault", "cut", "n0", "n1")
        assert cut.returncode == 0, cut.stderr
        states = _link_states(_chromium("--dump-dom", url))
        assert states["n0-n1"] == "cut" and states["n1-n2"] != "cut"
        artefacts = pathlib.Path(os.environ.get("QKDNET_TEST_ARTIFACTS", tmp_path))
        artefacts.mkdir(parents=True, exist_ok=True)
        shot = artefacts / "live-view-cut.png"
        _chromium(f"--screenshot={shot}", "--window-size=1400,900", url)
        assert shot.stat().st_size > 10_000
    finally:
        _qkdnet(state, "down")
