"""One QKD device of a node: runs the BB84 engine with one neighbour, block after block.

Layer: node domain. The transmitter end owns the source and the channel physics: it samples
each frame, keeps its own record, hands the receiver only what the receiver's detectors saw,
then exchanges classical envelopes until both sessions end. Heavy steps run in worker threads
so the event loop keeps answering; quick ones (a Cascade round) run in place.

In real time, blocks are paced in emulated time (pulses / pulse rate divided by the time scale;
0 means as fast as possible), generation pauses while the pool is full, and up to
``ProcessingParams.blocks_in_flight`` blocks run at once, so one link uses more than one core:
frames leave in order (each sampled and delivered after the one before), a block that must
resynchronise runs alone, and near a full pool blocks run one at a time. In virtual time
(``node.virtual_clock``) a block starts only once the network's clock has reached its emulated
start, its key enters the pools at both ends when the clock reaches its emulated end, and a full
pool is checked at each advance of the clock; pauses and back-offs are emulated seconds.

A lost, late or repeated message never ends a link. After any block that did not end accepted
with every answer received (and before the first), the transmitter resynchronises: the two ends
keep only the authentication units both still hold, and a block the transmitter kept without
hearing the receiver's last answer is kept only if the receiver holds it too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qkdnet.node.abort_reasons import abort_category
from qkdnet.node.impairment import Impairment
from qkdnet.node.keystore.link_pool import LinkKeyPool
from qkdnet.node.qkd.attacks import Attack
from qkdnet.node.qkd.authentication import AuthKeyRange
from qkdnet.node.qkd.bits import pack
from qkdnet.node.qkd.channel import BobRecord, transmit
from qkdnet.node.qkd.endpoint import BlockResult, LinkEndpoint
from qkdnet.node.qkd.link import pulses_for_detections
from qkdnet.node.qkd.messages import message_type
from qkdnet.node.qkd.params import LinkParams
from qkdnet.node.qkd.sessions import QUICK_TO_HANDLE, WAITS_FOR_EARLIER_BLOCKS, AliceSession, BobSession
from qkdnet.node.qkd.sifting import slot_gaps
from qkdnet.node.settings import LinkSettings, Role
from qkdnet.node.status import LinkStatus
from qkdnet.node.virtual_clock import VirtualClock

log = logging.getLogger(__name__)

UNCONFIRMED = "block kept by the transmitter only (the receiver's last answer was lost)"
SILENT_BACKOFF_S = 0.1  # after each block in a row the receiver would not take part in, wait longer
SILENT_BACKOFF_MAX_S = 2.0
QBER_BACKOFF_AFTER = 3  # blocks in a row over the QBER threshold before the transmitter slows down
QBER_BACKOFF_S = 0.5  # then waits this long, doubling with each further one, up to
QBER_BACKOFF_MAX_S = 30.0
VIRTUAL_RETRIES_IN_PLACE = 10  # virtual time: failed tries (about 5 s of wall time) before an outage


@dataclass(frozen=True)
class Resync:
    """One end's half of a resynchronisation: the authentication units it holds, and block
    frames (asked: those the transmitter holds unconfirmed; answered: those of them held)."""

    link_id: str
    auth_units: tuple[AuthKeyRange, ...]
    frames: tuple[int, ...]


@dataclass(frozen=True)
class FrameForPeer:
    link_id: str
    frame_id: int
    n_pulses: int
    count: int
    slot_gaps: bytes
    bases: bytes
    bits: bytes
    double_clicks: bytes
    end_s: float = 0.0  # virtual time: the block's emulated end (when its key becomes usable)


@dataclass(frozen=True)
class PlannedBlock:
    """A block as its pulses leave: the channel's physics and attack then, and its size.
    ``start_s``: its emulated start in virtual time (None in real time)."""

    physics: LinkParams
    attack: Attack | None
    n_pulses: int
    start_s: float | None = None


class BlockPeer(Protocol):
    """What the transmitter needs of the receiver to run blocks."""

    async def deliver_frame(self, frame: FrameForPeer) -> tuple[list[bytes], bool]: ...
    async def exchange(self, link_id: str, frame_id: int, envelopes: list[bytes]) -> tuple[list[bytes], bool]: ...
    async def resync(self, request: Resync) -> Resync: ...


class LinkPeer(BlockPeer, Protocol):
    """The link's peer node: blocks, and the reconciliation of the two pools after a restart."""

    async def reconcile(self, link_id: str, inventory: dict) -> dict: ...


async def _handle(session: AliceSession | BobSession, envelope: bytes) -> list[bytes]:
    """A session's answer to an envelope: a quick step in place, anything else in a worker thread."""
    if message_type(envelope) in QUICK_TO_HANDLE:
        return session.handle(envelope)
    return await _in_thread(session.handle, envelope)


async def _in_thread(function: Callable[..., list[bytes]], *args: object) -> list[bytes]:
    """Run a session step in a worker thread. If the caller is cancelled meanwhile, wait for the
    step to finish first, so nothing touches the session (or its keys) while it runs."""
    step = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(step)
    except asyncio.CancelledError:
        await asyncio.wait({step})
        raise


def frame_to_record(frame: FrameForPeer) -> BobRecord:
    slots = np.cumsum(np.frombuffer(frame.slot_gaps, "<u4").astype(np.int64))

    def unpack(data: bytes) -> np.ndarray:
        return np.unpackbits(np.frombuffer(data, np.uint8), count=frame.count)

    return BobRecord(n_pulses=frame.n_pulses, slots=slots, basis=unpack(frame.bases), bit=unpack(frame.bits),
                     double_click=unpack(frame.double_clicks).astype(bool))


def qber_backoff_s(aborted_in_a_row: int) -> float:
    """How long the transmitter waits before its next block after this many in a row aborted
    for their QBER. An attack, or a channel gone bad, would otherwise abort block after block,
    each spending authentication key that only accepted blocks refill: the blocks are spaced out
    (as a link that detects an attack should), and probing goes on so the link resumes after it."""
    if aborted_in_a_row < QBER_BACKOFF_AFTER:
        return 0.0
    return min(QBER_BACKOFF_MAX_S, QBER_BACKOFF_S * 2 ** min(aborted_in_a_row - QBER_BACKOFF_AFTER, 16))


class LinkRuntime:
    def __init__(self, settings: LinkSettings, pool: LinkKeyPool, time_scale: float,
                 clock: VirtualClock | None = None) -> None:
        """``clock``: the node's virtual clock; None runs in real time at ``time_scale``."""
        self.settings = settings
        self.pool = pool
        self.time_scale = time_scale
        self.clock = clock
        # Virtual time (transmitter): where the next block starts, where the block under way
        # ends (or the next start while none is), and the clock value a full pool was checked at.
        self.next_start_s = clock.now_s if clock is not None else 0.0
        self.committed_until_s = self.next_start_s
        self.paused_at_s: float | None = None
        self._stopped = False
        self._frame_end_s: dict[int, float] = {}  # receiver, virtual time: each open frame's end
        self.clock_wait_s = 0.0  # transmitter, virtual time: wall seconds waiting for the clock
        self._unreleased_key_bits = 0  # virtual time: key of blocks ended but not yet reached by the clock
        alice_seq, bob_seq, nature_seq = np.random.SeedSequence(settings.seed).spawn(3)
        endpoint_seq = alice_seq if settings.role is Role.TRANSMITTER else bob_seq
        self.endpoint = LinkEndpoint(settings.role.qkd_role, settings.params, settings.processing,
                                     settings.bootstrap_secret, np.random.default_rng(endpoint_seq))
        self._nature = np.random.default_rng(nature_seq)
        self._sessions: dict[int, BobSession] = {}
        self._last_frame_seen = 0  # receiver: frames only move forward
        # Frame IDs name link keys; starting from the clock keeps them unique across restarts.
        self._frame = time.time_ns() // 1000
        self._blocks_started = 0  # transmitter: picks each block's public randomness (in frame order)
        self._ledger_waiters: list[asyncio.Future[None]] = []  # transmitter: blocks waiting for earlier ones to end
        self.state = "starting"
        self.blocks_accepted = 0
        self.blocks_aborted = 0
        self.last_abort_reason = ""
        self.aborts_by_category: dict[str, int] = {}
        self.last_qber = 0.0
        self.last_qber_per_intensity: tuple[float, ...] = ()  # test-basis QBER, signal/decoy/vacuum
        self.generating_s = 0.0  # transmitter: wall time spent generating (not paused at a full pool)
        self.impairment = Impairment()  # transmitter: a fault on the channel, from the next block on
        self.impaired_since_s = 0.0  # the emulated time it was switched on (a drift grows from there)
        self.sifted_bits = 0
        self.auth_bits = 0
        self.resyncs = 0
        self.emulated_seconds = 0.0
        self._unsynced = True  # the transmitter resynchronises before its next block
        self._silent_blocks = 0  # transmitter: blocks in a row the receiver would not take part in
        self._qber_aborts = 0  # transmitter: blocks in a row aborted for their QBER
        self._task: asyncio.Task | None = None
        self._open_blocks = 0  # transmitter: blocks under way
        self._deliveries = asyncio.Lock()  # transmitter: frames leave (sampled, then delivered) in order
        self._session_locks: dict[int, asyncio.Lock] = {}  # receiver: one message batch per block at a time

    # -- transmitter ----------------------------------------------------------------------
    def start(self, peer: BlockPeer) -> None:
        if self.settings.role is Role.TRANSMITTER and self._task is None:
            run = self._run(peer) if self.clock is None else self._run_virtual(peer, self.clock)
            self._task = asyncio.create_task(run, name=f"link-{self.settings.link_id}")
            if self.clock is not None:
                self.clock.join(self)

    def settled_for(self, clock_s: float) -> bool:
        """Virtual time: whether this link lets the network's clock reach ``clock_s`` (see
        ``node.virtual_clock``): its block under way ends later, or its full pool was checked then."""
        if self._task is None:
            return True
        if self.paused_at_s is not None:
            return self.paused_at_s >= clock_s
        return self.committed_until_s > clock_s

    async def stop(self) -> None:
        self._stopped = True  # blocks not yet released by the virtual clock never will be
        if self.clock is not None:
            self.clock.leave(self)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        self.state = "down"

    async def _run(self, peer: BlockPeer) -> None:
        """Real time: blocks, up to ``blocks_in_flight`` at once, each launched at its paced start."""
        limit = self.settings.processing.blocks_in_flight
        running: set[asyncio.Task[int | None]] = set()
        failures = 0
        launch_at = mark = time.monotonic()  # the next block's paced start; where generating time counts from

        async def pause(wait: Awaitable[object]) -> None:  # wall time that is not generating
            nonlocal mark
            self.generating_s += time.monotonic() - mark
            await wait
            mark = time.monotonic()

        try:
            while True:
                # Room for a block: below the limit, none open while the link must resynchronise, and
                # none while the blocks under way could fill the pool.
                while running and (len(running) >= limit or self._unsynced or self._could_fill(len(running))):
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        failures = failures + 1 if task.result() is None else 0
                if failures:
                    await pause(asyncio.sleep(min(2.0, 0.1 * failures)))
                if self.pool.full:
                    self.state = "full"
                    await pause(self._pool_drained())
                    launch_at = max(launch_at, time.monotonic())  # no burst to catch up after a pause
                self.state = "running"
                if self._silent_blocks:  # e.g. it has no authentication key left: do not spin on it
                    await pause(asyncio.sleep(min(SILENT_BACKOFF_MAX_S, SILENT_BACKOFF_S * self._silent_blocks)))
                if self._qber_aborts:
                    await pause(asyncio.sleep(qber_backoff_s(self._qber_aborts)))
                if self.time_scale > 0:
                    await asyncio.sleep(max(0.0, launch_at - time.monotonic()))
                launch_at = max(launch_at, time.monotonic())
                block = self._plan_block()
                if self.time_scale > 0:
                    launch_at += block.n_pulses / self.settings.params.pulse_rate_hz / self.time_scale
                if self._unsynced:  # it resynchronises first: alone, and to its end
                    failures = failures + 1 if await self._try_block(peer, block) is None else 0
                else:
                    running.add(asyncio.create_task(self._try_block(peer, block)))
                self.generating_s += time.monotonic() - mark
                mark = time.monotonic()
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)

    def _could_fill(self, blocks: int) -> bool:
        """Whether ``blocks`` blocks under way could fill the pool. Then the next block waits for
        them and starts only if the pool is not full, as with one block at a time: so the blocks a
        link makes before it pauses do not depend on thread timing. A block's key is bounded by its
        detections, and those exceed twice their expected number with a probability below 1e-160
        at the smallest block (1,000 expected)."""
        bound_bits = 2 * self.settings.processing.block_detections
        return self.pool.level_bits + blocks * bound_bits >= self.pool.capacity_bits

    async def _pool_drained(self) -> None:
        while not self.pool.below_low_watermark:
            await self.pool.changed()

    async def _run_virtual(self, peer: BlockPeer, clock: VirtualClock) -> None:
        """Block after block in virtual time: each starts once the clock has reached its start;
        a full pool is checked at every advance until it is below its low watermark, and the
        next block then starts at the clock value of the check that saw it full last (when the
        relays that drained it ran)."""
        failures = 0
        rate_hz = self.settings.params.pulse_rate_hz
        while True:
            self.committed_until_s = self.next_start_s
            clock.notify()
            if not self._may_start(clock):
                waited_from = time.monotonic()
                while not self._may_start(clock):
                    await clock.changed()
                self.clock_wait_s += time.monotonic() - waited_from
            if clock.now_s >= self.next_start_s and self.pool.full:
                self.state = "full"
                while True:
                    self.paused_at_s = clock.now_s
                    clock.notify()
                    await clock.wait_past(self.paused_at_s)
                    if self.pool.below_low_watermark:
                        break
                self.next_start_s = max(self.next_start_s, self.paused_at_s)
                self.committed_until_s = self.next_start_s
                self.paused_at_s = None
            self.state = "running"
            n_pulses = await self._try_block(peer, self._plan_block(self.next_start_s))
            while n_pulses is None and failures < VIRTUAL_RETRIES_IN_PLACE:
                # A peer not configured yet (nodes start in any order) is late, not gone: the same
                # block is tried again at the same emulated start, with no new decision, so results
                # do not depend on which node came first. (It failed in its resynchronisation,
                # before any randomness was drawn.)
                failures += 1
                await asyncio.sleep(min(2.0, 0.1 * failures))  # wall time: do not spin on it
                n_pulses = await self._try_block(peer, self._plan_block(self.next_start_s))
            if n_pulses is None:  # a peer that stays away: an outage, which costs emulated time
                failures += 1
                backoff_s = min(2.0, 0.1 * failures)
                self.next_start_s = self.committed_until_s + backoff_s
                await asyncio.sleep(backoff_s)
                continue
            failures = 0
            self.next_start_s += n_pulses / rate_hz
            if self._silent_blocks:
                self.next_start_s += min(SILENT_BACKOFF_MAX_S, SILENT_BACKOFF_S * self._silent_blocks)
            self.next_start_s += qber_backoff_s(self._qber_aborts)

    def _may_start(self, clock: VirtualClock) -> bool:
        """Whether the next block may start now: the clock has reached its start, or its start is
        before the horizon and the pool cannot be full by then (see ``node.virtual_clock``)."""
        if clock.now_s >= self.next_start_s:
            return True
        return (self.next_start_s < clock.horizon_s
                and self.pool.level_bits + self._unreleased_key_bits < self.pool.capacity_bits)

    async def resync(self, peer: BlockPeer) -> None:
        """Agree with the receiver on the authentication units and unconfirmed blocks both hold."""
        keys = self.endpoint.auth_keys
        reply = await peer.resync(Resync(self.settings.link_id, keys.inventory(), tuple(sorted(self.pool.unconfirmed))))
        self.endpoint.keep_only(reply.auth_units)
        self.pool.settle(set(reply.frames), UNCONFIRMED)
        self.resyncs += 1
        self._unsynced = False

    async def _earlier_blocks_ended(self, block_index: int) -> None:
        """Until every block before this one has ended (its refill decision needs their ledger)."""
        while not self.endpoint.ended_before(block_index):
            waiter = asyncio.get_running_loop().create_future()
            self._ledger_waiters.append(waiter)
            await waiter

    def _wake_ledger_waiters(self) -> None:
        """A block may have ended: let the blocks waiting on the ledger look again."""
        waiters, self._ledger_waiters = self._ledger_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _plan_block(self, start_s: float | None = None) -> PlannedBlock:
        """The next block as the channel stands now; ``start_s``: its emulated start in virtual time."""
        impairment = self.impairment
        # A drift grows with emulated time since the fault: in virtual time from the block's start.
        since_s = (start_s if start_s is not None else self.emulated_seconds) - self.impaired_since_s
        physics = impairment.physics(self.settings.params, since_s)
        return PlannedBlock(physics, impairment.attack,
                            pulses_for_detections(physics, self.settings.processing.block_detections), start_s)

    async def _try_block(self, peer: BlockPeer, block: PlannedBlock) -> int | None:
        """One block (its pulses); None, reported in the status, if the peer is unreachable or
        broke the protocol."""
        self._open_blocks += 1
        try:
            return await self._one_block(peer, block)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.state = "down"
            self.last_abort_reason = f"peer unreachable: {type(exc).__name__}"
            log.warning("link %s: %s", self.settings.link_id, self.last_abort_reason)
            return None
        finally:
            self._open_blocks -= 1

    async def _one_block(self, peer: BlockPeer, block: PlannedBlock) -> int:
        """One block. Any end but accepted with every answer in leaves the link to resynchronise."""
        s = self.settings
        n_pulses = block.n_pulses
        end_s = 0.0
        if block.start_s is not None and self.clock is not None:  # known before anything is awaited
            end_s = self.committed_until_s = block.start_s + n_pulses / s.params.pulse_rate_hz
            self.clock.notify()
        if self._unsynced:
            await self.resync(peer)
        session: AliceSession | None = None
        answered = False
        try:
            async with self._deliveries:  # taken in launch order: frames leave in order
                self._frame += 1
                frame_id = self._frame
                alice_rec, bob_rec, _ = await asyncio.to_thread(transmit, block.physics, n_pulses, self._nature,
                                                                block.attack, self.endpoint.secret_bits)
                # Numbered with no gap (a session always ends, so the ledger never waits for a lost one).
                block_index, self._blocks_started = self._blocks_started, self._blocks_started + 1
                session = AliceSession(self.endpoint, frame_id, alice_rec, block_index)
                gaps = slot_gaps(bob_rec.slots).astype("<u4", copy=False).tobytes()
                frame = FrameForPeer(s.link_id, frame_id, n_pulses, int(bob_rec.slots.size), gaps,
                                     pack(bob_rec.basis), pack(bob_rec.bit),
                                     pack(bob_rec.double_click.astype(np.uint8)), end_s)
                del bob_rec  # what Bob's detectors saw now lives only at Bob
                incoming, _ = await peer.deliver_frame(frame)
            while True:
                outgoing: list[bytes] = []
                for envelope in incoming:
                    if message_type(envelope) in WAITS_FOR_EARLIER_BLOCKS:
                        await self._earlier_blocks_ended(block_index)
                    outgoing += await _handle(session, envelope)
                    self._wake_ledger_waiters()
                if not outgoing:
                    break
                incoming, _ = await peer.exchange(s.link_id, frame_id, outgoing)
            answered = True
        finally:  # also when the exchange failed or the task was cancelled mid-block
            if session is not None:
                session.abandon("peer stopped answering" if answered else "the exchange with the peer broke off")
                self._wake_ledger_waiters()
                self._record(session.result, session.frame_id, confirmed=answered, end_s=end_s)
            if not (answered and session is not None and session.result is not None and session.result.accepted):
                self._unsynced = True
        result = session.result if session is not None else None  # abandon() ended any still open
        reason = (result.abort_reason or "") if result is not None else ""
        self._silent_blocks = self._silent_blocks + 1 if reason.startswith("peer stopped") else 0
        self._qber_aborts = self._qber_aborts + 1 if reason and abort_category(reason) == "qber" else 0
        return n_pulses

    # -- receiver -------------------------------------------------------------------------
    async def on_frame(self, frame: FrameForPeer) -> list[bytes]:
        """Open a block for a new frame. The transmitter runs at most ``blocks_in_flight`` at once;
        beyond that the oldest open here was given up by it, and is dropped."""
        record = await asyncio.to_thread(frame_to_record, frame)
        if frame.frame_id <= self._last_frame_seen:
            return []  # a late copy of an earlier frame: it must not use up units
        self._last_frame_seen = frame.frame_id
        await self._drop_sessions("the transmitter went on without it",
                                  keep=self.settings.processing.blocks_in_flight - 1)
        lock = asyncio.Lock()
        async with lock:
            session = BobSession(self.endpoint, frame.frame_id, record)
            self._sessions[frame.frame_id] = session
            self._session_locks[frame.frame_id] = lock
            self._frame_end_s[frame.frame_id] = frame.end_s
            self.state = "running"
            first = await _in_thread(session.begin)
            if session.done:  # it could not even begin (no authentication key left): count it
                self._close(frame.frame_id)
            return first

    async def on_exchange(self, frame_id: int, envelopes: list[bytes]) -> tuple[list[bytes], bool]:
        lock = self._session_locks.get(frame_id)
        if lock is None:
            return [], True
        async with lock:
            session = self._sessions.get(frame_id)
            if session is None:  # dropped while this batch waited
                return [], True
            outgoing: list[bytes] = []
            try:
                for envelope in envelopes:
                    outgoing += await _handle(session, envelope)
            finally:  # also if the call was cancelled (the transmitter went away) after the block ended
                if session.done:
                    self._close(frame_id)
            return outgoing, session.done

    async def on_resync(self, request: Resync) -> Resync:
        """The transmitter lost track: end every open block, keep the units both ends hold, and
        say which of its unconfirmed blocks this end holds."""
        await self._drop_sessions("the transmitter resynchronised")  # after any batch in progress
        self.endpoint.keep_only(request.auth_units)
        keys = self.endpoint.auth_keys
        self.resyncs += 1
        held = tuple(f for f in request.frames if self.pool.holds_block(f))
        return Resync(self.settings.link_id, keys.inventory(), held)

    def _close(self, frame_id: int) -> None:
        """A block ended here: account its result."""
        session = self._sessions.pop(frame_id)
        del self._session_locks[frame_id]
        self._record(session.result, frame_id, end_s=self._frame_end_s.pop(frame_id, 0.0))

    async def _drop_sessions(self, reason: str, keep: int = 0) -> None:
        """Abandon the oldest open blocks until ``keep`` are left, each after any batch of its
        own in progress; nothing of them is kept (their hash keys are erased)."""
        while len(self._sessions) > keep:
            frame_id = min(self._sessions)
            async with self._session_locks[frame_id]:
                session = self._sessions.pop(frame_id, None)
                if session is None:  # it ended while its batch ran
                    continue
                del self._session_locks[frame_id]
                self._frame_end_s.pop(frame_id, None)
                session.abandon(reason)

    # -- shared ---------------------------------------------------------------------------
    def _record(self, result: BlockResult | None, frame_id: int, confirmed: bool = True, end_s: float = 0.0) -> None:
        """Account a block's result; in virtual time, once the clock reaches the block's end."""
        if result is None:
            return
        if self.clock is None:
            self._record_now(result, frame_id, confirmed)
            return

        held_bits = int(result.key.size) if result.accepted else 0
        self._unreleased_key_bits += held_bits

        def release() -> None:
            self._unreleased_key_bits -= held_bits
            if not self._stopped:  # the link was cut (or reset) before the block ended
                self._record_now(result, frame_id, confirmed)

        self.clock.release_at(end_s, release)

    def _record_now(self, result: BlockResult, frame_id: int, confirmed: bool) -> None:
        self.emulated_seconds += result.n_pulses / self.settings.params.pulse_rate_hz
        self.sifted_bits += result.sifted_key_bits
        self.auth_bits += result.auth_bits
        if result.qber_z is not None:
            self.last_qber = result.qber_z
        elif result.qber_x is not None:
            self.last_qber = result.qber_x
        if result.qber_x_per_intensity:
            self.last_qber_per_intensity = result.qber_x_per_intensity
        if result.accepted:
            self.blocks_accepted += 1
            self.pool.add_block(frame_id, result.key, confirmed)
        else:
            self.blocks_aborted += 1
            self.last_abort_reason = result.abort_reason or ""
            category = abort_category(self.last_abort_reason)
            self.aborts_by_category[category] = self.aborts_by_category.get(category, 0) + 1
            if self.settings.role is Role.TRANSMITTER:
                log.info("link %s frame %d aborted: %s", self.settings.link_id, frame_id, result.abort_reason)

    def status(self, in_service: bool = True) -> LinkStatus:
        p = self.pool
        if not in_service:
            state = "cut"
        elif self.settings.role is Role.RECEIVER and p.full:
            state = "full"  # the receiver's own state says nothing of a paused transmitter
        else:
            state = self.state
        emulated = self.emulated_seconds
        return LinkStatus(
            link_id=self.settings.link_id, peer=self.settings.peer, role=self.settings.role.value, state=state,
            length_km=self.settings.params.length_km, blocks_accepted=self.blocks_accepted,
            blocks_aborted=self.blocks_aborted, last_abort_reason=self.last_abort_reason, qber=self.last_qber,
            sifted_bits=self.sifted_bits, generated_bits=p.generated_bits, pool_bits=p.level_bits,
            consumed_bits=p.consumed_bits, discarded_bits=p.discarded_bits, emulated_seconds=emulated,
            sifted_bits_per_s=self.sifted_bits / emulated if emulated else 0.0,
            secret_bits_per_s=p.generated_bits / emulated if emulated else 0.0,
            auth_bits=self.auth_bits, sendable_bits=p.sendable_bits, resyncs=self.resyncs,
            clock_ratio=self.clock_ratio, clock_wait_s=round(self.clock_wait_s, 3),
            open_blocks=self._open_blocks if self.settings.role is Role.TRANSMITTER else len(self._sessions))

    @property
    def clock_ratio(self) -> float:
        """How well the host keeps up with the emulated clock (``LinkStatus.clock_ratio``)."""
        if self.clock is not None:  # virtual time: no block runs ahead of its clock, none lags
            return 1.0 if self.settings.role is Role.TRANSMITTER else 0.0
        clock_s = self.generating_s * self.time_scale
        if self.settings.role is not Role.TRANSMITTER or clock_s <= 0:
            return 0.0
        return min(1.0, self.emulated_seconds / clock_s)  # a block's time is counted just before its wall time
