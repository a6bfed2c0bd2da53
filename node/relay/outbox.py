"""Presumed abort for end-to-end relays: a key its source did not commit survives nowhere.

Layer: node domain (no grpc). Before a relay's keys leave the source, their IDs are recorded
durably (the store's outbox); the source's own commit of the keys removes them in the same
transaction. IDs still in the outbox belong to relays that failed, timed out or were cut short
by a crash, and the destination may hold those keys all the same. So the source sends an abort
along the route until the destination confirms it: keys held there are revoked and overwritten,
keys not (yet) there get a tombstone so that a late relay of them is refused. Only then are the
IDs settled, audited as revoked, at the source.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from qkdnet.node.keystore.store import AsyncOutbox

ABORT_REASON = "relay not committed at its source"
RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # wait after each failed round (the last repeats)
IDS_PER_ABORT = 1000  # key IDs per abort message

log = logging.getLogger("node")

SendAbort = Callable[[list[str], list[str]], Awaitable[None]]  # (path, key IDs) -> confirmed


class RelayOutbox:
    def __init__(self, store: AsyncOutbox, send_abort: SendAbort) -> None:
        self._store = store
        self._send_abort = send_abort
        self._tasks: set[asyncio.Task] = set()
        self._closed = False

    async def open(self, key_ids: list[str], paths: list[list[str]]) -> None:
        """Durable before any of these keys leaves: raises ``StoreError`` if the store refuses."""
        await self._store.open(key_ids, paths)

    def abandon(self, key_ids: list[str], paths: list[list[str]]) -> None:
        """The relay of these keys failed or its outcome is unknown: abort them at the destination."""
        if self._closed:  # a stopping node: the outbox rows stay, and the next start aborts them
            return
        for start in range(0, len(key_ids), IDS_PER_ABORT):
            task = asyncio.create_task(self._settle(key_ids[start:start + IDS_PER_ABORT], paths))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def resume(self) -> None:
        """At start: abort whatever the previous run left in flight."""
        for key_ids, paths in await self._store.unsettled():
            self.abandon(key_ids, paths)

    @property
    def unsettled(self) -> int:
        """Abort rounds under way (each for up to IDS_PER_ABORT keys)."""
        return len(self._tasks)

    async def _settle(self, key_ids: list[str], paths: list[list[str]]) -> None:
        # Only IDs still in the outbox: a commit that completed after its caller was cancelled
        # has settled its keys (the store runs calls in order, so it ran before this check).
        key_ids = await self._store.unsettled_among(key_ids)
        failures = 0
        while key_ids:
            reasons = []
            for path in paths:  # any route to the destination will do
                try:
                    await self._send_abort(path, key_ids)
                    await self._store.close(key_ids, ABORT_REASON)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    reasons.append(str(exc) or type(exc).__name__)
                    continue
                return
            failures += 1
            log.warning("abort of %d uncommitted relayed keys to %s not confirmed (attempt %d): %s",
                        len(key_ids), paths[0][-1], failures, "; ".join(reasons))
            await asyncio.sleep(RETRY_S[min(failures, len(RETRY_S)) - 1])

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
