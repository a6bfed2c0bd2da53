"""The network-wide emulated clock as one node sees it, when the controller drives time.

Layer: node domain (no grpc). In virtual time the controller advances every node's clock to the
same value T and serves the events up to T only after every node answered. A node answers once
each of its transmitting links has *settled* for T: its block in progress ends after T, or its
pool is full and it checked that at T, or it is out of service. So no link starts a block later
than the clock allows, and a block's key enters the pools only once the clock reaches the block's
emulated end (``release_at``): what the links hold at T depends on the physics and the seed, not
on how fast the host ran them.

With each advance the controller also gives a *horizon*: no fault (cut, repair, impairment)
touches a link before it. A link may start a block before the clock reaches the block's start,
up to the horizon, when its pool cannot be full then: the pool's level plus the key of its own
blocks not yet released is below capacity (relays only lower it). The start it takes is then
the one the clock would have given it, so results stay the same, and links keep computing while
the controller serves a step's requests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol


class Participant(Protocol):
    """A transmitting link as the clock's barrier sees it (``LinkRuntime``)."""

    def settled_for(self, clock_s: float) -> bool: ...


class VirtualClock:
    """``now_s`` is set by the controller only; nothing here reads the wall clock."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.horizon_s = 0.0  # blocks may start before this without waiting for the clock (see above)
        self._changed = asyncio.Event()
        self._participants: set[Participant] = set()
        self._releases: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()  # equal release times: in the order they were recorded
        self.barrier_wait_s = 0.0  # wall seconds the controller's advances waited for links here

    def join(self, participant: Participant) -> None:
        self._participants.add(participant)
        self.notify()

    def leave(self, participant: Participant) -> None:
        self._participants.discard(participant)
        self.notify()

    def notify(self) -> None:
        """A participant's state changed: wake whoever waits on the clock or the barrier."""
        self._changed.set()

    async def changed(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    def release_at(self, at_s: float, action: Callable[[], None]) -> None:
        """Run ``action`` (a block entering the pool) once the clock reaches ``at_s``: now if it has."""
        if at_s <= self.now_s:
            action()
        else:
            heapq.heappush(self._releases, (at_s, next(self._order), action))

    def advance(self, to_s: float, horizon_s: float | None = None) -> None:
        """Move the clock forward (never back) and release what ends by then, in time order;
        ``horizon_s``: the controller's new horizon (at least the clock)."""
        if to_s > self.now_s:
            self.now_s = to_s
        self.horizon_s = max(self.now_s, horizon_s if horizon_s is not None else self.now_s)
        while self._releases and self._releases[0][0] <= self.now_s:
            heapq.heappop(self._releases)[2]()
        self.notify()

    async def wait_until(self, at_s: float) -> None:
        while self.now_s < at_s:
            await self.changed()

    async def wait_past(self, at_s: float) -> None:
        """Until the next advance beyond ``at_s``."""
        while self.now_s <= at_s:
            await self.changed()

    async def settled(self, clock_s: float) -> None:
        """Until every participant has settled for ``clock_s`` (the controller's barrier)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not all(p.settled_for(clock_s) for p in self._participants):
            await self.changed()
        self.barrier_wait_s += loop.time() - started


__all__ = ["Participant", "VirtualClock"]
