"""Group sending: concurrent relays share batches; lone ones go at once; failures reach every caller."""

import asyncio

import pytest

from qkdnet.node.relay.coalescer import Coalescer
from tests.helpers import eventually


async def test_concurrent_sends_are_batched_and_all_items_arrive_once():
    sent: list[list[int]] = []

    async def send(key, items):
        sent.append(items)
        await asyncio.sleep(0.01)

    coalescer = Coalescer(send, max_in_flight=1)
    await coalescer.send("p", [-1])  # alone: sent at once, as a batch of one
    assert sent == [[-1]]
    sent.clear()

    async def staggered(i):
        await asyncio.sleep(0.001 * (i % 10))
        await coalescer.send("p", [i])

    await asyncio.gather(*(staggered(i) for i in range(50)))
    assert sorted(i for batch in sent for i in batch) == list(range(50))
    assert 1 < len(sent) < 50


async def test_failure_reaches_every_caller_of_the_batch():
    async def send(key, items):
        await asyncio.sleep(0.01)
        raise ConnectionError("peer gone")

    coalescer = Coalescer(send, max_in_flight=1)
    results = await asyncio.gather(*(coalescer.send("p", [i]) for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_a_caller_that_gave_up_before_its_batch_left_is_not_sent():
    sent: list[int] = []
    gate = asyncio.Event()

    async def send(key, items):
        sent.extend(items)
        await gate.wait()

    coalescer = Coalescer(send, max_in_flight=1)
    first = asyncio.create_task(coalescer.send("p", [1]))
    await eventually(lambda: sent == [1], 5, "the first batch on its way")
    with pytest.raises(asyncio.TimeoutError):  # its batch cannot leave while the first is out
        await asyncio.wait_for(coalescer.send("p", [2]), 0.01)
    gate.set()
    await first  # the batch loop has looked at what waited, and dropped the caller that gave up
    assert sent == [1]


async def test_each_caller_gets_the_results_of_its_own_items():
    async def send(key, items):
        await asyncio.sleep(0.005)
        return [f"{key}:{item}" for item in items]

    coalescer = Coalescer(send, max_in_flight=1)
    requests = [[i, i + 100] if i % 2 else [i] for i in range(20)]
    results = await asyncio.gather(*(coalescer.send("p", items) for items in requests))
    assert results == [[f"p:{item}" for item in items] for items in requests]
    assert coalescer.batches_sent < 20
