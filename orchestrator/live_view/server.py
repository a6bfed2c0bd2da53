"""The live network view over HTTP, on the loopback interface, behind a bearer token.

Layer: adapter (HTTP). The supervisor serves it for the network it holds. The page and its
script ship in the package (``assets/``): no build step, nothing fetched from the internet. The
JSON the page polls carries counts and states only. The page and the JSON need the view's token
(made from the OS CSPRNG when the network comes up, printed by ``qkdnet up`` and ``qkdnet
dashboard`` in the view's URL): the page passes it on as ``Authorization: Bearer``; without it the
answer is 401. The script and style sheet, which hold no data, are served to anyone.
"""

from __future__ import annotations

import hmac
import pathlib
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from qkdnet.node.metrics import CONTENT_TYPE
from qkdnet.node.web.server import HttpServer, serve_app
from qkdnet.orchestrator.live_view.model import ViewModel
from qkdnet.orchestrator.live_view.network_metrics import NetworkMetrics, render

ASSETS = pathlib.Path(__file__).with_name("assets")
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def new_token() -> str:
    return secrets.token_urlsafe(24)


def view_app(model: ViewModel, token: str, metrics: NetworkMetrics | None = None) -> web.Application:
    def authorised(request: web.Request) -> bool:
        given = request.query.get("token", "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):]
        return hmac.compare_digest(given.encode(), token.encode())

    @web.middleware
    async def check_token(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if not request.path.startswith("/assets/") and not authorised(request):  # code, not data
            return web.json_response({"message": "the view's token is missing or wrong; use the URL "
                                                 "`qkdnet dashboard` prints"}, status=401)
        return await handler(request)

    async def page(request: web.Request) -> web.Response:
        return _asset("index.html")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ("view.js", "view.css"):
            raise web.HTTPNotFound()
        return _asset(name)

    async def view(request: web.Request) -> web.Response:
        return web.json_response(model.snapshot(), headers={"Cache-Control": "no-store"})

    async def network_metrics(request: web.Request) -> web.Response:
        if metrics is None:
            raise web.HTTPNotFound()
        return web.Response(body=render(metrics), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application(middlewares=[check_token])
    app.add_routes([web.get("/", page), web.get("/assets/{name}", asset), web.get("/view.json", view),
                    web.get("/metrics", network_metrics)])
    return app


def _asset(name: str) -> web.Response:
    path = ASSETS / name
    return web.Response(body=path.read_bytes(), content_type=CONTENT_TYPES[path.suffix],
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'self'; style-src 'self'; "
                                                            "script-src 'self'; connect-src 'self'"})


def metrics_only_app(render_metrics: Callable[[], bytes], token: str) -> web.Application:
    """Just ``/metrics``, behind a bearer token (what ``qkdnet experiment --metrics-port`` serves)."""
    async def serve(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        given = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.json_response({"message": "a bearer token is required"}, status=401)
        return web.Response(body=render_metrics(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.add_routes([web.get("/metrics", serve)])
    return app


async def start_view(model: ViewModel, token: str, metrics: NetworkMetrics | None = None, port: int = 0) -> HttpServer:
    """Serve the view (and the network-level metrics) on 127.0.0.1:port (0: a free one)."""
    return await serve_app(view_app(model, token, metrics), "127.0.0.1", port, None)
