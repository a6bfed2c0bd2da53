"""The KME endpoint drops clients that stall: in the TLS handshake, or while sending headers."""

import asyncio
import ssl
import time

from qkdnet.node.kme import api
from qkdnet.node.web import server as http_server
from qkdnet.orchestrator import certs
from qkdnet.orchestrator.topology import load


async def _kme(tmp_path):
    """KME n0's endpoint (no key service behind it: these clients never get that far)."""
    pki = certs.create(load("line:2"), tmp_path / "pki")
    cert, key = pki.kme["n0"]
    server = await api.start_kme(None, "127.0.0.1", 0, http_server.server_ssl_context(str(cert), str(key), str(pki.ca_file)))
    return server, int(server.url.rsplit(":", 1)[1]), pki


async def test_a_stalled_tls_handshake_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(http_server, "TLS_HANDSHAKE_TIMEOUT_S", 0.5)
    server, port, _ = await _kme(tmp_path)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # plain TCP: no ClientHello
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server, not by us
        writer.close()
    finally:
        await server.close()


async def test_a_client_that_trickles_its_request_headers_is_dropped(tmp_path, monkeypatch):
    """A complete TLS handshake, then headers a line at a time that never end: the server closes
    the connection once KEEPALIVE_TIMEOUT_S has passed without a whole request."""
    monkeypatch.setattr(http_server, "KEEPALIVE_TIMEOUT_S", 1.0)
    server, port, pki = await _kme(tmp_path)
    try:
        client = ssl.create_default_context(cafile=str(pki.ca_file))
        client.load_cert_chain(*map(str, pki.sae["sae-n0"]))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="127.0.0.1")
        writer.write(b"GET /api/v1/keys/sae-n1/status HTTP/1.1\r\nHost: n0\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 5:
            try:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
                closed = await asyncio.wait_for(reader.read(1), 0.3) == b""
            except TimeoutError:
                continue
            except (ConnectionError, ssl.SSLError):
                closed = True
            if closed:
                break
        assert closed and time.monotonic() - started < 3
        writer.close()
    finally:
        await server.close()
