"""The KME endpoint drops a client that connects and never completes its TLS handshake."""

import asyncio

from node.kme import api
from orchestrator import certs
from orchestrator.topology import load


async def test_a_stalled_tls_handshake_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "TLS_HANDSHAKE_TIMEOUT_S", 0.5)
    pki = certs.create(load("line:2"), tmp_path / "pki")
    cert, key = pki.kme["n0"]
    server = await api.start_kme(None, "127.0.0.1", 0, api.server_ssl_context(str(cert), str(key), str(pki.ca_file)))
    try:
        port = int(server.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # plain TCP: no ClientHello
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server, not by us
        writer.close()
    finally:
        await server.close()
