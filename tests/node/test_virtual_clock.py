"""Virtual time at a node: the clock releases block key only when it reaches the block's end, its
barrier waits for every link, and links never run a block ahead of their clock."""

import asyncio

import pytest

from qkdnet.node.errors import Conflict, Unavailable
from qkdnet.node.keystore.link_pool import LinkKeyPool
from qkdnet.node.link_runtime import LinkRuntime
from qkdnet.node.settings import ClockMode, NodeSettings
from qkdnet.node.virtual_clock import VirtualClock
from tests.helpers import eventually
from tests.node.inprocess import close_all, configure_line, link_pair, nodes_in
from tests.node.test_link_runtime import Receiver


def test_releases_run_when_the_clock_reaches_them_in_time_order():
    clock = VirtualClock()
    done = []
    clock.release_at(2.0, lambda: done.append("b"))
    clock.release_at(1.0, lambda: done.append("a"))
    clock.release_at(2.0, lambda: done.append("c"))  # same time: in the order recorded
    clock.advance(0.5)
    assert done == []
    clock.advance(2.0)
    assert done == ["a", "b", "c"]
    clock.release_at(1.5, lambda: done.append("now"))  # already reached: at once
    assert done[-1] == "now"
    clock.advance(1.0)  # never backwards
    assert clock.now_s == 2.0


class Link:
    def __init__(self, settled_from_s: float) -> None:
        self.settled_from_s = settled_from_s

    def settled_for(self, clock_s: float) -> bool:
        return self.settled_from_s > clock_s


async def test_the_barrier_waits_for_every_participant():
    clock = VirtualClock()
    slow, fast = Link(0.0), Link(10.0)
    clock.join(slow)
    clock.join(fast)
    clock.advance(1.0)
    assert not slow.settled_for(1.0)  # what holds the barrier below until the link moves on
    barrier = asyncio.ensure_future(clock.settled(1.0))
    slow.settled_from_s = 1.5  # its block under way now ends after the clock
    clock.notify()
    await asyncio.wait_for(barrier, 5)
    clock.leave(slow)
    slow.settled_from_s = 0.0  # a link out of service no longer holds the clock
    clock.advance(2.0)
    await asyncio.wait_for(clock.settled(2.0), 5)


def _virtual_pair(clock: VirtualClock, capacity_bits: int = 10**7):
    tx_settings, rx_settings = link_pair("A", "B", capacity_bits)
    tx = LinkRuntime(tx_settings, LinkKeyPool("a", capacity_bits), 0.0, clock)
    rx = LinkRuntime(rx_settings, LinkKeyPool("b", capacity_bits), 0.0, clock)
    blocks: list[tuple[float, int]] = []  # (emulated end, key bits) of each block the transmitter finished
    record = tx._record

    def spy(result, frame_id, confirmed=True, end_s=0.0):
        if result is not None:
            blocks.append((end_s, result.key.size if result.accepted else 0))
        record(result, frame_id, confirmed, end_s)

    tx._record = spy  # type: ignore[method-assign]
    return tx, rx, blocks


async def test_a_link_never_supplies_key_before_its_blocks_end_in_emulated_time():
    clock = VirtualClock()
    tx, rx, blocks = _virtual_pair(clock)
    tx.start(Receiver(rx))
    try:
        for to_s in (0.0, 0.004, 0.013, 0.013, 0.031):
            clock.advance(to_s)
            await asyncio.wait_for(clock.settled(to_s), 300)
            finished_by_now = sum(bits for end_s, bits in blocks if end_s <= to_s)
            assert tx.pool.generated_bits == rx.pool.generated_bits == finished_by_now
            assert tx.emulated_seconds <= to_s < tx.committed_until_s  # the block under way ends later
            assert all(end_s <= tx.committed_until_s for end_s, _ in blocks)  # never more than one block ahead
        assert sum(bits for end_s, bits in blocks if end_s <= 0.031) > 0
        assert any(end_s > 0.031 for end_s, _ in blocks) or tx.committed_until_s > 0.031
    finally:
        await tx.stop()
    assert tx.status().clock_ratio == 1.0


async def test_links_run_ahead_to_the_horizon_while_their_pools_cannot_fill():
    clock = VirtualClock()
    tx, rx, blocks = _virtual_pair(clock)
    tx.start(Receiver(rx))
    try:
        clock.advance(0.0, horizon_s=0.03)  # no fault before 0.03 s: blocks may start up to it
        await eventually(lambda: tx.next_start_s >= 0.03, 300, "blocks computed up to the horizon")
        assert tx.next_start_s >= 0.03 and all(start_s < 0.03 for start_s in _starts(blocks))
        assert tx.pool.generated_bits == rx.pool.generated_bits == 0  # none released: the clock is at 0
        clock.advance(0.03)
        await asyncio.wait_for(clock.settled(0.03), 300)
        assert tx.pool.generated_bits == sum(bits for end_s, bits in blocks if end_s <= 0.03) > 0
    finally:
        await tx.stop()


def _starts(blocks: list[tuple[float, int]]) -> list[float]:
    ends = [end_s for end_s, _ in blocks]
    return [0.0] + ends[:-1]  # back to back from 0 (no pause: the pool is far from full)


async def test_a_full_pool_pauses_the_link_until_the_clock_passes_its_draining():
    clock = VirtualClock()
    tx, rx, blocks = _virtual_pair(clock, capacity_bits=30_000)
    tx.start(Receiver(rx))
    try:
        to_s = 0.0
        while tx.paused_at_s is None:  # every advance waits until the link settled, so this ends
            to_s += 0.01
            clock.advance(to_s)
            await asyncio.wait_for(clock.settled(to_s), 300)
        produced = len(blocks)
        clock.advance(to_s + 0.05)
        await asyncio.wait_for(clock.settled(to_s + 0.05), 300)
        assert len(blocks) == produced and tx.paused_at_s == to_s + 0.05  # checked again, still full
        tx.pool.discard_all("drained by the test")  # at to_s + 0.05, as relays would
        assert tx.pool.below_low_watermark
        clock.advance(to_s + 0.06)
        await asyncio.wait_for(clock.settled(to_s + 0.06), 300)
        assert tx.paused_at_s is None and tx.committed_until_s > to_s + 0.06
        block_s = blocks[0][0]  # the first block ran from 0
        resumed_end_s = blocks[produced][0]  # resumed from the check that saw it drained
        assert resumed_end_s == pytest.approx(to_s + 0.05 + block_s, rel=1e-6)
    finally:
        await tx.stop()


class LateReceiver(Receiver):
    """A receiver whose node is not configured yet for its first two calls."""

    def __init__(self, runtime: LinkRuntime) -> None:
        super().__init__(runtime)
        self.refusals = 2

    async def resync(self, request):
        if self.refusals:
            self.refusals -= 1
            raise Unavailable("not configured yet")
        return await super().resync(request)


async def test_a_late_peer_does_not_move_the_links_emulated_time():
    clock = VirtualClock()
    late_tx, late_rx, late_blocks = _virtual_pair(clock)
    late_tx.start(LateReceiver(late_rx))
    other = VirtualClock()
    tx, rx, blocks = _virtual_pair(other)
    tx.start(Receiver(rx))
    try:
        for c in (clock, other):
            c.advance(0.01)
        await asyncio.wait_for(asyncio.gather(clock.settled(0.01), other.settled(0.01)), 300)
        # Tried again at the same emulated start: the same blocks, ending at the same times.
        # (Blocks ending after the clock may or may not have finished yet: only those before count.)
        assert [e for e, _ in late_blocks if e <= 0.01] == [e for e, _ in blocks if e <= 0.01]
        assert late_tx.pool.generated_bits > 0 and late_blocks[0][0] == blocks[0][0]
    finally:
        await late_tx.stop()
        await tx.stop()


async def test_a_node_in_real_time_has_no_clock_to_advance(tmp_path):
    nodes = nodes_in(tmp_path, "AB")
    await configure_line(nodes)
    try:
        with pytest.raises(Conflict, match="real time"):
            await nodes["A"].advance_clock(1.0)
    finally:
        await close_all(nodes)


async def test_nodes_in_virtual_time_answer_an_advance_once_their_links_settled(tmp_path):
    nodes = nodes_in(tmp_path, "AB")
    await configure_line(nodes, clock=ClockMode.VIRTUAL)
    try:
        statuses = await asyncio.wait_for(asyncio.gather(*(n.advance_clock(0.012) for n in nodes.values())), 300)
        a = statuses[0].links[0]  # the transmitter's status is its state at 0.012
        assert a.generated_bits > 0 and a.emulated_seconds <= 0.012
        # The receiver recorded each block before the transmitter could finish it, so once
        # every node answered, both ends hold the same key.
        b = (await nodes["B"].status()).links[0]
        assert b.generated_bits == a.generated_bits
        assert nodes["A"].relay.waits_for_key is False
    finally:
        await close_all(nodes)


def test_node_settings_default_to_real_time():
    assert NodeSettings(name="A", links=(), time_scale=1.0).clock is ClockMode.REALTIME
