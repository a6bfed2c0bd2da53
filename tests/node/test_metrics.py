"""A node's Prometheus metrics: what they report, how they are named, and who may read them."""

import re
import ssl

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from qkdnet.node.abort_reasons import CATEGORIES, abort_category
from qkdnet.node.metrics import render
from qkdnet.node.relay.result import Route
from qkdnet.node.web import server as http_server
from qkdnet.node.web.metrics_endpoint import start_metrics
from qkdnet.orchestrator import certs
from qkdnet.orchestrator.topology import load
from tests.helpers import eventually
from tests.node.inprocess import close_all, configure_line, nodes_in

NAME = re.compile(r"^qkdnet_[a-z0-9_]+$")
UNIT_SUFFIXES = ("_bits", "_seconds", "_ratio", "_total", "_bucket", "_count", "_sum", "_created", "_up",
                 "_state", "_held", "_capacity")


def _samples(text: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def _value(samples: dict[str, list], name: str, **labels: str) -> float:
    (match,) = [s.value for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    return match


@pytest.mark.parametrize(("reason", "category"), [
    ("QBER 0.1300 in the test basis exceeds 0.11", "qber"),
    ("peer aborted: QBER 0.1300 in the test basis exceeds 0.11", "qber"),
    ("decoy-state bounds leave no positive key length (s_Z1 >= 0, phase error <= 0.5)", "no_key_length"),
    ("key length -3 after error-correction leak 900 bits", "no_key_length"),
    ("too few sifted key bits", "no_key_length"),
    ("verification failed: keys differ after Cascade", "verification"),
    ("authentication key exhausted: no pad left", "authentication"),
    ("AuthenticationError: tag mismatch", "authentication"),
    ("peer stopped answering", "peer_unreachable"),
    ("the transmitter resynchronised", "superseded"),
    ("ProtocolError: message for frame 3 in frame 4", "protocol"),
    ("something new", "protocol"),
])
def test_abort_reasons_fall_into_a_fixed_set_of_categories(reason, category):
    assert abort_category(reason) == category
    assert category in CATEGORIES


async def test_metrics_report_links_keys_relays_and_the_store_by_convention(tmp_path):
    nodes = nodes_in(tmp_path, "AB")
    try:
        await configure_line(nodes)

        async def keyed():
            return nodes["A"].links.by_peer("B").pool.sendable_bits >= 1024
        await eventually(keyed, 120, "link key at A")
        keys = await nodes["A"].relay.relay(Route.of([["A", "B"]]), 2, 256, 5.0)
        text = render(nodes["A"]).decode()
        samples = _samples(text)
        status = (await nodes["A"].status()).links[0]
    finally:
        await close_all(nodes)

    link = {"node": "A", "peer": "B", "link": "A~B", "role": "transmitter"}
    # Link-end figures are the status' figures (counters may have moved on by a block: at least).
    assert _value(samples, "qkdnet_link_secret_key_bits_total", **link) <= status.generated_bits
    assert _value(samples, "qkdnet_link_secret_key_bits_total", **link) > 0
    assert _value(samples, "qkdnet_link_sifted_bits_total", **link) > 0
    assert 0 <= _value(samples, "qkdnet_link_qber_ratio", **link) < 0.11
    assert {s.labels["intensity"] for s in samples["qkdnet_link_qber_per_intensity_ratio"]} == {
        "signal", "decoy", "vacuum"}
    assert _value(samples, "qkdnet_link_blocks_accepted_total", **link) >= 1
    assert {s.labels["reason"] for s in samples["qkdnet_link_blocks_aborted_total"]} == set(CATEGORIES)
    assert _value(samples, "qkdnet_link_pool_capacity_bits", **link) == 10**7
    assert _value(samples, "qkdnet_link_key_consumed_bits_total", **link) == 512
    assert _value(samples, "qkdnet_link_up", **link) == 1
    assert sum(s.value for s in samples["qkdnet_link_state"]) == 1  # one state at a time
    assert _value(samples, "qkdnet_link_auth_key_consumed_bits_total", **link) > 0
    # The node: its relay, its keys' lifecycle in the audit log, its store's commits.
    assert _value(samples, "qkdnet_relays_total", outcome="delivered") == 1
    assert _value(samples, "qkdnet_relays_total", outcome="timed_out") == 0
    assert _value(samples, "qkdnet_relay_duration_seconds_count", outcome="delivered") == 1
    assert _value(samples, "qkdnet_audit_events_total", event="relayed") == 2
    assert _value(samples, "qkdnet_keys_held", node="A") == 2
    assert _value(samples, "qkdnet_keystore_commit_duration_seconds_count") >= 1
    # Conventions: one prefix, units in names, no key IDs or other unbounded label values.
    for name in samples:
        assert NAME.match(name) and name.endswith(UNIT_SUFFIXES), name
    for key in keys:
        assert key.key_id not in text


async def _get(url: str, ca: str, identity: tuple | None) -> int:
    context = ssl.create_default_context(cafile=ca)
    if identity is not None:
        context.load_cert_chain(*map(str, identity))
    async with aiohttp.ClientSession() as session, session.get(url, ssl=context) as reply:
        await reply.read()
        return reply.status


async def test_metrics_are_served_over_mutual_tls_to_the_monitor_and_the_controller_only(tmp_path):
    pki = certs.create(load("line:2"), tmp_path / "pki")
    nodes = nodes_in(tmp_path, "AB")
    cert, key = pki.kme["n0"]  # names 127.0.0.1
    context = http_server.server_ssl_context(str(cert), str(key), str(pki.ca_file))
    server = await start_metrics(nodes["A"], lambda: (), "127.0.0.1", 0, context)
    url, ca = f"{server.url}/metrics", str(pki.ca_file)
    try:
        assert await _get(url, ca, pki.monitor) == 200
        assert await _get(url, ca, pki.controller) == 200
        assert await _get(url, ca, pki.sae["sae-n0"]) == 403  # an application may not read them
        assert await _get(url, ca, pki.node["n1"]) == 403  # nor may another node
        assert await _get(url, ca, None) == 401
    finally:
        await server.close()
        await close_all(nodes)
