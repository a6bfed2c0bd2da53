"""The node's gRPC policy: who the caller is, whether it may call, and errors as status codes.

Layer: RPC adapter. One server interceptor runs before every servicer method: it reads the
caller's identity from its TLS certificate (the common name), checks it against
``node.identity.PLANES`` (the controller calls Control and health, neighbours call Link and
Relay), makes it the call's ``node.identity.caller``, and maps any ``NodeError`` escaping the
method to its status code (``node.errors.STATUS``), naming the error's class in the trailing
metadata ``qkdnet-error``; servicers catch nothing and never see certificates. On the client,
``node_error`` rebuilds that class (or the kind of the bare status code, for a call that failed
before reaching a servicer: a dead peer, a refused handshake, a deadline).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from qkdnet.node.errors import NodeError, Unavailable, error_class, status_of
from qkdnet.node.identity import authorise, caller

ERROR_KIND_KEY = "qkdnet-error"


def grpc_code(error: NodeError) -> grpc.StatusCode:
    return grpc.StatusCode[status_of(error).grpc_code]


def node_error(exc: grpc.aio.AioRpcError, context: str = "") -> NodeError:
    """The node error an RPC failed with; ``context`` (say, the peer) prefixes the message."""
    kind = next((value for key, value in (exc.trailing_metadata() or ()) if key == ERROR_KIND_KEY), "")
    cls = error_class(str(kind), exc.code().name)
    if cls is NodeError and exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                           grpc.StatusCode.CANCELLED):
        cls = Unavailable
    message = exc.details() or exc.code().name
    return cls(f"{context}: {message}" if context else message)


async def _abort(context: grpc.aio.ServicerContext, error: NodeError) -> None:
    await context.abort(grpc_code(error), str(error), trailing_metadata=((ERROR_KIND_KEY, type(error).__name__),))


def _identity(context: grpc.aio.ServicerContext) -> str:
    names = context.auth_context().get("x509_common_name") or []
    return names[0].decode() if names else ""


class NodeInterceptor(grpc.aio.ServerInterceptor):
    """Authorisation (when given the node's neighbours) and error mapping for every method."""

    def __init__(self, neighbours: Callable[[], frozenset[str]] | None = None, me: str = "") -> None:
        """``neighbours``: the peers configured now. None: no authorisation (a server without
        TLS, for in-process tests only). ``me``: this node's name."""
        self._neighbours = neighbours
        self._me = me

    def _admit(self, service: str, context: grpc.aio.ServicerContext) -> None:
        identity = _identity(context)
        if self._neighbours is not None:
            authorise(service, identity, self._neighbours(), self._me)
        caller.set(identity)

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        service = handler_call_details.method.lstrip("/").split("/", 1)[0]
        admit = self._admit
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    admit(service, context)
                    return await inner(request, context)
                except NodeError as error:
                    await _abort(context, error)

            return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer,
                                                       handler.response_serializer)
        if handler.unary_stream is not None:
            inner_out = handler.unary_stream
            if not inspect.isasyncgenfunction(inner_out):  # it writes with context.write (health Watch)

                async def writing(request: Any, context: grpc.aio.ServicerContext) -> None:
                    try:
                        admit(service, context)
                        await inner_out(request, context)
                    except NodeError as error:
                        await _abort(context, error)

                return grpc.unary_stream_rpc_method_handler(writing, handler.request_deserializer,
                                                            handler.response_serializer)

            async def out_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    admit(service, context)
                    async for reply in inner_out(request, context):
                        yield reply
                except NodeError as error:
                    await _abort(context, error)

            return grpc.unary_stream_rpc_method_handler(out_stream, handler.request_deserializer,
                                                        handler.response_serializer)
        if handler.stream_stream is not None:
            inner_stream = handler.stream_stream

            async def streaming(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    admit(service, context)
                    async for reply in inner_stream(requests, context):
                        yield reply
                except NodeError as error:
                    await _abort(context, error)

            return grpc.stream_stream_rpc_method_handler(streaming, handler.request_deserializer,
                                                         handler.response_serializer)
        raise NodeError(f"{handler_call_details.method}: no policy for this kind of method")
