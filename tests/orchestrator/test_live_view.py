"""The live network view: what it shows of the network's status, and who may see it."""

import aiohttp
import pytest

from qkdnet.node.relay.result import RelayResult, Route
from qkdnet.node.status import LinkStatus, NodeStatus
from qkdnet.orchestrator.live_view.model import ViewModel, layout
from qkdnet.orchestrator.live_view.server import new_token, start_view
from qkdnet.orchestrator.topology import load


def _end(peer, role, qber=0.02, aborted=0, pool=3000, state="running"):
    return LinkStatus(link_id="x", peer=peer, role=role, state=state, length_km=25.0, blocks_accepted=2,
                      blocks_aborted=aborted, last_abort_reason="", qber=qber, sifted_bits=10_000,
                      generated_bits=4000, pool_bits=pool, consumed_bits=512, discarded_bits=488,
                      emulated_seconds=1.0, sifted_bits_per_s=1e4, secret_bits_per_s=4e3, auth_bits=0,
                      sendable_bits=1500)


def _status(n0_n1_qber=0.02, aborted=0, n2_alive=True):
    """ring:3 — n0 transmits to n1 and n2, n1 to n2."""
    status: dict[str, NodeStatus | None] = {"n0": NodeStatus("n0", (_end("n1", "transmitter", n0_n1_qber, aborted), _end("n2", "transmitter")),
                               0, 0, 0, 0),
              "n1": NodeStatus("n1", (_end("n0", "receiver"), _end("n2", "transmitter")), 0, 0, 0, 0),
              "n2": NodeStatus("n2", (_end("n0", "receiver"), _end("n1", "receiver")), 0, 0, 0, 0)}
    if not n2_alive:
        status["n2"] = None
    return status


def test_the_layout_is_the_same_every_time_and_inside_the_frame():
    topology = load("ring:6")
    first, second = layout(topology), layout(topology)
    assert first == second and set(first) == set(topology.nodes)
    assert all(0.05 <= x <= 0.95 and 0.05 <= y <= 0.95 for x, y in first.values())


def test_the_snapshot_shows_states_qber_pools_alerts_relays_and_history():
    topology = load("ring:3")
    model = ViewModel(topology)
    model.sample(_status(), set(), [])
    model.sample(_status(n0_n1_qber=0.25, aborted=3, n2_alive=False), {frozenset(("n1", "n2"))},
                 [{"at": 1.0, "fault": "cut", "link": "n1-n2", "detail": ""}])
    model.record_relay(RelayResult("n0", "n1", Route.of([["n0", "n1"]]).paths, ("k1", "k2"), 0.0123, 512))
    view = model.snapshot()
    assert {n["name"]: n["alive"] for n in view["nodes"]} == {"n0": True, "n1": True, "n2": False}
    links = {link["name"]: link for link in view["links"]}
    assert links["n0-n1"]["state"] == "running" and links["n0-n1"]["qber"] == 0.25
    assert links["n1-n2"]["state"] == "cut" and links["n0-n2"]["state"] == "down"  # n2 is down
    assert len(links["n0-n1"]["history"]) == 2 and links["n0-n1"]["history"][-1]["qber"] == 0.25
    assert 0 < links["n0-n1"]["pool_fraction"] <= 1
    alerts = " | ".join(a["what"] for a in view["alerts"])
    assert "QBER 25.0% on link n0-n1" in alerts and "link n1-n2 is cut" in alerts and "node n2 is down" in alerts
    assert view["relays"][0]["path"] == ["n0", "n1"] and view["relays"][0]["keys"] == 2
    assert "k1" not in str(view)  # counts and states, never key IDs
    assert view["faults"][0]["fault"] == "cut"


@pytest.mark.parametrize("path", ["/", "/view.json"])
async def test_the_page_and_its_data_need_the_token(path):
    topology = load("ring:3")
    model = ViewModel(topology)
    model.sample(_status(), set(), [])
    token = new_token()
    server = await start_view(model, token)
    try:
        async with aiohttp.ClientSession() as session:
            for headers, query, expected in (({}, "", 401), ({}, "?token=wrong", 401),
                                             ({"Authorization": "Bearer " + token}, "", 200),
                                             ({}, f"?token={token}", 200)):
                async with session.get(server.url + path + query, headers=headers) as reply:
                    assert reply.status == expected, (headers, query)
                    if expected == 401:
                        assert "qkdnet dashboard" in (await reply.json())["message"]
            async with session.get(server.url + "/assets/view.js") as reply:  # code, no data: no token
                assert reply.status == 200 and "view.json" in await reply.text()
            async with session.get(server.url + "/assets/secrets.txt") as reply:
                assert reply.status == 404
    finally:
        await server.close()


async def test_the_network_level_metrics_count_requests_states_and_faults_behind_the_token():
    from prometheus_client.parser import text_string_to_metric_families

    from qkdnet.orchestrator.live_view.network_metrics import NetworkMetrics

    topology = load("ring:3")
    model = ViewModel(topology)
    model.sample(_status(n2_alive=False), {frozenset(("n0", "n1"))},
                 [{"at": 1.0, "fault": "cut", "link": "n0-n1", "detail": ""}])
    metrics = NetworkMetrics(model)
    metrics.record(RelayResult("n0", "n1", Route.of([["n0", "n1"]]).paths, ("k1",), 0.02, 256))
    metrics.record(RelayResult("n0", "n2", (), outcome="blocked"))
    token = new_token()
    server = await start_view(model, token, metrics)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/metrics") as reply:
                assert reply.status == 401
            async with session.get(server.url + "/metrics", headers={"Authorization": "Bearer " + token}) as reply:
                assert reply.status == 200
                text = await reply.text()
    finally:
        await server.close()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("qkdnet_network_nodes", (("state", "down"),))] == 1
    assert samples[("qkdnet_network_links", (("state", "cut"),))] == 1
    assert samples[("qkdnet_network_links", (("state", "down"),))] == 2  # both links of the dead n2
    assert samples[("qkdnet_network_faults_total", (("kind", "cut"),))] == 1
    assert samples[("qkdnet_network_requests_total", (("outcome", "delivered"),))] == 1
    assert samples[("qkdnet_network_requests_total", (("outcome", "blocked"),))] == 1


async def test_an_experiments_metrics_need_the_bearer_token():
    from qkdnet.node.web.server import serve_app
    from qkdnet.orchestrator.experiment.live_metrics import ExperimentMetrics
    from qkdnet.orchestrator.live_view.server import metrics_only_app

    metrics, token = ExperimentMetrics(), new_token()
    metrics.record("fewest_hops", RelayResult("n0", "n1", Route.of([["n0", "n1"]]).paths, ("k1",), 0.02, 256))
    server = await serve_app(metrics_only_app(metrics.render, token), "127.0.0.1", 0, None)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/metrics") as reply:
                assert reply.status == 401
            async with session.get(server.url + "/metrics", headers={"Authorization": "Bearer " + token}) as reply:
                text = await reply.text()
    finally:
        await server.close()
    assert 'qkdnet_experiment_requests_total{outcome="delivered",strategy="fewest_hops"} 1.0' in text
    assert 'qkdnet_experiment_link_key_consumed_bits_total{strategy="fewest_hops"} 256.0' in text
