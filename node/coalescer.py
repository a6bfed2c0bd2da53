"""Group sending: relays started together along the same path share one first-hop message.

Layer: node domain. Under load, single-key relays would each cost a hop message per hop;
here a relay joins the batch waiting for its path, and at most ``max_in_flight`` batches per
path travel at once. An idle node sends at once, so a lone relay gains no latency. Each caller
keeps its own accounting: a failed batch fails every relay in it, and each discards its pads.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

Item = TypeVar("Item")


class Coalescer(Generic[Item]):
    def __init__(self, send: Callable[[Hashable, list[Item]], Awaitable[None]], max_in_flight: int = 2) -> None:
        self._send = send
        self._max_in_flight = max_in_flight
        self._waiting: dict[Hashable, list[tuple[list[Item], asyncio.Future]]] = {}
        self._in_flight: dict[Hashable, int] = {}
        self.batches_sent = 0

    async def send(self, key: Hashable, items: list[Item]) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((items, future))
        if self._in_flight.get(key, 0) < self._max_in_flight:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            asyncio.create_task(self._drain(key))
        await future

    async def _drain(self, key: Hashable) -> None:
        try:
            while self._waiting.get(key):
                # A caller that gave up (timed out) before its batch left is not sent at all.
                batch = [(items, f) for items, f in self._waiting.pop(key) if not f.done()]
                if not batch:
                    continue
                self.batches_sent += 1
                try:
                    await self._send(key, [item for items, _ in batch for item in items])
                except Exception as exc:  # handed to every caller in the batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]
