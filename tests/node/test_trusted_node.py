"""A trusted node: configuration, link ends, status, cuts and resets, through its constructor seams
(its store and a peer factory), with its neighbours in the same process."""

import asyncio
import dataclasses
import json

import pytest

from qkdnet.node.errors import Conflict, InvalidRequest, NotFound, RelayError
from qkdnet.node.relay.result import Route
from qkdnet.node.routing import RoutingState
from qkdnet.node.settings import NodeSettings
from tests.helpers import eventually
from tests.node.inprocess import close_all, configure_line, link_pair, nodes_in


@pytest.fixture
async def keyed(tmp_path):
    """Nodes A and B configured, with link key at both ends."""
    nodes = nodes_in(tmp_path, "AB")
    try:
        await configure_line(nodes)
        await eventually(lambda: _key_on_both_ends(nodes, "A", "B", 256), 120, "link key at both ends")
        yield nodes
    finally:
        await close_all(nodes)


async def _key_on_both_ends(nodes, u, v, bits=4096):
    ends = (nodes[u].links.by_peer(v).pool, nodes[v].links.by_peer(u).pool)
    return ends[0].sendable_bits >= bits and ends[1].sendable_bits >= bits and (
        ends[0].generated_bits == ends[1].generated_bits)


async def test_two_nodes_grow_the_same_key_report_it_and_relay_over_it(tmp_path):
    nodes = nodes_in(tmp_path, "AB")
    try:
        await configure_line(nodes)
        await eventually(lambda: _key_on_both_ends(nodes, "A", "B"), 120, "link key at both ends")
        keys = await nodes["A"].relay.relay(Route.of([["A", "B"]]), 2, 256, 5.0)
        salt = bytes(range(16))
        at_a = {r.key_id: r.digest for r in await nodes["A"].list_keys("", salt)}
        at_b = {r.key_id: r.digest for r in await nodes["B"].list_keys("A", salt)}
        assert at_a == at_b and set(at_a) == {k.key_id for k in keys} and all(at_a.values())
        other = {r.key_id: r.digest for r in await nodes["A"].list_keys("", bytes(16))}
        assert not set(other.values()) & set(at_a.values())  # another comparison, other digests

        status = await nodes["A"].status("https://kme")
        (link,) = status.links
        assert (status.name, status.kme_url, link.peer, link.role) == ("A", "https://kme", "B", "transmitter")
        assert link.blocks_accepted >= 1 and link.consumed_bits == 512 and link.balanced
        assert link.secret_bits_per_s > 0 and link.emulated_seconds > 0
        assert (await nodes["B"].status()).links[0].role == "receiver"
    finally:
        await close_all(nodes)


async def test_a_cut_link_refuses_relays_and_frames_and_says_so(keyed):
    nodes = keyed
    await nodes["A"].set_link_down("B")
    with pytest.raises(RelayError, match="out of service") as error:
        await nodes["A"].relay.relay(Route.of([["A", "B"]]), 1, 256, 1.0)
    assert error.value.failed_hop == ("A", "B")
    assert (await nodes["A"].status()).links[0].state == "cut"
    with pytest.raises(NotFound, match="out of service"):
        await nodes["A"].on_exchange("A~B", 1, [])
    assert not nodes["A"].routing.live.links[frozenset(("A", "B"))].up  # its own routing knows at once
    with pytest.raises(NotFound):
        await nodes["A"].set_link_down("Z")


async def test_configuration_is_checked_and_given_once(tmp_path):
    nodes = nodes_in(tmp_path, "AB")
    try:
        with pytest.raises(InvalidRequest, match="sent to node"):
            await nodes["A"].configure(NodeSettings(name="B", links=(), time_scale=0.0))
        await configure_line(nodes)
        assert nodes["A"].configured
        with pytest.raises(Conflict, match="already configured"):
            await nodes["A"].configure(NodeSettings(name="A", links=(), time_scale=0.0))
        tx, _ = link_pair("A", "B")
        with pytest.raises(NotFound):
            await nodes["A"].reset_link(dataclasses.replace(tx, link_id="A~Z"))
        with pytest.raises(InvalidRequest, match="unknown routing strategy"):
            nodes["A"].set_routing(RoutingState(strategy="dijkstra"))
    finally:
        await close_all(nodes)


async def test_a_reset_link_runs_afresh_on_the_same_pool(keyed):
    """The peer restarted with a new bootstrap secret: both ends run the link anew, keeping the pool."""
    nodes = keyed
    pool = nodes["A"].links.by_peer("B").pool
    generated = pool.generated_bits
    tx, rx = link_pair("A", "B", seed=2)  # a new secret for both ends
    await nodes["B"].reset_link(rx)
    await nodes["A"].reset_link(tx)
    assert nodes["A"].links.by_peer("B").pool is pool
    await eventually(lambda: pool.generated_bits > generated, 120, "a block under the new secret")
    await eventually(lambda: _key_on_both_ends(nodes, "A", "B", 256), 120, "both ends in step")


@pytest.mark.parametrize("time_scale, keeps_up", [(1e3, False), (0.005, True)])
async def test_status_says_how_well_the_host_keeps_up_with_the_emulated_clock(tmp_path, time_scale, keeps_up):
    """A block here covers about 0.02 emulated seconds and takes a fraction of a wall second to
    compute. At a time scale of 1,000 its clock wants it in 20 us: the link covers well under 5 %
    of its clock. At 0.005 it may take 4 s and the host keeps up: the transmitter waits out the
    rest (the ratio falls under 0.5 only if a block took over 8 s to compute)."""
    nodes = nodes_in(tmp_path, "AB")
    try:
        await configure_line(nodes, time_scale=time_scale)
        a = nodes["A"].links.by_peer("B")
        await eventually(lambda: a.runtime.blocks_accepted >= 1 and a.runtime.generating_s > 0, 120, "a block")
        ratio = (await nodes["A"].status()).links[0].clock_ratio
        assert (0.5 < ratio <= 1.0) if keeps_up else (0 < ratio < 0.05), ratio
        assert (await nodes["B"].status()).links[0].clock_ratio == 0.0  # the receiver has no clock of its own
    finally:
        await close_all(nodes)


async def test_a_fresh_start_destroys_what_the_store_kept_and_a_plain_restart_keeps_it(tmp_path):
    """An experiment's runs on attached nodes each begin with a fresh start: the keys, link pools
    and channel faults of the run before are destroyed (audited), not reused."""
    from qkdnet.node.impairment import Impairment

    nodes = nodes_in(tmp_path, "AB")
    try:
        await configure_line(nodes)
        await eventually(lambda: _key_on_both_ends(nodes, "A", "B"), 120, "link key at both ends")
        keys = await nodes["A"].relay.relay(Route.of([["A", "B"]]), 2, 256, 5.0)
        await nodes["A"].set_impairment("B", Impairment(extra_loss_db=1.0))
    finally:
        await close_all(nodes)
    for fresh in (False, True):
        nodes = nodes_in(tmp_path, "AB")
        try:
            await configure_line(nodes, fresh_start=fresh)
            a = nodes["A"].links.by_peer("B")
            # Nothing relays here: only the pool kept from before has key consumed.
            assert (a.pool.consumed_bits == 0) == fresh and (a.runtime.impairment.healthy == fresh)
            held = {r.key_id: r.state for r in await nodes["A"].store.keys.records()}
            assert {held[k.key_id] for k in keys} == ({"destroyed"} if fresh else {"relayed"})
        finally:
            await close_all(nodes)
    audit = [e for e in (await _audit_of(tmp_path / "A.db")) if e["event"] == "revoked"]
    assert {e["key_id"] for e in audit} == {k.key_id for k in keys}
    assert all("fresh start" in json.dumps(e) for e in audit)


async def _audit_of(path):
    from qkdnet.node.keystore.store import open_tables

    tables = open_tables(path)
    try:
        assert tables.audit.verify() is None
        return tables.audit.entries()
    finally:
        tables.close()


async def test_a_relay_from_the_receiver_waits_for_the_transmitter_to_record_the_block_it_uses(tmp_path, monkeypatch):
    """The receiver of a link keeps a block as it sends its last answer; the transmitter once that
    answer arrives. A relay the receiver sends from the new block at once must not fail at the
    transmitter for an unknown link key: it waits for the block (here added by hand, after the
    forward has started and found it missing)."""
    import hashlib
    import hmac

    import numpy as np

    from qkdnet.node.keystore.link_pool import LinkKeyId
    from qkdnet.node.relay.otp import one_time_pad
    from qkdnet.node.relay.result import RelayItem

    nodes = nodes_in(tmp_path, "AB")  # A transmits on A~B, B receives
    try:
        await configure_line(nodes, capacity_bits=40_000)
        pool = nodes["A"].links.by_peer("B").pool
        frame_id = 2**62  # far beyond the runtime's own frame numbers
        block = np.random.default_rng(7).integers(0, 2, 4096, dtype=np.uint8)
        half = block[2048:] if pool.receive_half == "b" else block[:2048]
        key = bytes(range(32))
        item = RelayItem("k-late-block", one_time_pad(key, half[:256]), LinkKeyId(frame_id, pool.receive_half, 0, 256))
        waiting = asyncio.Event()
        changed = pool.changed

        async def noted_changed():  # the forward says when it waits on the pool
            waiting.set()
            await changed()
        monkeypatch.setattr(pool, "changed", noted_changed)
        forward = asyncio.ensure_future(nodes["A"].relay.forward(("B", "A"), 1, [item]))
        noticed = asyncio.ensure_future(waiting.wait())
        await asyncio.wait({forward, noticed}, return_when=asyncio.FIRST_COMPLETED)
        noticed.cancel()
        assert not forward.done() and not pool.holds_block(frame_id)  # waiting for the block, not failed
        pool.add_block(frame_id, block)  # what the transmitter records once B's last answer arrives
        await forward
        held = {r.key_id: r.state for r in await nodes["A"].store.keys.records()}
        assert held["k-late-block"] == "relayed"
        salt = bytes(range(16))
        [entry] = [e for e in await nodes["A"].list_keys("B", salt) if e.key_id == "k-late-block"]
        assert entry.digest == hmac.new(salt, key, hashlib.sha256).digest()
    finally:
        await close_all(nodes)
