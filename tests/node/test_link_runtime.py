"""One link end's BB84 engine: blocks accepted at both ends fill both pools alike; a full pool
pauses generation; an unreachable peer is reported, not fatal; blocks run side by side."""

import asyncio
import dataclasses

import numpy as np

from qkdnet.node.errors import Unavailable
from qkdnet.node.keystore.link_pool import LinkKeyPool
from qkdnet.node.link_runtime import FrameForPeer, LinkRuntime
from qkdnet.node.qkd.bits import pack
from qkdnet.node.qkd.channel import transmit
from qkdnet.node.qkd.link import pulses_for_detections
from qkdnet.node.qkd.sifting import slot_gaps
from tests.helpers import eventually
from tests.node.inprocess import link_pair


class Receiver:
    """The transmitter's peer: the receiver's runtime, called directly."""

    def __init__(self, runtime: LinkRuntime) -> None:
        self.runtime = runtime

    async def deliver_frame(self, frame):
        return await self.runtime.on_frame(frame), False

    async def exchange(self, link_id, frame_id, envelopes):
        return await self.runtime.on_exchange(frame_id, envelopes)

    async def resync(self, request):
        return await self.runtime.on_resync(request)


class Unreachable:
    async def resync(self, request):
        raise Unavailable("peer down")

    async def deliver_frame(self, frame):
        raise Unavailable("peer down")


class HoldsTheSecondBlock(Receiver):
    """Answers the second frame's exchanges only once a third frame has been delivered: the
    transmitter gets past it only by running two blocks at once. (The first block runs alone:
    it resynchronises the link.)"""

    def __init__(self, runtime: LinkRuntime) -> None:
        super().__init__(runtime)
        self.frames: list[int] = []
        self.third_delivered = asyncio.Event()
        self.most_open = 0

    async def deliver_frame(self, frame):
        answer = await super().deliver_frame(frame)
        self.frames.append(frame.frame_id)
        if len(self.frames) >= 3:
            self.third_delivered.set()
        return answer

    async def exchange(self, link_id, frame_id, envelopes):
        if len(self.frames) >= 2 and frame_id == self.frames[1]:
            await self.third_delivered.wait()
        self.most_open = max(self.most_open, self.runtime.status().open_blocks)
        return await super().exchange(link_id, frame_id, envelopes)


CAPACITY_FOR_SEVERAL_BLOCKS = 10**6


class CountsOpenBlocks(Receiver):
    """Notes the most blocks the transmitter had under way at any exchange."""

    def __init__(self, runtime: LinkRuntime, transmitter: LinkRuntime) -> None:
        super().__init__(runtime)
        self.transmitter = transmitter
        self.most_open = 0

    async def exchange(self, link_id, frame_id, envelopes):
        self.most_open = max(self.most_open, self.transmitter.status().open_blocks)
        return await super().exchange(link_id, frame_id, envelopes)


def _pair(capacity_bits=10**7, blocks_in_flight=None):
    tx_settings, rx_settings = link_pair("A", "B", capacity_bits)
    if blocks_in_flight is not None:
        tx_settings, rx_settings = (dataclasses.replace(
            s, processing=dataclasses.replace(s.processing, blocks_in_flight=blocks_in_flight))
            for s in (tx_settings, rx_settings))
    tx = LinkRuntime(tx_settings, LinkKeyPool("a", capacity_bits), 0.0)
    rx = LinkRuntime(rx_settings, LinkKeyPool("b", capacity_bits), 0.0)
    return tx, rx


async def test_accepted_blocks_fill_both_pools_with_the_same_key():
    tx, rx = _pair()
    tx.start(Receiver(rx))
    try:
        await eventually(lambda: tx.blocks_accepted >= 2 and rx.blocks_accepted == tx.blocks_accepted, 120,
                         "two blocks at both ends")
    finally:
        await tx.stop()
    assert tx.pool.generated_bits == rx.pool.generated_bits > 0
    link_key, bits = tx.pool.allocate(512)
    assert np.array_equal(rx.pool.take_by_id(link_key), bits)
    status = tx.status()
    assert (status.peer, status.role, status.state) == ("B", "transmitter", "down")
    assert status.generated_bits == tx.pool.generated_bits and status.balanced and 0 < status.qber < 0.11
    assert status.sifted_bits_per_s > status.secret_bits_per_s > 0
    assert tx.status(in_service=False).state == "cut"


async def test_a_link_runs_two_blocks_at_once_and_both_ends_keep_the_same_keys():
    tx, rx = _pair(capacity_bits=CAPACITY_FOR_SEVERAL_BLOCKS, blocks_in_flight=2)
    peer = HoldsTheSecondBlock(rx)
    tx.start(peer)
    try:
        # Compared once the pool is full: no block is under way then (with two, one end is often
        # a block ahead of the other while they run).
        await eventually(lambda: tx.state == "full" and rx.status().open_blocks == 0, 120,
                         "the pool full, the second block held until the third was delivered")
        assert tx.blocks_accepted == rx.blocks_accepted >= 4
        assert tx.blocks_aborted == rx.blocks_aborted == 0
        assert tx.resyncs == rx.resyncs == 1  # only the first block's: no block was given up
        assert peer.most_open == 2 and tx.status().open_blocks == 0
    finally:
        await tx.stop()
    assert tx.pool.generated_bits == rx.pool.generated_bits
    pads, bits = tx.pool.allocate_many([512] * (tx.pool.sendable_bits * 3 // 4 // 512))  # from every block
    assert np.array_equal(np.concatenate([rx.pool.take_by_id(pad) for pad in pads]), bits)


async def test_blocks_side_by_side_give_the_statistics_of_blocks_one_at_a_time():
    """Same seed, same statistics, whatever the blocks in flight: each block's public randomness
    follows its place in the link, not its thread's timing, and near a full pool blocks run one
    at a time, so as many blocks fill it."""
    runs, most_open = [], []
    for in_flight in (1, 2):
        tx, rx = _pair(capacity_bits=CAPACITY_FOR_SEVERAL_BLOCKS, blocks_in_flight=in_flight)
        peer = CountsOpenBlocks(rx, tx)
        tx.start(peer)
        try:
            await eventually(lambda tx=tx: tx.state == "full", 120, "the pool full")
        finally:
            await tx.stop()
        runs.append((tx.blocks_accepted, tx.sifted_bits, tx.pool.generated_bits, tx.last_qber, rx.pool.generated_bits))
        most_open.append(peer.most_open)
    assert most_open == [1, 2]
    assert runs[0] == runs[1] and runs[0][0] >= 4


async def test_a_full_pool_pauses_generation():
    tx, rx = _pair(capacity_bits=1000)  # one block fills it
    tx.start(Receiver(rx))
    try:
        await eventually(lambda: tx.state == "full", 120, "the transmitter pausing")
        assert tx.pool.full and rx.status().state == "full"  # the receiver reports the pause too
        # Paused until the pool drops below its low watermark: taking key wakes it.
        accepted = tx.blocks_accepted
        tx.pool.discard_all("test: drained")
        await eventually(lambda: tx.blocks_accepted > accepted, 120, "generation resumed")
    finally:
        await tx.stop()


async def test_an_unreachable_peer_is_reported_and_retried():
    tx, _ = _pair()
    tx.start(Unreachable())
    try:
        await eventually(lambda: tx.last_abort_reason == "peer unreachable: Unavailable", 30, "the failure seen")
        assert tx.status().state == "down" and tx.blocks_accepted == 0
    finally:
        await tx.stop()


async def test_what_the_orchestrator_gives_a_link_does_not_determine_its_key():
    """The same link settings twice (seed and bootstrap secret included): the first block has the
    same statistics both times and a different key (issue 14: secrets come from the OS)."""
    tx_settings, rx_settings = link_pair("A", "B", capacity_bits=1)
    runs = []
    for _ in range(2):
        tx = LinkRuntime(tx_settings, LinkKeyPool("a", 1), 0.0)
        rx = LinkRuntime(rx_settings, LinkKeyPool("b", 1), 0.0)
        tx.start(Receiver(rx))
        try:
            await eventually(lambda tx=tx: tx.state == "full", 120, "one block")  # a 1-bit pool: one block only
        finally:
            await tx.stop()
        runs.append((tx, rx))
    (tx1, rx1), (tx2, rx2) = runs
    assert tx1.blocks_accepted == tx2.blocks_accepted == 1
    assert (tx1.sifted_bits, tx1.last_qber, tx1.pool.generated_bits) == (tx2.sifted_bits, tx2.last_qber,
                                                                         tx2.pool.generated_bits)
    first, second = (tx.pool.allocate(256)[1] for tx in (tx1, tx2))
    assert not np.array_equal(first, second)


def _frame_for(rx: LinkRuntime, frame_id: int) -> FrameForPeer:
    """A frame as the transmitter would send it (what the receiver's detectors saw)."""
    s = rx.settings
    n_pulses = pulses_for_detections(s.params, s.processing.block_detections)
    _, seen, _ = transmit(s.params, n_pulses, np.random.default_rng(frame_id))
    return FrameForPeer(s.link_id, frame_id, n_pulses, int(seen.slots.size),
                        slot_gaps(seen.slots).astype("<u4").tobytes(), pack(seen.basis), pack(seen.bit),
                        pack(seen.double_click.astype(np.uint8)))


async def test_the_receiver_keeps_at_most_blocks_in_flight_open_and_drops_the_oldest():
    _, rx = _pair(blocks_in_flight=2)
    for frame_id in (1, 2):
        assert await rx.on_frame(_frame_for(rx, frame_id))  # Bob's first message of each block
    assert rx.status().open_blocks == 2
    assert await rx.on_frame(_frame_for(rx, 3))  # the transmitter went on without frame 1
    assert rx.status().open_blocks == 2
    assert await rx.on_exchange(1, [b"anything"]) == ([], True)  # frame 1 is closed here
    assert await rx.on_frame(_frame_for(rx, 2)) == []  # a late copy of an earlier frame opens nothing
    assert rx.status().open_blocks == 2
