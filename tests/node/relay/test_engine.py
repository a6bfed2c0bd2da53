"""The relay engine: refusals before any link key is spent, hop accounting, multipath shares."""

import pytest

from node.errors import InvalidRequest, RelayError
from node.keystore.store import NodeStore
from node.relay.result import Route
from node.trusted_node import TrustedNode
from tests.node.relay.wiring import Line, line_abc


async def test_a_full_store_refuses_before_touching_any_link(tmp_path):
    store = NodeStore.open(tmp_path / "k.db", max_keys=2)
    node = TrustedNode("A", lambda address: None, store)  # no links at all: a pad draw would fail differently
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
        at_a = {r.key_id: r.digest for r in await line.stores["A"].keys.records()}
        at_c = {r.key_id: r.digest for r in await line.stores["C"].keys.records()}
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
        at_d = {r.key_id: r.digest for r in await line.stores["D"].keys.records()}
        at_a = {r.key_id: r.digest for r in await line.stores["A"].keys.records()}
        assert at_d == at_a and set(at_d) == {k.key_id for k in keys}
        for intermediate in ("B", "C"):
            exposure = line.engines[intermediate].exposure
            assert exposure.keys_read_whole == 0 and exposure.shares_read == 3
    finally:
        await line.close()
