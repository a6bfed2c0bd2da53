"""Group sending: work started together for the same key (a route) travels as one batch.

Layer: node domain. Under load, single-key relays would each cost a store commit and a hop
message per hop; here a caller joins the batch waiting for its key, and at most
``max_in_flight`` batches per key are under way at once. An idle node sends at once, so a lone
caller gains no latency. ``send`` returns the results for the caller's own items (the batch
function returns one result per item, or None). A failed batch fails every caller in it; each
keeps its own accounting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Item = TypeVar("Item")


class Coalescer(Generic[Key, Item]):
    def __init__(self, send: Callable[[Key, list[Item]], Awaitable[list[Any] | None]],
                 max_in_flight: int = 2) -> None:
        self._send = send
        self._max_in_flight = max_in_flight
        self._waiting: dict[Key, list[tuple[list[Item], asyncio.Future]]] = {}
        self._in_flight: dict[Key, int] = {}
        self._drainers: set[asyncio.Task] = set()  # kept, so a running batch is never collected
        self.batches_sent = 0

    async def send(self, key: Key, items: list[Item]) -> list[Any] | None:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((items, future))
        if self._in_flight.get(key, 0) < self._max_in_flight:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            task = asyncio.create_task(self._drain(key))
            self._drainers.add(task)
            task.add_done_callback(self._drainers.discard)
        return await future

    async def _drain(self, key: Key) -> None:
        try:
            while self._waiting.get(key):
                # A caller that gave up (timed out) before its batch left is not sent at all.
                batch = [(items, f) for items, f in self._waiting.pop(key) if not f.done()]
                if not batch:
                    continue
                self.batches_sent += 1
                try:
                    results = await self._send(key, [item for items, _ in batch for item in items])
                except Exception as exc:  # handed to every caller in the batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    offset = 0
                    for items, future in batch:
                        if not future.done():
                            future.set_result(None if results is None else results[offset:offset + len(items)])
                        offset += len(items)
        finally:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]
