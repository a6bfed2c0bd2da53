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


async def etsi_pair(pki, master_url: str, slave_url: str, master_sae: str, slave_sae: str) -> None:
    """One ETSI GS QKD 014 key: enc_keys by ``master_sae`` at ``master_url``, dec_keys by
    ``slave_sae`` at ``slave_url``; both answer 200 and the key arrives identical."""
    import ssl

    import aiohttp

    master = ssl.create_default_context(cafile=str(pki.ca_file))
    master.load_cert_chain(*map(str, pki.sae[master_sae]))
    slave = ssl.create_default_context(cafile=str(pki.ca_file))
    slave.load_cert_chain(*map(str, pki.sae[slave_sae]))
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{master_url}/api/v1/keys/{slave_sae}/enc_keys", json={"number": 1, "size": 256},
                                ssl=master) as reply:
            assert reply.status == 200
            sent = await reply.json()
        async with session.post(f"{slave_url}/api/v1/keys/{master_sae}/dec_keys",
                                json={"key_IDs": [{"key_ID": sent["keys"][0]["key_ID"]}]}, ssl=slave) as reply:
            assert reply.status == 200
            assert await reply.json() == sent
