"""ETSI GS QKD 014 edges over real HTTPS with mutual TLS, with in-process nodes behind the KMEs:
HEAD never draws keys, only a key's slave may fetch it (5.4), malformed input is 400 with the
standard body, and a key store that cannot take keys gives 503 without internal IDs or routes."""

import base64
import ssl

import aiohttp
import pytest

from qkdnet.node.errors import StoreFailure
from qkdnet.node.key_service import KeyService
from qkdnet.node.kme import api
from qkdnet.node.routing import LinkState, LiveState, RoutePlanner, make_strategy
from qkdnet.node.settings import KmeSettings
from qkdnet.node.web import server as http_server
from qkdnet.orchestrator import certs
from qkdnet.orchestrator.topology import load
from tests.node.relay.wiring import Line

SAES = {"sae-n0": "n0", "sae-n1": "n1", "sae-n2": "n2"}


class _DiskFull:
    """A node's store whose commits of arriving keys fail (as the database does on a full disk)
    while ``"n2"`` is in ``full``."""

    def __init__(self, store, full):
        self.outbox, self.links, self.keys = store.outbox, store.links, _Keys(store.keys, full)


class _Keys:
    def __init__(self, keys, full):
        self._keys, self._full = keys, full

    def __getattr__(self, name):
        return getattr(self._keys, name)

    async def add(self, keys, role, ttl_s=None):
        if "n2" in self._full:
            raise StoreFailure("key store database failed: database or disk is full")
        await self._keys.add(keys, role, ttl_s)


@pytest.fixture
async def kmes(tmp_path):
    """KMEs n0 and n2 over the line n0 - n1 - n2 (engines in this process), with the PKI."""
    pki = certs.create(load("line:3"), tmp_path / "pki")
    line = Line(tmp_path)
    line.node("n0")
    line.node("n1")
    line.node("n2", wrap=lambda store: _DiskFull(store, line.full))
    await line.wire([("n0", "n1"), ("n1", "n2")])
    planner = RoutePlanner(make_strategy("fewest_hops"), LiveState(
        [LinkState("n0", "n1", 1.0, 10**7), LinkState("n1", "n2", 1.0, 10**7)], SAES.values()), need_key=False)
    servers, urls = [], {}
    for name in ("n0", "n2"):
        cert, key = pki.kme[name]
        settings = KmeSettings()
        service = KeyService(name, settings, SAES, line.stores[name].keys, line.engines[name], line.links[name],
                             lambda: planner)
        server = await api.start_kme(service, "127.0.0.1", 0, http_server.server_ssl_context(str(cert), str(key),
                                                                                     str(pki.ca_file)))
        servers.append(server)
        urls[name] = server.url
    yield line, pki, urls
    for server in servers:
        await server.close()
    await line.close()


async def _call(pki, sae, method, url, body=None):
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    if sae is not None:
        context.load_cert_chain(*map(str, pki.sae[sae]))
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, ssl=context, json=body) as reply:
            text = await reply.read()
            return reply.status, (await reply.json(content_type=None) if text else None)


async def test_head_never_draws_keys(kmes):
    line, pki, urls = kmes
    status, _ = await _call(pki, "sae-n0", "HEAD", urls["n0"] + "/api/v1/keys/sae-n2/enc_keys")
    assert status == 400
    assert await line.stores["n2"].keys.count_waiting() == 0 and line.pool("n0", "n1").consumed_bits == 0


async def test_only_the_slave_fetches_a_key(kmes):
    _, pki, urls = kmes
    status, container = await _call(pki, "sae-n0", "POST", urls["n0"] + "/api/v1/keys/sae-n2/enc_keys", {"number": 1})
    assert status == 200
    ids = {"key_IDs": [{"key_ID": container["keys"][0]["key_ID"]}]}
    # The master at its own KME, naming itself as master: not its key to fetch.
    status, error = await _call(pki, "sae-n0", "POST", urls["n0"] + "/api/v1/keys/sae-n0/dec_keys", ids)
    assert status == 401 and "keys" not in error and "message" in error
    status, fetched = await _call(pki, "sae-n2", "POST", urls["n2"] + "/api/v1/keys/sae-n0/dec_keys", ids)
    assert status == 200 and fetched == container  # still deliverable to its slave
    assert len(base64.b64decode(fetched["keys"][0]["key"])) == 32


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/api/v1/keys/sae-n2/enc_keys?number=\u00b2", None),  # a superscript two: isdigit() says yes
    ("GET", "/api/v1/keys/sae-n2/enc_keys?size=1e3", None),
    ("POST", "/api/v1/keys/sae-n2/enc_keys", {"number": {"a": [[[[1]]]]}}),
    ("POST", "/api/v1/keys/sae-n2/enc_keys", {"number": 1.5}),
    ("PUT", "/api/v1/keys/sae-n2/enc_keys", {}),
    ("GET", "/api/v1/keys/sae-n2/nothing", None),
])
async def test_malformed_requests_are_400_with_the_standard_body(kmes, method, path, body):
    _, pki, urls = kmes
    status, error = await _call(pki, "sae-n0", method, urls["n0"] + path, body)
    assert status == 400 and isinstance(error["message"], str) and "keys" not in error


async def test_deeply_nested_json_is_400(kmes):
    _, pki, urls = kmes
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.load_cert_chain(*map(str, pki.sae["sae-n0"]))
    async with aiohttp.ClientSession() as session:
        async with session.post(urls["n0"] + "/api/v1/keys/sae-n2/enc_keys", ssl=context,
                                data=b"[" * 20_000 + b"]" * 20_000) as reply:
            assert reply.status == 400 and "message" in await reply.json()


async def test_a_store_that_cannot_take_keys_is_503_without_internal_ids(kmes):
    line, pki, urls = kmes
    line.full.add("n2")  # n2's store refuses to grow, as on a full disk: the relay fails, pads accounted
    status, error = await _call(pki, "sae-n0", "POST", urls["n0"] + "/api/v1/keys/sae-n2/enc_keys", {"number": 1})
    assert status == 503 and "KME n2" in error["message"]
    for internal in ("n1", ":a:", ":b:", "->", "link key"):
        assert internal not in error["message"]
    for here, there in (("n0", "n1"), ("n1", "n0"), ("n1", "n2"), ("n2", "n1")):
        pool = line.pool(here, there)
        assert pool.generated_bits == pool.recount_level_bits() + pool.consumed_bits + pool.discarded_bits
    assert await line.stores["n2"].keys.verify_audit() is None
