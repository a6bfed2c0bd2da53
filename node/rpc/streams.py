"""Many concurrent calls over one long-lived bidirectional gRPC stream, matched by call_id.

A grpc.aio message costs a few hundred microseconds of CPU at each end, whatever it carries,
and a relay makes one call per hop. So neighbours keep one stream open and multiplex on it,
and each stream message carries every call queued while the previous message was being
written (a reply message likewise every reply ready). An idle stream sends a lone call at once;
under load, calls share messages. ``StreamMux`` is the client end (reopens the stream after a
failure); ``serve_multiplexed`` the server end (handles requests concurrently, replies in
completion order). Batch messages follow one convention: requests in ``calls``, replies in
``replies``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc


class StreamBroken(ConnectionError):
    """The stream ended or failed before the reply to a call arrived."""


class StreamMux:
    def __init__(self, open_stream: Callable[[], Any], batch: Callable[..., Any]) -> None:
        """``batch``: the request batch message type (``calls=[...]``)."""
        self._open_stream = open_stream
        self._batch = batch
        self._call: Any = None
        self._reader: asyncio.Task | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._outbox: list[Any] = []
        self._writer: asyncio.Task | None = None
        self._writer_call: Any = None  # the stream the running writer writes to

    @property
    def is_open(self) -> bool:
        """Whether a stream is open (the next call does not open one)."""
        return self._call is not None

    async def call(self, request: Any, timeout_s: float) -> Any:
        """Send request (its call_id is set here) and wait for the matching reply."""
        if self._call is None:
            self._call = self._open_stream()
            self._reader = asyncio.create_task(self._read(self._call))
        call_id = next(self._ids)
        request.call_id = call_id
        future = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        self._outbox.append(request)
        if self._writer is None or self._writer_call is not self._call:  # none, or one left on a dead stream
            self._writer_call = self._call
            self._writer = asyncio.create_task(self._write(self._call))
        try:
            async with asyncio.timeout(timeout_s):  # cheaper than wait_for: no task per call
                return await future
        finally:
            self._pending.pop(call_id, None)

    async def _write(self, call: Any) -> None:
        """Write what is queued, one message at a time (grpc allows one write in flight).

        Stops once the stream was replaced: calls queued since then belong to the new one.
        """
        batch: list[Any] = []
        try:
            while self._outbox and self._call is call:
                batch, self._outbox = self._outbox, []
                await call.write(self._batch(calls=batch))
                batch = []
        except Exception as exc:  # the unsent calls fail; the next call reopens the stream
            reason = f"stream failed: {exc.code().name}" if isinstance(exc, grpc.aio.AioRpcError) else \
                f"stream already closed ({type(exc).__name__})"
            failed = batch
            if self._call is call:
                failed, self._outbox = batch + self._outbox, []
            for request in failed:
                future = self._pending.get(request.call_id)
                if future is not None and not future.done():
                    future.set_exception(StreamBroken(reason))
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

    async def _read(self, call: Any) -> None:
        reason = "stream ended"
        try:
            async for message in call:
                for reply in message.replies:
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
        for task in (self._reader, self._writer):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass


async def serve_multiplexed(messages: AsyncIterator[Any], handle: Callable[[Any], Awaitable[Any]],
                            batch: Callable[..., Any]) -> AsyncIterator[Any]:
    """Server side: handle each request in its own task; yield replies tagged with its call_id,
    as many as are ready in each ``batch`` message (``replies=[...]``).

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
            async for message in messages:
                for request in message.calls:
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
            ready = [reply]
            while not replies.empty():
                more = replies.get_nowait()
                if more is None:
                    yield batch(replies=ready)
                    return
                ready.append(more)
            yield batch(replies=ready)
    finally:
        reader.cancel()
