"""Presumed abort: keys whose relay the source did not commit end up held nowhere.

Three trusted nodes A - B - C in one process (``wiring``), each with its own durable key store.
Where a test needs events in a given order it holds calls at gates, never behind timers.
"""

import asyncio

import pytest

from qkdnet.node.errors import RelayError
from qkdnet.node.relay.result import Route
from tests.helpers import eventually
from tests.node.relay.wiring import Line, line_abc

ABC = Route.of([["A", "B", "C"]])


async def test_a_committed_relay_leaves_nothing_in_flight(tmp_path):
    line = await line_abc(tmp_path)
    try:
        keys = await line.engines["A"].relay(ABC, 3, 256, 5.0)
        assert await line.stores["A"].outbox.unsettled() == []
        states = await line.states("C")
        assert set(states) == {k.key_id for k in keys}
        assert set(states.values()) == {"relayed"}
    finally:
        await line.close()


@pytest.mark.parametrize("late", ["relay", "abort"])
async def test_a_timed_out_relay_is_withdrawn_at_the_destination(tmp_path, late):
    """The source gives up while the keys are still on their way. Whichever reaches C first,
    the late relay or the abort, C ends without the keys, and A's outbox is settled."""
    line = await line_abc(tmp_path)
    try:
        to_c, to_b = line.peer("B", "C"), line.peer("A", "B")
        to_c.forward_gate.close()  # the keys wait at B until the source has given up
        if late == "abort":
            to_b.abort_gate.close()  # ... and the abort waits until C has committed them
        with pytest.raises(RelayError, match="no answer in time"):
            await line.engines["A"].relay(ABC, 2, 256, 0.2)
        assert to_c.forward_gate.entered.is_set()
        if late == "relay":
            await eventually(lambda: _none_waiting(line, "A"), 30, "the abort confirmed")
            to_c.forward_gate.open()  # the late relay reaches C after its tombstones
        else:
            to_c.forward_gate.open()
            await eventually(lambda: _held(line, "C", 2), 30, "C holding the late keys")
            to_b.abort_gate.open()
            await eventually(lambda: _none_waiting(line, "A"), 30, "the abort confirmed")
        await eventually(lambda: to_c.forwards_done == 1, 30, "the late relay handled at C")
        states = await line.states("C")
        assert len(states) == 2 and set(states.values()) == {"destroyed"}
        assert await line.stores["C"].keys.count_waiting() == 0
        events = [e["event"] for e in await line.stores["C"].keys.audit_entries()]
        assert events.count("revoked") == 2 and (events.count("relayed") == 2) == (late == "abort")
        assert all([await s.keys.verify_audit() is None for s in line.stores.values()])
        # C refused the late relay (or revoked it), and every bit of the B-C link is accounted.
        for pool in (line.pool("B", "C"), line.pool("C", "B")):
            assert pool.generated_bits == pool.recount_level_bits() + pool.consumed_bits + pool.discarded_bits
    finally:
        await line.close()


async def test_a_source_that_crashed_before_its_commit_aborts_after_restart(tmp_path):
    """The store state a SIGKILL leaves between C's commit and A's: A's outbox holds the IDs,
    A holds no key, C holds the keys. A's restart from its store withdraws them at C."""
    line = Line(tmp_path)
    never = asyncio.Event()  # A's own commit never happens
    line.node("A", wrap=lambda store: _HeldCommit(store, never))
    line.node("B")
    line.node("C")
    await line.wire([("A", "B"), ("B", "C")])
    try:
        store_a = line.stores["A"]
        relay = asyncio.create_task(line.engines["A"].relay(ABC, 4, 256, 5.0))
        await eventually(lambda: _held(line, "C", 4), 30, "C holding the keys")
        await line.engines["A"].close()  # the node stops: its outbox keeps the IDs for the next start
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        assert await line.states("A") == {}
        await store_a.close()

        restarted = line.node("A")  # same data directory
        assert len(await line.stores["A"].outbox.unsettled()) == 1
        await restarted.outbox.resume()

        async def withdrawn():
            return (await line.stores["C"].keys.count_waiting() == 0
                    and not await line.stores["A"].outbox.unsettled())
        await eventually(withdrawn, 30, "the keys withdrawn at C")
        assert set((await line.states("C")).values()) == {"destroyed"}
        revoked = [e for e in await line.stores["A"].keys.audit_entries() if e["event"] == "revoked"]
        assert len(revoked) == 4 and all(e["detail"]["role"] == "source" for e in revoked)
    finally:
        await line.close()


async def test_a_relay_that_never_left_needs_no_abort(tmp_path):
    """No link key for the first hop: nothing left A, so A records nothing and aborts nothing."""
    line = await line_abc(tmp_path)
    try:
        with pytest.raises(RelayError, match="A->B") as error:
            await line.engines["A"].relay(ABC, 1000, 256, 0.2)  # more than the A-B pool holds
        assert error.value.failed_hop == ("A", "B")
        assert line.engines["A"].outbox.unsettled == 0 and await line.stores["A"].outbox.unsettled() == []
        assert await line.states("C") == {} and await line.stores["C"].keys.audit_entries() == []
    finally:
        await line.close()


async def _none_waiting(line, name):
    return line.engines[name].outbox.unsettled == 0 and not await line.stores[name].outbox.unsettled()


async def _held(line, name, count):
    return await line.stores[name].keys.count_waiting() == count


class _HeldCommit:
    """The source's store, but its commit of relayed keys waits for ``release``."""

    def __init__(self, store, release):
        self.outbox, self.links, self.keys = store.outbox, store.links, _HeldKeys(store.keys, release)


class _HeldKeys:
    def __init__(self, keys, release):
        self._keys, self._release = keys, release

    def __getattr__(self, name):
        return getattr(self._keys, name)

    async def add(self, keys, role, ttl_s=None):
        await self._release.wait()
        await self._keys.add(keys, role, ttl_s)
