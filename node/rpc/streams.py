"""Many concurrent calls over one long-lived bidirectional gRPC stream, matched by call_id.

A unary grpc.aio call costs several times a stream message in Python, and a relay makes one
call per hop, so neighbours keep one stream open and multiplex on it. ``StreamMux`` is the
client end (reopens the stream after a failure); ``serve_multiplexed`` the server end (handles
requests concurrently, replies in completion order).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc


class StreamBroken(ConnectionError):
    """The stream ended or failed before the reply to a call arrived."""


class StreamMux:
    def __init__(self, open_stream: Callable[[], Any]) -> None:
        self._open_stream = open_stream
        self._call: Any = None
        self._reader: asyncio.Task | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._write_lock = asyncio.Lock()

    async def call(self, request: Any, timeout_s: float) -> Any:
        """Send request (its call_id is set here) and wait for the matching reply."""
        if self._call is None:
            self._call = self._open_stream()
            self._reader = asyncio.create_task(self._read(self._call))
        call = self._call
        call_id = next(self._ids)
        request.call_id = call_id
        future = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            async with self._write_lock:
                await call.write(request)
            return await asyncio.wait_for(future, timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise StreamBroken(f"stream failed: {exc.code().name}") from None
        except asyncio.InvalidStateError:
            raise StreamBroken("stream already closed") from None
        finally:
            self._pending.pop(call_id, None)

    async def _read(self, call: Any) -> None:
        reason = "stream ended"
        try:
            async for reply in call:
                future = self._pending.get(reply.call_id)
                if future is not None and not future.done():
                    future.set_result(reply)
        except grpc.aio.AioRpcError as exc:
            reason = f"stream failed: {exc.code().name}"
        except asyncio.CancelledError:
            reason = "stream closed"
        finally:
            if self._call is call:
                self._call = None
            for future in list(self._pending.values()):
                if not future.done():
                    future.set_exception(StreamBroken(reason))

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass


async def serve_multiplexed(requests: AsyncIterator[Any], handle: Callable[[Any], Awaitable[Any]]
                            ) -> AsyncIterator[Any]:
    """Server side: handle each request in its own task; yield replies tagged with its call_id.

    A client that goes away does not cancel handlers already running: a relay in progress
    finishes (and accounts its link key) even if nobody is left to hear the answer.
    """
    replies: asyncio.Queue = asyncio.Queue()
    running: set[asyncio.Task] = set()

    async def one(request: Any) -> None:
        reply = await handle(request)
        reply.call_id = request.call_id
        replies.put_nowait(reply)

    async def read() -> None:
        try:
            async for request in requests:
                task = asyncio.create_task(one(request))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:
                await asyncio.gather(*list(running), return_exceptions=True)
        finally:
            replies.put_nowait(None)

    reader = asyncio.create_task(read())
    try:
        while (reply := await replies.get()) is not None:
            yield reply
    finally:
        reader.cancel()
