"""Link-key pool shared with one neighbour: identical blocks on both ends, each bit used once.

Layer: node domain (no grpc). Every accepted BB84 block is split into two halves, one per
direction, so the two ends never allocate the same bits: the transmitter-role end sends with
half "a", the receiver-role end with half "b". The sender allocates consecutive bits of its
half and names them with a ``LinkKeyId``; the receiver takes exactly that range by ID. Taken
bits are zeroed in place. Accounting always balances: generated = in_pool + consumed + discarded.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from qkdnet.node.errors import BadLinkKey, KeyPoolError, LinkKeyShortage

HALVES = ("a", "b")

__all__ = ["HALVES", "BadLinkKey", "ChunkRecord", "KeyPoolError", "LinkKeyId", "LinkKeyPool", "LinkKeyShortage",
           "PoolCounters"]


class LinkKeyId(NamedTuple):
    """A stretch of one half of one block's key: what a pad is, named the same on both ends."""

    frame_id: int
    half: str
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length

    def __str__(self) -> str:
        return f"{self.frame_id}:{self.half}:{self.start}:{self.length}"


@dataclass
class _Chunk:
    bits: np.ndarray  # uint8 0/1, zeroed where used
    used: np.ndarray  # bool
    cursor: int = 0  # next unallocated offset (sender's half only)


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk as the durable store keeps it: packed bits (used ones zeroed) and used mask."""

    half: str
    frame_id: int
    bits: bytes | None  # None: the chunk is gone (spent or erased)
    used: bytes | None
    size: int
    cursor: int


@dataclass(frozen=True)
class PoolCounters:
    generated_bits: int
    consumed_bits: int
    discarded_bits: int
    discard_reasons: dict


class LinkKeyPool:
    def __init__(self, send_half: str, capacity_bits: int, low_watermark_bits: int | None = None) -> None:
        if send_half not in HALVES:
            raise ValueError("send_half must be 'a' or 'b'")
        self.send_half = send_half
        self.receive_half = "b" if send_half == "a" else "a"
        self.capacity_bits = capacity_bits
        # Generation that paused at capacity resumes below this level, so a link is not woken
        # for every small withdrawal (hysteresis keeps BB84 bursts long and relays unhindered).
        self.low_watermark_bits = capacity_bits * 3 // 4 if low_watermark_bits is None else low_watermark_bits
        self._halves: dict[str, OrderedDict[int, _Chunk]] = {"a": OrderedDict(), "b": OrderedDict()}
        self.generated_bits = 0
        self.consumed_bits = 0
        self.discarded_bits = 0
        self.discard_reasons: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._dirty: set[tuple[str, int]] = set()  # chunks changed since the last snapshot
        self._counters_dirty = False
        self.version = 0  # grows with every change: lets a writer know what is durable
        self.unconfirmed: set[int] = set()  # blocks the peer may not hold

    # -- filling ------------------------------------------------------------------------
    def add_block(self, frame_id: int, key_bits: np.ndarray, confirmed: bool = True) -> None:
        """Both ends call this with the identical verified key of one block. ``confirmed``:
        False when this end cannot tell whether the peer kept the block too (its last answer
        was lost); ``settle`` decides later."""
        if not confirmed:
            self.unconfirmed.add(frame_id)
        middle = key_bits.size // 2
        for half, part in (("a", key_bits[:middle]), ("b", key_bits[middle:])):
            if part.size:
                self._halves[half][frame_id] = _Chunk(part.astype(np.uint8, copy=True), np.zeros(part.size, bool))
                self._touch((half, frame_id))
        self.generated_bits += int(key_bits.size)
        self._notify()

    @property
    def level_bits(self) -> int:
        return self.generated_bits - self.consumed_bits - self.discarded_bits

    def recount_level_bits(self) -> int:
        """Unused bits counted chunk by chunk (slow; lets tests check the running balance)."""
        return sum(int(c.bits.size - c.used.sum()) for half in self._halves.values() for c in half.values())

    @property
    def sendable_bits(self) -> int:
        return sum(c.bits.size - c.cursor for c in self._halves[self.send_half].values())

    @property
    def full(self) -> bool:
        return self.level_bits >= self.capacity_bits

    @property
    def below_low_watermark(self) -> bool:
        return self.level_bits < self.low_watermark_bits

    # -- sending side -------------------------------------------------------------------
    def allocate(self, n_bits: int) -> tuple[LinkKeyId, np.ndarray]:
        """The next n_bits of this end's sending half, consumed now."""
        (link_key_id,), bits = self.allocate_many([n_bits])
        return link_key_id, bits

    def allocate_many(self, sizes_bits: list[int]) -> tuple[list[LinkKeyId], np.ndarray]:
        """One pad per size, in order, consumed now: their IDs and all their bits concatenated.

        All or nothing: if the pool cannot serve every pad, nothing changes. Consecutive pads
        from one chunk are taken as one range (one numpy operation, not one per pad).
        """
        half = self._halves[self.send_half]
        plan: list[tuple[int, _Chunk, int, int]] = []  # (frame, chunk, start, end) taken
        tails: list[tuple[int, _Chunk]] = []  # too-short tails discarded on the way
        ids: list[LinkKeyId] = []
        i, chunks = 0, list(half.items())
        for frame_id, chunk in chunks:
            if i == len(sizes_bits):
                break
            start = position = chunk.cursor
            while i < len(sizes_bits) and chunk.bits.size - position >= sizes_bits[i]:
                ids.append(LinkKeyId(frame_id, self.send_half, position, sizes_bits[i]))
                position += sizes_bits[i]
                i += 1
            if position > start:
                plan.append((frame_id, chunk, start, position))
            if i < len(sizes_bits) and position < chunk.bits.size and len(chunks) > 1:
                tails.append((frame_id, chunk))  # too short for the next pad: not split across IDs
        if i < len(sizes_bits):
            raise LinkKeyShortage(f"link pool holds {self.sendable_bits} sendable bits, {sum(sizes_bits)} needed")
        parts = []
        for frame_id, chunk, start, end in plan:
            chunk.cursor = end
            parts.append(self._consume(self.send_half, frame_id, chunk, start, end - start))
        for frame_id, chunk in tails:
            self._discard_range(self.send_half, frame_id, chunk, chunk.cursor, chunk.bits.size - chunk.cursor,
                                "tail shorter than a request")
            chunk.cursor = chunk.bits.size
        for frame_id in {frame_id for frame_id, *_ in plan} | {frame_id for frame_id, _ in tails}:
            self._drop_if_spent(self.send_half, frame_id)
        return ids, parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def allocate_many_waiting(self, sizes_bits: list[int],
                                    timeout_s: float) -> tuple[list[LinkKeyId], np.ndarray]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                return self.allocate_many(sizes_bits)
            except LinkKeyShortage:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise
                try:
                    async with asyncio.timeout(remaining):
                        await self.changed()
                except TimeoutError:
                    pass

    async def changed(self) -> None:
        """Return at the pool's next change (a block added, bits taken or erased).

        Callers check their condition first and wait only if it fails, with no await in
        between, so no change can slip past them.
        """
        self._changed.clear()
        await self._changed.wait()

    # -- receiving side -----------------------------------------------------------------
    def take_by_id(self, link_key_id: LinkKeyId) -> np.ndarray:
        return self.take_many([link_key_id])

    def take_many(self, link_key_ids: list[LinkKeyId]) -> np.ndarray:
        """The peer's pads by ID, consumed now, their bits concatenated in order.

        IDs that continue one another in a chunk (as a sender allocates them) are taken as one
        range. On a bad ID, the pads before it stay consumed and the error's ``taken_bits`` says
        how many bits that is, for the caller to account.
        """
        parts: list[np.ndarray] = []
        taken = 0
        run: list = []  # frame, chunk, then the (start, length) of each pad in the range

        def flush() -> None:
            nonlocal taken
            frame_id, chunk, *pads = run
            run.clear()
            first, end = pads[0][0], pads[-1][0] + pads[-1][1]
            if not chunk.used[first:end].any():  # the usual case: the whole range at once
                parts.append(self._consume(self.receive_half, frame_id, chunk, first, end - first))
                taken += end - first
            else:  # pad by pad: the ones before the used one are taken, then the error
                for start, length in pads:
                    if chunk.used[start:start + length].any():
                        raise BadLinkKey(f"link key {LinkKeyId(frame_id, self.receive_half, start, length)} "
                                         "was already used")
                    parts.append(self._consume(self.receive_half, frame_id, chunk, start, length))
                    taken += length
            self._drop_if_spent(self.receive_half, frame_id)

        try:
            for link_key_id in link_key_ids:
                try:
                    frame_id, half_name, start, length = link_key_id
                    if start < 0 or length <= 0:
                        raise BadLinkKey(f"malformed link key ID {link_key_id}")
                    if half_name != self.receive_half:
                        raise BadLinkKey(f"link key {link_key_id} is not from the peer's sending half")
                    chunk = run[1] if run and run[0] == frame_id else self._halves[half_name].get(frame_id)
                    if chunk is None or start + length > chunk.bits.size:
                        raise BadLinkKey(f"unknown link key {link_key_id}")
                except KeyPoolError:
                    if run:
                        flush()
                    raise
                if run and (run[0] != frame_id or sum(run[-1]) != start):
                    flush()
                if not run:
                    run[:] = [frame_id, chunk]
                run.append((start, length))
            if run:
                flush()
        except KeyPoolError as exc:
            exc.taken_bits = taken
            raise
        if not parts:
            return np.zeros(0, np.uint8)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def discard(self, n_bits: int, reason: str) -> None:
        """Consumed bits whose purpose failed (a relay that did not complete) move to discarded."""
        self.consumed_bits -= n_bits
        self._account_discard(n_bits, reason)
        self.version += 1

    def settle(self, held_by_peer: set[int], reason: str) -> int:
        """Keep the unconfirmed blocks the peer holds too; discard the others' unused bits.
        Returns the bits discarded."""
        discarded = 0
        for frame_id in self.unconfirmed - held_by_peer:
            for name, half in self._halves.items():
                chunk = half.pop(frame_id, None)
                if chunk is not None:
                    discarded += self._erase_chunk(name, frame_id, chunk)
        self.unconfirmed.clear()
        if discarded:
            self._account_discard(discarded, reason)
            self._notify()
        return discarded

    def holds_block(self, frame_id: int) -> bool:
        return any(frame_id in half for half in self._halves.values())

    def discard_all(self, reason: str) -> int:
        """Erase every unused bit (the peer lost its copy); returns how many were discarded."""
        erased = 0
        for name, half in self._halves.items():
            for frame_id, chunk in half.items():
                erased += self._erase_chunk(name, frame_id, chunk)
            half.clear()
        self._account_discard(erased, reason)
        self._notify()
        return erased

    # -- internals ----------------------------------------------------------------------
    def _erase_chunk(self, name: str, frame_id: int, chunk: _Chunk) -> int:
        """Zero a chunk that is dropped whole; its unused bits, for the caller to account."""
        count = int((~chunk.used).sum())
        chunk.bits[:] = 0
        chunk.used[:] = True
        self._touch((name, frame_id))
        return count

    def _consume(self, half: str, frame_id: int, chunk: _Chunk, start: int, length: int) -> np.ndarray:
        bits = chunk.bits[start:start + length].copy()
        chunk.bits[start:start + length] = 0
        chunk.used[start:start + length] = True
        self.consumed_bits += length
        self._touch((half, frame_id))
        self._notify()
        return bits

    def _discard_range(self, half: str, frame_id: int, chunk: _Chunk, start: int, length: int, reason: str) -> None:
        chunk.bits[start:start + length] = 0
        chunk.used[start:start + length] = True
        self._account_discard(length, reason)
        self._touch((half, frame_id))

    def _drop_if_spent(self, half: str, frame_id: int) -> None:
        chunk = self._halves[half].get(frame_id)
        if chunk is not None and chunk.used.all():
            del self._halves[half][frame_id]
            self._touch((half, frame_id))

    def _account_discard(self, n_bits: int, reason: str) -> None:
        """Bits that left the pool unused (or whose use failed), counted under their reason."""
        self.discarded_bits += n_bits
        self.discard_reasons[reason] = self.discard_reasons.get(reason, 0) + n_bits
        self._counters_dirty = True

    def _notify(self) -> None:
        self._changed.set()

    def _touch(self, key: tuple[str, int]) -> None:
        self._dirty.add(key)
        self._counters_dirty = True
        self.version += 1

    # -- durability and reconciliation ----------------------------------------------------
    def snapshot_changes(self) -> tuple[list[ChunkRecord], PoolCounters] | None:
        """What changed since the last call, for the durable store; None if nothing did.

        A spent or erased chunk comes back with ``bits`` None: the store deletes it.
        """
        if not self._dirty and not self._counters_dirty:
            return None
        rows = []
        for name, frame_id in sorted(self._dirty):
            chunk = self._halves[name].get(frame_id)
            if chunk is None:
                rows.append(ChunkRecord(name, frame_id, None, None, 0, 0))
            else:
                rows.append(ChunkRecord(name, frame_id, np.packbits(chunk.bits).tobytes(),
                                        np.packbits(chunk.used).tobytes(), int(chunk.bits.size), chunk.cursor))
        self._dirty.clear()
        self._counters_dirty = False
        return rows, self.counters()

    def counters(self) -> PoolCounters:
        return PoolCounters(self.generated_bits, self.consumed_bits, self.discarded_bits, dict(self.discard_reasons))

    def restore(self, rows: list[ChunkRecord], counters: PoolCounters) -> None:
        """Load the state a store kept (a restarted node); unused bits stay as they were saved."""
        for row in rows:
            if row.bits is None or row.used is None:
                continue  # a spent chunk: nothing to restore
            bits = np.unpackbits(np.frombuffer(row.bits, np.uint8))[: row.size].astype(np.uint8)
            used = np.unpackbits(np.frombuffer(row.used, np.uint8))[: row.size].astype(bool)
            self._halves[row.half][row.frame_id] = _Chunk(bits, used, row.cursor)
        for half in self._halves.values():  # frames in order, as allocation expects
            ordered = sorted(half.items())
            half.clear()
            half.update(ordered)
        self.generated_bits, self.consumed_bits, self.discarded_bits = (
            counters.generated_bits, counters.consumed_bits, counters.discarded_bits)
        self.discard_reasons = dict(counters.discard_reasons)
        self._notify()

    def chunk_size(self, half: str, frame_id: int) -> int:
        chunk = self._halves[half].get(frame_id)
        return 0 if chunk is None else int(chunk.bits.size)

    def apply_lease(self, frame_id: int, offset: int, reason: str) -> int:
        """After a restart: every sending-half bit before the saved mark may have left, so it
        counts as used (unused ones are discarded, accounted). Returns the bits discarded."""
        discarded = 0
        for fid, chunk in list(self._halves[self.send_half].items()):
            if fid > frame_id:
                break
            end = chunk.bits.size if fid < frame_id else min(offset, chunk.bits.size)
            unused = ~chunk.used[:end]
            count = int(unused.sum())
            if count:
                chunk.bits[:end][unused] = 0
                chunk.used[:end] = True
                self._account_discard(count, reason)
                self._touch((self.send_half, fid))
                discarded += count
            chunk.cursor = max(chunk.cursor, end)
            self._drop_if_spent(self.send_half, fid)
        if discarded:
            self._notify()
        return discarded

    def inventory(self) -> dict[tuple[str, int], np.ndarray]:
        """Which bits of which chunk this end still holds unused (True = usable)."""
        return {(name, frame_id): ~chunk.used for name, half in self._halves.items() for frame_id, chunk in half.items()}

    def reconcile(self, peer_inventory: dict[tuple[str, int], np.ndarray], reason: str) -> int:
        """Keep only bits both ends hold unused; discard the rest here (accounted). Returns bits discarded.

        Both ends run this with the other's inventory, so they end holding the same bits.
        """
        discarded = 0
        for name, half in self._halves.items():
            for frame_id, chunk in list(half.items()):
                theirs = peer_inventory.get((name, frame_id))
                ours = ~chunk.used
                drop = ours if theirs is None or theirs.size != ours.size else ours & ~theirs
                # Allocation runs forward from a cursor: unused bits before the last used one
                # would be stranded, so they go too (both ends compute the same).
                kept = ours & ~drop
                used_after = np.flatnonzero(~kept)
                tail_start = int(used_after[-1]) + 1 if used_after.size else 0
                drop[:tail_start] |= kept[:tail_start]
                chunk.cursor = tail_start
                count = int(drop.sum())
                if count:
                    chunk.bits[drop] = 0
                    chunk.used[drop] = True
                    self._account_discard(count, reason)
                    self._touch((name, frame_id))
                    discarded += count
                if chunk.used.all():
                    del half[frame_id]
                    self._touch((name, frame_id))
        if discarded:
            self._counters_dirty = True
            self._notify()
        return discarded
