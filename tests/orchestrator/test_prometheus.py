"""A real Prometheus server scrapes a running network and evaluates the shipped rules (slow; run
in CI, which installs Debian's ``prometheus``): every metric docs/metrics.md documents is there for
every node and link end, and an eavesdropper switched on on one link makes its QBER reach a
quarter, its blocks abort, the QBER alert fire and application keys go around the link; switched
off, the link comes back and the alert resolves."""

import asyncio
import json
import pathlib
import re
import shutil
import socket
import urllib.parse
import urllib.request

import pytest

from qkdnet.node.impairment import Impairment
from qkdnet.orchestrator import prometheus_config
from qkdnet.orchestrator.monitoring import dashboards
from qkdnet.orchestrator.network import Network
from qkdnet.orchestrator.topology import load
from tests.helpers import etsi_pair, eventually

pytestmark = pytest.mark.slow

DOCUMENTED = re.compile(r"^\| `(qkdnet_[a-z0-9_]+)` \| (counter|gauge|histogram) \|", re.MULTILINE)
METRICS_DOC = pathlib.Path(__file__).parents[2] / "docs" / "metrics.md"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


async def _query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    answer = await asyncio.to_thread(_get_json, url)
    assert answer["status"] == "success", (promql, answer)
    return answer["data"]["result"]


async def _start_prometheus(config: pathlib.Path, data: pathlib.Path) -> tuple[asyncio.subprocess.Process, int]:
    """Prometheus on a free port; a port taken between choosing and binding means another try."""
    for _ in range(5):
        port = _free_port()
        process = await asyncio.create_subprocess_exec(
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        await eventually(_answering_or_gone(process, port), 60, "Prometheus answering", interval_s=0.2)
        if process.returncode is None:
            return process, port
    raise AssertionError("Prometheus did not start")


def _answering_or_gone(process: asyncio.subprocess.Process, port: int):
    async def check() -> bool:
        if process.returncode is not None:
            return True
        try:
            return await _query(port, "1") is not None
        except OSError:
            return False
    return check


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus (CI installs it)")
async def test_prometheus_sees_every_metric_and_the_qber_alert_fire_and_resolve_around_an_eavesdropper(tmp_path):
    documented = DOCUMENTED.findall(METRICS_DOC.read_text().split("## Network level")[0])  # the nodes' own
    assert len(documented) >= 25
    topology = load("ring:4")
    # Slow emulated time (a block of the generated topology's links covers about 10 ms): a block
    # every few seconds, so the attack below spans a handful of aborted blocks. Each aborted block
    # spends authentication key that only accepted ones refill, and blocks over the QBER threshold
    # are spaced out: a slow clock keeps the timing of the attack and the recovery predictable.
    network = Network(topology, time_scale=0.005, seed=3, data_dir=tmp_path / "net")
    await network.start()
    prometheus = None
    try:
        await network.wait_for_link_key(2048, 300)
        kme = {name: handle.kme_url for name, handle in network.nodes.items()}
        await etsi_pair(network.certs, kme["n0"], kme["n2"], "sae-n0", "sae-n2")  # ETSI and relay figures exist
        config = tmp_path / "prometheus.yml"
        prometheus_config.write(config, network, interval_s=1)
        prometheus, port = await _start_prometheus(config, tmp_path / "tsdb")

        async def all_up() -> bool:
            up = await _query(port, 'up{job="qkdnet"}')
            return len(up) == len(topology.nodes) and all(r["value"][1] == "1" for r in up)
        await eventually(all_up, 60, "every node scraped", interval_s=0.5)

        link_ends = 2 * len(topology.links)
        for name, kind in documented:
            series = f"{name}_count" if kind == "histogram" else name
            result = await _query(port, f"count by (qkdnet_node) ({series})")
            nodes = {r["metric"]["qkdnet_node"] for r in result}
            if name.startswith("qkdnet_link_"):  # one series (per label value) for each link end
                ends = await _query(port, f"count(count by (node, peer) ({series}))")
                expected = len(topology.links) if "transmitter end only" in METRICS_DOC.read_text().split(
                    f"`{name}`")[1].split("\n")[0] else link_ends
                assert ends and int(ends[0]["value"][1]) == expected, name
            elif name.startswith("qkdnet_etsi_"):  # at the two KMEs that answered
                assert {"n0", "n2"} <= nodes, name
            else:
                assert nodes == set(topology.nodes), name
        delivered = await _query(port, 'sum(qkdnet_relays_total{outcome="delivered"})')
        assert float(delivered[0]["value"][1]) >= 1
        codes = await _query(port, 'qkdnet_etsi_requests_total{endpoint="enc_keys",code="200"}')
        assert [r["metric"]["qkdnet_node"] for r in codes] == ["n0"]
        for query in dashboards.queries():  # every dashboard query is valid PromQL on this server
            await _query(port, query)
        rules = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{port}/api/v1/rules")
        loaded = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        assert "QkdnetLinkQberHigh" in loaded and all(
            r["health"] == "ok" for g in rules["data"]["groups"] for r in g["rules"] if r.get("lastEvaluation"))

        # Eve on every pulse of n0-n1 (n0 transmits): QBER near 1/4, blocks abort, the alert fires.
        await network.impair("n0", "n1", Impairment(intercept_resend_fraction=1.0))
        qber = 'qkdnet_link_qber_ratio{link="n0~n1",role="transmitter"}'

        async def eve_seen() -> bool:
            found = await _query(port, qber)
            return bool(found) and float(found[0]["value"][1]) > 0.2
        await eventually(eve_seen, 240, "the QBER metric showing the eavesdropper", interval_s=0.5)
        assert 0.22 <= float((await _query(port, qber))[0]["value"][1]) <= 0.30
        aborted = await _query(port, 'qkdnet_link_blocks_aborted_total{link="n0~n1",role="transmitter",reason="qber"}')
        assert float(aborted[0]["value"][1]) >= 1
        firing = 'ALERTS{alertname="QkdnetLinkQberHigh",alertstate="firing"}'

        async def alert_firing() -> bool:
            return [r["metric"]["link"] for r in await _query(port, firing)] == ["n0~n1"]
        await eventually(alert_firing, 120, "QkdnetLinkQberHigh firing for n0~n1", interval_s=0.5)

        # An application key from n0 to n1 now goes the long way round, through n3 and n2.
        async def view_avoids_link() -> bool:
            await network.publish_routing()
            return network.live.links[frozenset(("n0", "n1"))].aborted
        await eventually(view_avoids_link, 60, "the published view marking n0-n1 aborted", interval_s=0.5)
        before = {n: s.relays_forwarded for n, s in (await network.status()).items() if s is not None}
        await etsi_pair(network.certs, kme["n0"], kme["n1"], "sae-n0", "sae-n1")
        after = {n: s.relays_forwarded for n, s in (await network.status()).items() if s is not None}
        assert after["n3"] > before["n3"] and after["n2"] > before["n2"]

        # Eve leaves: honest blocks are accepted again and the alert resolves.
        await network.impair("n0", "n1", Impairment())

        async def alert_resolved() -> bool:
            return await _query(port, firing) == [] and float((await _query(port, qber))[0]["value"][1]) < 0.05
        await eventually(alert_resolved, 240, "the QBER back to normal and the alert resolved", interval_s=0.5)
        assert [f.kind for f in network.faults] == ["impair", "impair"]
    finally:
        if prometheus is not None and prometheus.returncode is None:
            prometheus.terminate()
            await prometheus.wait()
        await network.stop()
