"""ETSI GS QKD 014 over real HTTPS with mutual TLS against running node processes (line of 4: 3 hops)."""

import asyncio
import base64
import json
import ssl

import aiohttp
import pytest

from node.keystore.app_store import KeyStore
from orchestrator.network import Network
from orchestrator.topology import load

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


async def test_keys_over_three_hops_authorisation_bad_input_and_restart(tmp_path):
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
        network.nodes["n3"].process.kill()
        await network.nodes["n3"].process.wait()
        await network.restart_node("n3")
        ids = [{"key_ID": k["key_ID"]} for k in container["keys"]]
        status, fetched = await _call(network, "n3", "sae-n3", "POST", "/api/v1/keys/sae-n0/dec_keys", {"key_IDs": ids})
        assert status == 200 and fetched == container

        # The reset link makes fresh key again, and relays to the restarted node work.
        await network.wait_for_link_key(4 * 1024, 300)
        status, again = await _call(network, "n0", "sae-n0", "POST", "/api/v1/keys/sae-n3/enc_keys", {})
        assert status == 200
        status, fetched = await _call(network, "n3", "sae-n3", "POST", "/api/v1/keys/sae-n0/dec_keys",
                                      {"key_IDs": [{"key_ID": again["keys"][0]["key_ID"]}]})
        assert status == 200 and fetched == again
        # n3 restarted from its durable link pool and reconciled it with n2: both ends hold the
        # same unused bits (equal levels between blocks), and each end's accounting balances.
        for _ in range(200):
            status = await network.status()
            ends = [next(l for l in status[u].links if l.peer == v) for u, v in (("n2", "n3"), ("n3", "n2"))]
            if ends[0].pool_bits == ends[1].pool_bits:
                break
            await asyncio.sleep(0.05)
        assert ends[0].pool_bits == ends[1].pool_bits, ends
        for link in ends:
            assert link.generated_bits == link.pool_bits + link.consumed_bits + link.discarded_bits
    finally:
        await network.stop()

    for node in ("n0", "n3"):
        store = KeyStore(tmp_path / "nodes" / node / "keys.db")
        assert store.verify_audit() is None
        events = {e["event"] for e in store.audit_entries()}
        assert {"relayed", "delivered", "destroyed"} <= events
        assert not any(k in json.dumps(store.audit_entries()) for k in ("key\":", "material"))


async def test_killing_the_source_kme_mid_relay_leaves_no_key_on_one_side_only(tmp_path):
    """SIGKILL the master's KME while many enc_keys relays are in flight. After its restart the
    keys the slave's KME holds are exactly the keys the master SAE received: a key the
    destination stored but the dead source never committed is aborted from the source's store.

    The source is stopped (SIGSTOP) for a moment before the kill, so relays it had sent reach
    the destination and are stored there while the source cannot commit them any more.
    """
    import os
    import signal
    import sqlite3

    network = Network(load("line:4"), time_scale=0, seed=9, data_dir=tmp_path)
    await network.start()
    received: list[str] = []
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
            await asyncio.sleep(1.0)
            os.kill(network.nodes["n0"].process.pid, signal.SIGSTOP)
            await asyncio.sleep(0.5)
            network.nodes["n0"].process.kill()
            await asyncio.gather(*masters)
        assert received  # the relays were running when the source died
        await network.restart_node("n0")

        def unsettled():
            with sqlite3.connect(tmp_path / "nodes" / "n0" / "keys.db") as db:
                return db.execute("select count(*) from relay_outbox").fetchone()[0]
        for _ in range(600):
            if not unsettled():
                break
            await asyncio.sleep(0.1)
        assert unsettled() == 0
    finally:
        await network.stop()

    destination = KeyStore(tmp_path / "nodes" / "n3" / "keys.db")
    held = {r.key_id for r in destination.records() if r.state == "relayed"}
    assert held == set(received)
    source = KeyStore(tmp_path / "nodes" / "n0" / "keys.db")
    assert source.verify_audit() is None and destination.verify_audit() is None
    # The kill cut relays short (24 masters keep relays always in flight); the restarted source
    # settled each of their keys as revoked, and the destination withdrew the same keys, some of
    # them stored there already (the orphans this guards against), the others as tombstones.
    aborted = {e["key_id"] for e in source.audit_entries() if e["event"] == "revoked"}
    withdrawn = [e for e in destination.audit_entries() if e["event"] == "revoked"]
    assert aborted and aborted == {e["key_id"] for e in withdrawn}
    assert not aborted & set(received)
    orphans = [e for e in withdrawn if not e["detail"].get("before_arrival")]
    assert orphans, "no relay was caught between the two commits"
