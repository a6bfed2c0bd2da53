"""Test helpers shared by the suite (``conftest.py`` also offers them as fixtures)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

Predicate = Callable[[], "bool | Awaitable[bool]"]


async def eventually(predicate: Predicate, timeout_s: float = 30.0, what: str = "condition",
                     interval_s: float = 0.02) -> None:
    """Return as soon as ``predicate()`` (sync or async) is true; fail after ``timeout_s``.

    The timeout only bounds a failing test; a passing one returns the moment the condition
    holds, so a slow machine makes the test slower, never red.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s")
        await asyncio.sleep(interval_s)
