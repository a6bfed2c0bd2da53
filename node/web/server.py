"""An aiohttp application served on one socket, with or without TLS: the KME's and /metrics.

Layer: adapter (HTTP). The listening socket is made here rather than by an aiohttp site, which
cannot bound the TLS handshake: a client that connects and stalls is dropped after
TLS_HANDSHAKE_TIMEOUT_S. Idle keep-alive connections, and ones trickling request headers, close
after KEEPALIVE_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import ssl

from aiohttp import web

from qkdnet.node.endpoint import join_host_port

TLS_HANDSHAKE_TIMEOUT_S = 10.0
KEEPALIVE_TIMEOUT_S = 30.0


def server_ssl_context(cert_file: str, key_file: str, ca_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(ca_file)
    # OPTIONAL, not REQUIRED: a certificate, if sent, must chain to the CA; a caller without
    # one completes the handshake and is told 401 (in the ETSI error body at the KME).
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def peer_common_name(request: web.Request) -> str:
    """The common name of the caller's certificate ('' without one), which TLS has checked
    against the CA."""
    cert = request.transport.get_extra_info("peercert") if request.transport else None
    names = [value for rdn in (cert or {}).get("subject", ()) for key, value in rdn if key == "commonName"]
    return names[0] if names else ""


class HttpServer:
    """A running endpoint: its URL, and ``close`` to stop it."""

    def __init__(self, runner: web.AppRunner, server: asyncio.AbstractServer, url: str) -> None:
        self._runner = runner
        self._server = server
        self.url = url

    async def close(self) -> None:
        self._server.close()
        await self._runner.cleanup()


async def serve_app(app: web.Application, host: str, port: int, context: ssl.SSLContext | None,
                    advertise_host: str | None = None, advertise_port: int | None = None) -> HttpServer:
    """Serve ``app`` on host:port (0: any free port); the URL names the advertised host and port
    (by default the ones it listens on)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=KEEPALIVE_TIMEOUT_S)
    await runner.setup()
    try:
        if runner.server is None:
            raise RuntimeError("aiohttp runner set up without a server")
        server = await asyncio.get_running_loop().create_server(
            runner.server, host, port, ssl=context, reuse_address=True,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S if context is not None else None)
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = server.sockets[0].getsockname()[1]
    scheme = "https" if context is not None else "http"
    return HttpServer(runner, server, f"{scheme}://{join_host_port(advertise_host or host, advertise_port or bound_port)}")
