"""ETSI GS QKD 014 over real HTTPS with mutual TLS against running node processes (line of 4: 3 hops)."""

import asyncio
import base64
import json
import ssl

import aiohttp
import pytest

from qkdnet.node import hold_points
from qkdnet.node.keystore.store import open_tables
from qkdnet.orchestrator import network as network_module
from qkdnet.orchestrator.network import Network
from qkdnet.orchestrator.topology import load
from tests.helpers import eventually

pytestmark = pytest.mark.slow


def _client_context(network, sae=None):
    context = ssl.create_default_context(cafile=str(network.certs.ca_file))
    if sae is not None:
        cert, key = network.certs.sae[sae]
        context.load_cert_chain(str(cert), str(key))
    return context


async def _call(network, node, sae, method, path, body=None, raw=None):
    url = network.nodes[node].kme_url + path
    async with aiohttp.ClientSession() as session:
        kwargs = {"ssl": _client_context(network, sae)}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with session.request(method, url, **kwargs) as reply:
            return reply.status, await reply.json(content_type=None)


async def test_keys_over_three_hops_authorisation_bad_input_and_restart(tmp_path, monkeypatch):
    # No periodic view during the test: the KMEs must learn of the restart from restart_node itself.
    monkeypatch.setattr(network_module, "ROUTING_REFRESH_S", 3600.0)
    network = Network(load("line:4"), time_scale=0, seed=5, data_dir=tmp_path)
    await network.start()
    try:
        await network.wait_for_link_key(8 * 1024, 300)

        status, info = await _call(network, "n0", "sae-n0", "GET", "/api/v1/keys/sae-n3/status")
        assert status == 200
        assert info["source_KME_ID"] == "n0" and info["target_KME_ID"] == "n3"
        assert info["master_SAE_ID"] == "sae-n0" and info["slave_SAE_ID"] == "sae-n3"
        assert info["max_SAE_ID_count"] == 0 and info["key_size"] == 256 and info["stored_key_count"] > 0

        status, container = await _call(network, "n0", "sae-n0", "POST", "/api/v1/keys/sae-n3/enc_keys",
                                        {"number": 2, "size": 256})
        assert status == 200 and len(container["keys"]) == 2
        ids = [{"key_ID": k["key_ID"]} for k in container["keys"]]
        assert all(len(base64.b64decode(k["key"])) == 32 for k in container["keys"])

        # Nobody else gets them: another SAE's certificate, no certificate, the wrong master.
        status, error = await _call(network, "n3", "sae-n1", "POST", "/api/v1/keys/sae-n0/dec_keys", {"key_IDs": ids})
        assert status == 401 and "message" in error and "keys" not in error
        status, error = await _call(network, "n3", None, "POST", "/api/v1/keys/sae-n0/dec_keys", {"key_IDs": ids})
        assert status == 401
        status, error = await _call(network, "n3", "sae-n3", "POST", "/api/v1/keys/sae-n2/dec_keys", {"key_IDs": ids})
        assert status == 400 and "keys" not in error

        status, fetched = await _call(network, "n3", "sae-n3", "POST", "/api/v1/keys/sae-n0/dec_keys", {"key_IDs": ids})
        assert status == 200 and fetched == container
        status, error = await _call(network, "n3", "sae-n3", "POST", "/api/v1/keys/sae-n0/dec_keys", {"key_IDs": ids})
        assert status == 400  # a repeated dec_keys

        # GET forms.
        status, single = await _call(network, "n0", "sae-n0", "GET", "/api/v1/keys/sae-n3/enc_keys?number=1&size=128")
        assert status == 200 and len(base64.b64decode(single["keys"][0]["key"])) == 16, single
        key_id = single["keys"][0]["key_ID"]
        status, got = await _call(network, "n3", "sae-n3", "GET", f"/api/v1/keys/sae-n0/dec_keys?key_ID={key_id}")
        assert status == 200 and got == single

        # Bad input: the standard error body, status 400, nothing delivered.
        for body, raw in [(None, b"{not json"), ({"number": 0}, None), ({"size": 12}, None),
                          ({"number": "2"}, None), ({"number": 10_000}, None),
                          ({"additional_slave_SAE_IDs": ["sae-n2"]}, None), ({"extension_mandatory": [{"x": 1}]}, None),
                          ({"surprise": 1}, None), (None, b"[1, 2]"), (None, b"x" * 70_000)]:
            status, error = await _call(network, "n0", "sae-n0", "POST", "/api/v1/keys/sae-n3/enc_keys", body, raw)
            assert status == 400 and isinstance(error.get("message"), str), (body, raw, status, error)
        status, error = await _call(network, "n0", "sae-n0", "POST", "/api/v1/keys/nobody/enc_keys", {})
        assert status == 400
        status, error = await _call(network, "n3", "sae-n3", "GET", "/api/v1/keys/sae-n0/dec_keys?key_ID=not-a-uuid")
        assert status == 400

        # SIGKILL the slave's KME between enc_keys and dec_keys: the key survives the restart.
        status, container = await _call(network, "n0", "sae-n0", "POST", "/api/v1/keys/sae-n3/enc_keys", {"number": 3})
        assert status == 200
        network.nodes["n3"].local_process.kill()
        await network.nodes["n3"].local_process.wait()
        await network.restart_node("n3")
        ids = [{"key_ID": k["key_ID"]} for k in container["keys"]]
        status, fetched = await _call(network, "n3", "sae-n3", "POST", "/api/v1/keys/sae-n0/dec_keys", {"key_IDs": ids})
        assert status == 200 and fetched == container

        # The reset link makes fresh key again, and relays to the restarted node work.
        await network.wait_for_link_key(4 * 1024, 300)
        status, again = await _call(network, "n0", "sae-n0", "POST", "/api/v1/keys/sae-n3/enc_keys", {})
        assert status == 200, (again, network.live.snapshot())  # with the view the KMEs route on
        status, fetched = await _call(network, "n3", "sae-n3", "POST", "/api/v1/keys/sae-n0/dec_keys",
                                      {"key_IDs": [{"key_ID": again["keys"][0]["key_ID"]}]})
        assert status == 200 and fetched == again
        # n3 restarted from its durable link pool and reconciled it with n2: both ends hold the
        # same unused bits (equal levels between blocks), and each end's accounting balances.
        ends = []

        async def levels_agree():
            status = await network.status()
            ends[:] = [status["n2"].link_to("n3"), status["n3"].link_to("n2")]
            return ends[0].pool_bits == ends[1].pool_bits
        await eventually(levels_agree, 30, "n2 and n3 holding the same bits")
        assert ends[0].pool_bits == ends[1].pool_bits, ends
        for link in ends:
            assert link.generated_bits == link.pool_bits + link.consumed_bits + link.discarded_bits
    finally:
        await network.stop()

    for node in ("n0", "n3"):
        audit = open_tables(tmp_path / "nodes" / node / "keys.db").audit
        assert audit.verify() is None
        events = {e["event"] for e in audit.entries()}
        assert {"relayed", "delivered", "destroyed"} <= events
        assert not any(k in json.dumps(audit.entries()) for k in ("key\":", "material"))


async def test_killing_the_source_kme_mid_relay_leaves_no_key_on_one_side_only(tmp_path, monkeypatch):
    """SIGKILL the master's KME while many enc_keys relays are in flight. After its restart the
    slave's KME holds exactly the keys the source KME committed (and every key the master SAE
    received is among them): a key the destination stored but the dead source never committed
    is aborted from the destination's store.

    The kill lands between the two commits on every run: the source's 20th relay batch to find
    every share stored at the destination (and every later one) holds before its own commit
    (``node.hold_points``), and the source is killed once one is held there.
    """
    import sqlite3

    held_marker = tmp_path / "held-before-source-commit"
    monkeypatch.setenv(hold_points.ENV_VAR, f"{hold_points.SOURCE_COMMIT}@20:{held_marker}")
    network = Network(load("line:4"), time_scale=0, seed=9, data_dir=tmp_path)
    await network.start()
    received: list[str] = []
    stores = {n: tmp_path / "nodes" / n / "keys.db" for n in ("n0", "n3")}

    def keys_at(node, state=None):
        with sqlite3.connect(stores[node]) as db:
            rows = db.execute("select key_id from app_keys" + (" where state = ?" if state else ""),
                              (state,) if state else ())
            return {r[0] for r in rows}

    try:
        await network.wait_for_link_key(64 * 1024, 300)
        url = network.nodes["n0"].kme_url + "/api/v1/keys/sae-n3/enc_keys"
        connector = aiohttp.TCPConnector(ssl=_client_context(network, "sae-n0"), limit=32)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def master():
                while True:
                    try:
                        async with session.post(url, json={"number": 2}) as reply:
                            if reply.status == 200:
                                received.extend(k["key_ID"] for k in (await reply.json())["keys"])
                    except aiohttp.ClientError:
                        return  # the KME is gone
            masters = [asyncio.create_task(master()) for _ in range(24)]
            # Keys committed before the hold reach their master SAE; then no more can.
            await eventually(lambda: held_marker.exists() and received, 120, "a relay held between the commits")
            assert keys_at("n3", "relayed") - keys_at("n0"), "the held batch's keys are at n3 only"
            network.nodes["n0"].local_process.kill()
            await asyncio.gather(*masters)
        assert received  # the relays were running when the source died
        monkeypatch.delenv(hold_points.ENV_VAR)
        await network.restart_node("n0")

        def unsettled():
            with sqlite3.connect(stores["n0"]) as db:
                return db.execute("select count(*) from relay_outbox").fetchone()[0]
        await eventually(lambda: unsettled() == 0, 60, "the source's outbox settled")
    finally:
        await network.stop()

    destination, source = open_tables(stores["n3"]), open_tables(stores["n0"])
    held = {r.key_id for r in destination.keys.records() if r.state == "relayed"}
    committed = {r.key_id for r in source.keys.records()}  # delivered to the master SAE (or on their way)
    assert held == committed and set(received) <= held
    assert source.audit.verify() is None and destination.audit.verify() is None
    # The kill cut relays short (24 masters keep relays always in flight); the restarted source
    # settled each of their keys as revoked, and the destination withdrew the same keys, some of
    # them stored there already (the orphans this guards against), the others as tombstones.
    aborted = {e["key_id"] for e in source.audit.entries() if e["event"] == "revoked"}
    withdrawn = [e for e in destination.audit.entries() if e["event"] == "revoked"]
    assert aborted and aborted == {e["key_id"] for e in withdrawn}
    assert not aborted & set(received)
    orphans = [e for e in withdrawn if not e["detail"].get("before_arrival")]
    assert orphans, "no relay was caught between the two commits"


async def test_an_etsi_request_whose_fewest_hops_path_is_cut_is_served_over_another(tmp_path):
    """One routing world: the KME routes with the network's strategy over the live state the
    orchestrator publishes (a retry after a failed hop it did not know of is tested in
    tests/node/test_key_service.py)."""
    network = Network(load("ring:4"), time_scale=0, seed=11, data_dir=tmp_path)
    await network.start()
    try:
        await network.wait_for_link_key(16 * 1024, 300)
        # A cut the orchestrator ordered: published to every KME at once, so n0 routes around it.
        await network.cut_link("n0", "n1")
        status, info = await _call(network, "n0", "sae-n0", "GET", "/api/v1/keys/sae-n1/status")
        assert status == 200 and info["stored_key_count"] > 0  # the first hop is now n3
        status, container = await _call(network, "n0", "sae-n0", "POST", "/api/v1/keys/sae-n1/enc_keys", {})
        assert status == 200, container
        status, fetched = await _call(network, "n1", "sae-n1", "POST", "/api/v1/keys/sae-n0/dec_keys",
                                      {"key_IDs": [{"key_ID": container["keys"][0]["key_ID"]}]})
        assert status == 200 and fetched == container
        assert (await network.exposure("n3")).keys_read_whole == 1  # it went n0-n3-n2-n1
    finally:
        await network.stop()
