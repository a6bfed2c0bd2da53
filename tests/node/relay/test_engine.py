"""The relay engine: refusals before any link key is spent, hop accounting, multipath shares."""

import asyncio

import pytest

from qkdnet.node.errors import InvalidRequest, RelayError
from qkdnet.node.keystore.store import NodeStore
from qkdnet.node.relay.result import Route
from qkdnet.node.trusted_node import TrustedNode
from tests.node.relay.wiring import Line, line_abc

SALT = bytes(range(16))  # one comparison's salt


async def test_a_full_store_refuses_before_touching_any_link(tmp_path):
    store = NodeStore.open(tmp_path / "k.db", max_keys=2)
    node = TrustedNode("A", lambda name, address: None, store)  # no links at all: a pad draw would fail differently
    try:
        with pytest.raises(RelayError, match="key store full"):
            await node.relay.relay(Route.of([["A", "B"]]), 3, 256, 1.0)
    finally:
        await store.close()


@pytest.mark.parametrize("paths, message", [
    ([["B", "C"]], "must start at A"),
    ([["A"]], "at least two nodes"),
    ([["A", "B", "A"]], "visits a node twice"),
    ([["A", "B"], ["A", "C"]], "same destination"),
    ([["A", "B", "C"], ["A", "B", "C"]], "node-disjoint"),
])
async def test_bad_routes_are_refused_before_any_key_is_drawn(tmp_path, paths, message):
    line = await line_abc(tmp_path)
    try:
        with pytest.raises(InvalidRequest, match=message):
            await line.engines["A"].relay(Route.of(paths), 1, 256, 1.0)
        assert line.pool("A", "B").consumed_bits == 0
    finally:
        await line.close()


async def test_each_hop_pads_afresh_and_the_ends_hold_the_same_key(tmp_path):
    line = await line_abc(tmp_path)
    try:
        keys = await line.engines["A"].relay(Route.of([["A", "B", "C"]]), 5, 256, 5.0)
        at_a = {r.key_id: r.digest for r in await line.stores["A"].keys.listing("", SALT)}
        at_c = {r.key_id: r.digest for r in await line.stores["C"].keys.listing("", SALT)}
        assert set(at_a) == set(at_c) == {k.key_id for k in keys} and at_a == at_c
        for here, there in (("A", "B"), ("B", "A"), ("B", "C"), ("C", "B")):
            assert line.pool(here, there).consumed_bits == 5 * 256  # each pad on each hop once
        assert line.engines["B"].relays_forwarded == 5 and line.engines["B"].exposure.keys_read_whole == 5
    finally:
        await line.close()


async def test_a_failure_past_the_first_hop_names_the_link_at_fault(tmp_path):
    line = await line_abc(tmp_path)
    try:
        line.links["B"].cut.add("C")  # a fibre cut B sees and A does not know of
        with pytest.raises(RelayError) as error:
            await line.engines["A"].relay(Route.of([["A", "B", "C"]]), 1, 256, 5.0)
        assert "B->C: link out of service" in str(error.value) and error.value.failed_hop == ("B", "C")
        assert line.pool("A", "B").discarded_bits == 256 == line.pool("B", "A").discarded_bits
        assert await line.states("C") == {}
    finally:
        await line.close()


async def test_multipath_shares_reach_the_destination_and_no_intermediate_reads_the_key(tmp_path):
    line = Line(tmp_path)
    for name in ("A", "B", "C", "D"):
        line.node(name)
    await line.wire([("A", "B"), ("B", "D"), ("A", "C"), ("C", "D")])
    try:
        keys = await line.engines["A"].relay(Route.of([["A", "B", "D"], ["A", "C", "D"]]), 3, 256, 5.0)
        at_d = {r.key_id: r.digest for r in await line.stores["D"].keys.listing("", SALT)}
        at_a = {r.key_id: r.digest for r in await line.stores["A"].keys.listing("", SALT)}
        assert at_d == at_a and set(at_d) == {k.key_id for k in keys}
        for intermediate in ("B", "C"):
            exposure = line.engines[intermediate].exposure
            assert exposure.keys_read_whole == 0 and exposure.shares_read == 3
    finally:
        await line.close()


async def _late_share_leaves_the_key_at_neither_end(line, slow, eventually):
    """Let the held share go on; the source's abort settles and neither A nor D holds the key."""
    slow.forward_gate.open()
    await eventually(lambda: slow.forwards_done == 1, 30, "the late share handled")

    async def settled():
        return not await line.stores["A"].outbox.unsettled()
    await eventually(settled, 30, "the source's abort confirmed")
    assert await line.stores["A"].keys.records() == []
    assert await line.stores["D"].keys.count_waiting() == 0


async def _diamond(tmp_path, ttl_s=60.0):
    from qkdnet.node.relay.shares import ShareAssembler

    line = Line(tmp_path)
    for name in ("A", "B", "C"):
        line.node(name)
    line.node("D")
    line.engines["D"].assembler = ShareAssembler(ttl_s=ttl_s)
    await line.wire([("A", "B"), ("B", "D"), ("A", "C"), ("C", "D")])
    return line


async def test_a_multipath_key_whose_share_is_too_slow_ends_at_neither_end(tmp_path, eventually):
    """Issue 14: a share waiting longer than the assembler's lifetime fails its relay; the source
    aborts, so neither end holds the key (before, the destination acknowledged the early share
    and the source committed a key the destination had dropped)."""
    line = await _diamond(tmp_path, ttl_s=0.3)
    try:
        slow = line.peer("C", "D")
        slow.forward_gate.close()  # the second share waits at C
        with pytest.raises(RelayError, match="did not arrive"):
            await line.engines["A"].relay(Route.of([["A", "B", "D"], ["A", "C", "D"]]), 2, 256, 30.0)
        await _late_share_leaves_the_key_at_neither_end(line, slow, eventually)
        for here, there in (("B", "D"), ("D", "B"), ("C", "D"), ("D", "C")):
            pool = line.pool(here, there)
            assert pool.generated_bits == pool.recount_level_bits() + pool.consumed_bits + pool.discarded_bits
    finally:
        await line.close()


async def test_a_destination_restarted_between_shares_ends_with_the_key_at_neither_end(tmp_path, eventually):
    line = await _diamond(tmp_path)
    try:
        slow = line.peer("C", "D")
        slow.forward_gate.close()
        relay = asyncio.create_task(line.engines["A"].relay(Route.of([["A", "B", "D"], ["A", "C", "D"]]), 2, 256,
                                                            30.0))
        await eventually(lambda: slow.forward_gate.entered.is_set() and line.engines["D"].relays_forwarded == 2, 30,
                         "the first share at D, the second held at C")
        await line.engines["D"].close()  # D stops: the first share's answer fails ...
        await line.stores["D"].close()
        line.node("D")  # ... and D starts again from its store, without the share it held in memory
        with pytest.raises(RelayError):
            await relay
        await _late_share_leaves_the_key_at_neither_end(line, slow, eventually)
    finally:
        await line.close()
