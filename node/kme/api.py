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
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Histogram

from qkdnet.node.errors import NodeError, status_of
from qkdnet.node.key_service import KeyService
from qkdnet.node.web.server import HttpServer, peer_common_name, serve_app

MAX_BODY_BYTES = 64 * 1024
DIGITS = re.compile(r"[0-9]{1,9}")
BODY_TIMEOUT_S = 10.0
ENC_FIELDS = {"number", "size", "additional_slave_SAE_IDs", "extension_mandatory", "extension_optional"}
DEC_FIELDS = {"key_IDs", "key_IDs_extension"}
ENDPOINTS = ("status", "enc_keys", "dec_keys")  # the metric's endpoint label; anything else is "other"
REQUEST_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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


class KmeApi:
    def __init__(self, service: KeyService) -> None:
        self.service = service
        self.requests = Counter("qkdnet_etsi_requests", "ETSI GS QKD 014 requests, by endpoint and status code",
                                ["endpoint", "code"], registry=None)
        self.request_seconds = Histogram("qkdnet_etsi_request_duration_seconds",
                                         "Time to answer an ETSI GS QKD 014 request", ["endpoint"],
                                         buckets=REQUEST_BUCKETS_S, registry=None)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._measured, self._errors])
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
    async def _measured(self, request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Count and time every request (after ``_errors`` made every failure a response)."""
        started = time.perf_counter()
        last = request.path.rstrip("/").rsplit("/", 1)[-1]
        endpoint = last if last in ENDPOINTS and request.path.startswith("/api/v1/keys/") else "other"
        response = await handler(request)
        self.requests.labels(endpoint, str(response.status)).inc()
        self.request_seconds.labels(endpoint).observe(time.perf_counter() - started)
        return response

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
        name = peer_common_name(request)
        if not name:
            raise ApiError(401, "a client certificate is required")
        if name not in self.service.local_saes():
            raise ApiError(401, f"SAE {name!r} is not attached to KME {self.service.kme_id}")
        return name

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
    """The running endpoint: its URL, its request metrics, and ``close`` to stop it."""

    def __init__(self, http: HttpServer, api: KmeApi) -> None:
        self.api = api
        self.url = http.url
        self._http = http

    async def close(self) -> None:
        await self._http.close()


async def start_kme(service: KeyService, host: str, port: int, context: ssl.SSLContext,
                    advertise_host: str | None = None, advertise_port: int | None = None) -> KmeServer:
    """Serve the API on host:port (0: any free port); its URL names the advertised host and port
    (by default the ones it listens on)."""
    api = KmeApi(service)
    return KmeServer(await serve_app(api.app(), host, port, context, advertise_host, advertise_port), api)
