"""Node errors on gRPC: the server side turns them into status codes, the client side back.

Layer: RPC adapter. Both directions read ``node.errors.STATUS``. On the server, one interceptor
catches a ``NodeError`` escaping any servicer method and aborts the call with its code, naming
the error's class in the trailing metadata ``qkdnet-error``; servicers catch nothing. On the
client, ``node_error`` rebuilds that class (or the kind of the bare status code, for a call that
failed before reaching a servicer: a dead peer, a deadline).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from node.errors import NodeError, Unavailable, error_class, status_of

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


class NodeErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps a ``NodeError`` from any unary or streaming servicer method to its status code."""

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await inner(request, context)
                except NodeError as error:
                    await _abort(context, error)

            return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer,
                                                       handler.response_serializer)
        if handler.stream_stream is not None:
            inner_stream = handler.stream_stream

            async def streaming(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for reply in inner_stream(requests, context):
                        yield reply
                except NodeError as error:
                    await _abort(context, error)

            return grpc.stream_stream_rpc_method_handler(streaming, handler.request_deserializer,
                                                         handler.response_serializer)
        return handler
