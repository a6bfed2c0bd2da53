"""The node's /metrics endpoint for Prometheus, over HTTPS with mutual TLS.

Layer: adapter (HTTP). It is served with the node's HTTPS identity (the certificate its KME
uses, which names the node, its container host name, localhost and 127.0.0.1) and admits the
controller and the monitor identity (``qkdnet:monitor``, the scraper's certificate) only: a
caller without a certificate gets 401, any other identity 403. A development node started
with ``--insecure`` serves plain HTTP to anyone. Metrics carry counts and rates, never keys.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.metrics_core import Metric

from qkdnet.node.errors import NodeError, PermissionDenied
from qkdnet.node.identity import METRICS, authorise
from qkdnet.node.metrics import CONTENT_TYPE, render
from qkdnet.node.web.server import HttpServer, peer_common_name, serve_app

if TYPE_CHECKING:
    from qkdnet.node.trusted_node import TrustedNode


def metrics_app(node: TrustedNode, extra: Callable[[], Iterable[Metric]], tls: bool) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        if tls:
            try:
                authorise(METRICS, peer_common_name(request), frozenset(), node.name)
            except NodeError as exc:
                return web.Response(status=403 if isinstance(exc, PermissionDenied) else 401, text=f"{exc}\n")
        return web.Response(body=render(node, extra), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    return app


async def start_metrics(node: TrustedNode, extra: Callable[[], Iterable[Metric]], host: str, port: int,
                        context: ssl.SSLContext | None, advertise_host: str | None = None,
                        advertise_port: int | None = None) -> HttpServer:
    """Serve /metrics on host:port; ``context`` None: plain HTTP (a development node only)."""
    app = metrics_app(node, extra, context is not None)
    return await serve_app(app, host, port, context, advertise_host, advertise_port)
