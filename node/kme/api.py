"""ETSI GS QKD 014 v1.1.1 (REST key delivery) for one KME, over HTTPS with mutual TLS.

Layer: adapter (HTTP). The SAE is identified by the common name of its client certificate, which the
TLS layer has already checked against the development CA; an SAE not attached to this KME, or
a caller without a certificate, gets 401. Request errors are 400 and server-side inability to
serve is 503 (node errors by ``node.errors.STATUS``), each with the standard error body
``{"message": ..., "details": [...]}``.
Additional slave SAEs are refused (``max_SAE_ID_count`` is 0, as the standard allows). Keys
never reach the log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from qkdnet.node.endpoint import join_host_port
from qkdnet.node.errors import NodeError, status_of
from qkdnet.node.key_service import KeyService

MAX_BODY_BYTES = 64 * 1024
DIGITS = re.compile(r"[0-9]{1,9}")
BODY_TIMEOUT_S = 10.0
TLS_HANDSHAKE_TIMEOUT_S = 10.0  # a client that stalls its handshake loses the connection
KEEPALIVE_TIMEOUT_S = 30.0  # idle keep-alive connections close, and so do ones trickling request headers
ENC_FIELDS = {"number", "size", "additional_slave_SAE_IDs", "extension_mandatory", "extension_optional"}
DEC_FIELDS = {"key_IDs", "key_IDs_extension"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, details: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.details = details or []


def _error(status: int, message: str, details: list[dict] | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    return web.json_response(body, status=status)


def server_ssl_context(cert_file: str, key_file: str, ca_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(ca_file)
    # OPTIONAL, not REQUIRED: a certificate, if sent, must chain to the CA; a caller without
    # one completes the handshake and is told 401 in the standard error body.
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


class KmeApi:
    def __init__(self, service: KeyService) -> None:
        self.service = service

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._errors])
        app.add_routes([
            # No HEAD: aiohttp would answer it by running the GET handler, and a HEAD must never
            # draw keys (it answers 400, method not allowed).
            web.get("/api/v1/keys/{slave}/status", self.status, allow_head=False),
            web.get("/api/v1/keys/{slave}/enc_keys", self.enc_keys, allow_head=False),
            web.post("/api/v1/keys/{slave}/enc_keys", self.enc_keys),
            web.get("/api/v1/keys/{master}/dec_keys", self.dec_keys, allow_head=False),
            web.post("/api/v1/keys/{master}/dec_keys", self.dec_keys),
        ])
        return app

    @web.middleware
    async def _errors(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return _error(exc.status, str(exc), exc.details)
        except NodeError as exc:  # the one table of node errors to status codes
            return _error(status_of(exc).http_status, str(exc))
        except web.HTTPNotFound:
            return _error(400, f"no such resource: {request.path}")
        except web.HTTPMethodNotAllowed:
            return _error(400, f"method {request.method} not allowed on {request.path}")

    # -- handlers -----------------------------------------------------------------------
    async def status(self, request: web.Request) -> web.Response:
        master = self._caller(request)
        slave = self._known(request.match_info["slave"], "slave_SAE_ID")
        pair = self.service.status(master, slave)
        k = self.service.kme
        return web.json_response({
            "source_KME_ID": pair.source_kme, "target_KME_ID": pair.target_kme,
            "master_SAE_ID": master, "slave_SAE_ID": slave, "key_size": k.default_key_size,
            "stored_key_count": pair.stored_key_count, "max_key_count": k.max_keys,
            "max_key_per_request": k.max_key_per_request, "max_key_size": k.max_key_size,
            "min_key_size": k.min_key_size, "max_SAE_ID_count": 0})

    async def enc_keys(self, request: web.Request) -> web.Response:
        master = self._caller(request)
        slave = self._known(request.match_info["slave"], "slave_SAE_ID")
        if request.method == "POST":
            body = await self._json_object(request, ENC_FIELDS)
        else:
            body = {name: self._int_query(request, name) for name in ("number", "size") if name in request.query}
            if set(request.query) - {"number", "size"}:
                raise ApiError(400, "unknown query parameter(s): " + ", ".join(sorted(set(request.query) - {"number", "size"})))
        number, size = self._number_and_size(body)
        if body.get("additional_slave_SAE_IDs"):
            if not isinstance(body["additional_slave_SAE_IDs"], list):
                raise ApiError(400, "additional_slave_SAE_IDs must be an array of strings")
            raise ApiError(400, "additional_slave_SAE_IDs is not supported by this KME (max_SAE_ID_count is 0)")
        mandatory = body.get("extension_mandatory")
        if mandatory is not None:
            if not isinstance(mandatory, list) or not all(isinstance(e, dict) for e in mandatory):
                raise ApiError(400, "extension_mandatory must be an array of objects")
            if mandatory:
                raise ApiError(400, "not all extension_mandatory parameters are supported",
                               [{"extension_mandatory_unsupported": mandatory}])
        if "extension_optional" in body and not (isinstance(body["extension_optional"], list)
                                                 and all(isinstance(e, dict) for e in body["extension_optional"])):
            raise ApiError(400, "extension_optional must be an array of objects")
        keys = await self.service.request_keys(master, slave, number, size)
        return _key_container(keys)

    async def dec_keys(self, request: web.Request) -> web.Response:
        slave = self._caller(request)
        master = self._known(request.match_info["master"], "master_SAE_ID")
        if request.method == "POST":
            body = await self._json_object(request, DEC_FIELDS)
            entries = body.get("key_IDs")
            if not isinstance(entries, list) or not entries:
                raise ApiError(400, "key_IDs must be a non-empty array of {\"key_ID\": ...} objects")
            if len(entries) > self.service.kme.max_key_per_request:
                raise ApiError(400, f"at most {self.service.kme.max_key_per_request} key_IDs per request")
            key_ids = []
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("key_ID"), str) or set(entry) - {"key_ID", "key_ID_extension"}:
                    raise ApiError(400, "each key_IDs entry must be an object with a string key_ID")
                key_ids.append(entry["key_ID"])
        else:
            if set(request.query) != {"key_ID"} or len(request.query.getall("key_ID")) != 1:
                raise ApiError(400, "GET dec_keys takes exactly one key_ID query parameter")
            key_ids = [request.query["key_ID"]]
        for key_id in key_ids:
            try:
                uuid.UUID(key_id)
            except ValueError:
                raise ApiError(400, f"key_ID {key_id[:64]!r} is not a UUID") from None
        keys = await self.service.fetch_keys(master, slave, key_ids)
        return _key_container(keys)

    # -- validation ---------------------------------------------------------------------
    def _caller(self, request: web.Request) -> str:
        cert = request.transport.get_extra_info("peercert") if request.transport else None
        names = [value for rdn in (cert or {}).get("subject", ()) for key, value in rdn if key == "commonName"]
        if not names:
            raise ApiError(401, "a client certificate is required")
        if names[0] not in self.service.local_saes():
            raise ApiError(401, f"SAE {names[0]!r} is not attached to KME {self.service.kme_id}")
        return names[0]

    def _known(self, sae: str, field: str) -> str:
        if not self.service.knows(sae):
            raise ApiError(400, f"{field} {sae[:64]!r} is not a known SAE")
        return sae

    @staticmethod
    def _int_query(request: web.Request, name: str) -> int:
        text = request.query[name]
        if not DIGITS.fullmatch(text):  # str.isdigit() would take "²", which int() refuses
            raise ApiError(400, f"{name} must be a positive integer")
        return int(text)

    async def _json_object(self, request: web.Request, allowed: set[str]) -> dict:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise ApiError(400, f"request body larger than {MAX_BODY_BYTES} bytes")
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                raw = await request.read()
        except TimeoutError:
            raise ApiError(400, f"request body not received within {BODY_TIMEOUT_S:.0f} s") from None
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(400, f"request body larger than {MAX_BODY_BYTES} bytes") from None
        try:
            body = json.loads(raw) if raw else {}
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # nesting too deep: RecursionError
            raise ApiError(400, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        unknown = set(body) - allowed
        if unknown:
            raise ApiError(400, "unknown field(s): " + ", ".join(sorted(unknown)[:10]))
        return body

    def _number_and_size(self, body: dict) -> tuple[int, int]:
        k = self.service.kme
        number, size = body.get("number", 1), body.get("size", k.default_key_size)
        for name, value in (("number", number), ("size", size)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ApiError(400, f"{name} must be an integer")
        if not 1 <= number <= k.max_key_per_request:
            raise ApiError(400, f"number must be between 1 and max_key_per_request ({k.max_key_per_request})")
        if not k.min_key_size <= size <= k.max_key_size:
            raise ApiError(400, f"size must be between {k.min_key_size} and {k.max_key_size} bits")
        if size % 8:
            raise ApiError(400, "size must be a multiple of 8")
        return number, size


def _key_container(keys: list[tuple[str, bytes]]) -> web.Response:
    return web.json_response({"keys": [{"key_ID": key_id, "key": base64.b64encode(material).decode()}
                                       for key_id, material in keys]})


class KmeServer:
    """The running endpoint: its URL, and ``close`` to stop it."""

    def __init__(self, runner: web.AppRunner, server: asyncio.AbstractServer, url: str) -> None:
        self._runner = runner
        self._server = server
        self.url = url

    async def close(self) -> None:
        self._server.close()
        await self._runner.cleanup()


async def start_kme(service: KeyService, host: str, port: int, context: ssl.SSLContext,
                    advertise_host: str | None = None, advertise_port: int | None = None) -> KmeServer:
    """Serve the API on host:port (0: any free port); its URL names the advertised host and port
    (by default the ones it listens on).

    The listening socket is made here rather than by an aiohttp site, which cannot bound the
    TLS handshake: a client that connects and stalls is dropped after TLS_HANDSHAKE_TIMEOUT_S.
    """
    runner = web.AppRunner(KmeApi(service).app(), access_log=None, handle_signals=False,
                           keepalive_timeout=KEEPALIVE_TIMEOUT_S)
    await runner.setup()
    try:
        if runner.server is None:
            raise RuntimeError("aiohttp runner set up without a server")
        server = await asyncio.get_running_loop().create_server(
            runner.server, host, port, ssl=context, reuse_address=True, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S)
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = server.sockets[0].getsockname()[1]
    return KmeServer(runner, server, f"https://{join_host_port(advertise_host or host, advertise_port or bound_port)}")
