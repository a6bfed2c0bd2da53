"""Run whole blocks of the link engine in one process over an in-memory channel.

Layer: sans-I/O driver, used by tests, benchmarks and ``qkdnet keyrate``. The node process
uses the same sessions with gRPC as the channel. ``clock`` is injected by callers that want
per-stage timings; nothing here reads a clock by itself.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .analytic import gain
from .attacks import Attack
from .authentication import KeyUse
from .channel import transmit
from .endpoint import BlockResult, LinkEndpoint
from .params import LinkParams, ProcessingParams
from .sessions import AliceSession, BobSession

Tamper = Callable[[str, int, bytes], "bytes | list[bytes]"]
"""(sender role, message index in the block, envelope) -> what is delivered instead: another
envelope, or a list of them (empty: the message is lost; two copies: it is repeated)."""


@dataclass(frozen=True)
class BlockPair:
    alice: BlockResult
    bob: BlockResult
    n_pulses: int


def pulses_for_detections(params: LinkParams, detections: int) -> int:
    """Frame size that yields about ``detections`` clicks on average."""
    mean_click = sum(p * gain(params, mu) for mu, p in zip(params.intensities, params.intensity_probabilities, strict=False))
    return max(1, int(math.ceil(detections / mean_click)))


def make_endpoints(params: LinkParams, processing: ProcessingParams, seed: int | np.random.SeedSequence,
                   preshared_secret: bytes | None = None, auth_ledger: list[KeyUse] | None = None,
                   ) -> tuple[LinkEndpoint, LinkEndpoint, np.random.Generator]:
    """Alice, Bob and the channel ("nature"), each with an independent stream of one seed."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    alice_seq, bob_seq, nature_seq, secret_seq = root.spawn(4)
    secret = preshared_secret if preshared_secret is not None else np.random.default_rng(secret_seq).bytes(1 << 16)
    alice = LinkEndpoint("alice", params, processing, secret, np.random.default_rng(alice_seq), auth_ledger=auth_ledger)
    bob = LinkEndpoint("bob", params, processing, secret, np.random.default_rng(bob_seq), auth_ledger=auth_ledger)
    return alice, bob, np.random.default_rng(nature_seq)


class InMemoryLink:
    """Both ends of a link and the channel between them, block after block."""

    def __init__(self, params: LinkParams, processing: ProcessingParams | None = None,
                 seed: int | np.random.SeedSequence = 0,
                 attack: Attack | None = None, clock: Callable[[], float] | None = None,
                 auth_ledger: list[KeyUse] | None = None) -> None:
        self.params = params
        self.processing = processing or ProcessingParams()
        self.attack = attack
        self.alice, self.bob, self._nature = make_endpoints(params, self.processing, seed, auth_ledger=auth_ledger)
        self._unsynced = False  # the last block did not end accepted at both ends
        self.resyncs = 0
        self._frame = 0
        self.blocks_run = 0  # blocks begun (each block's place picks its public randomness)
        self._clock = clock
        self.stage_seconds: dict[str, float] = defaultdict(float)

    def resync(self) -> None:
        """What the link runtimes do over RPC after an unclean block: each end keeps only the
        authentication keys the other still holds."""
        self.bob.keep_only(self.alice.auth_keys.inventory())
        self.alice.keep_only(self.bob.auth_keys.inventory())
        self.resyncs += 1

    def run_block(self, n_pulses: int | None = None, tamper: Tamper | None = None,
                  late: Sequence[tuple[str, bytes]] = ()) -> BlockPair:
        """One block. ``late``: (sender, envelope) of earlier blocks, arriving first."""
        n_pulses = n_pulses or pulses_for_detections(self.params, self.processing.block_detections)
        if self._unsynced:
            self.resync()
        self._frame += 1
        t0 = self._now()
        alice_record, bob_record, _ = transmit(self.params, n_pulses, self._nature, self.attack,
                                               secret_bits=self.alice.secret_bits)
        self._charge("channel", t0)
        alice = AliceSession(self.alice, self._frame, alice_record, block_index=self.blocks_run)
        bob = BobSession(self.bob, self._frame, bob_record)
        self.blocks_run += 1
        t0 = self._now()
        in_flight = [*late, *(("bob", envelope) for envelope in bob.begin())]
        self._charge("sifting", t0)
        index = 0
        while in_flight:
            sender, envelope = in_flight.pop(0)
            delivered = [envelope] if tamper is None else tamper(sender, index, envelope)
            index += 1
            receiver = alice if sender == "bob" else bob
            for copy in [delivered] if isinstance(delivered, bytes) else delivered:
                t0 = self._now()
                replies = receiver.handle(copy)
                self._charge(_stage_of(copy[0]), t0)
                in_flight.extend((receiver.role, r) for r in replies)
        for side in (alice, bob):  # one end fell silent: the other gives up
            side.abandon("peer stopped answering")
        assert alice.result is not None and bob.result is not None
        self._unsynced = not (alice.result.accepted and bob.result.accepted)
        return BlockPair(alice=alice.result, bob=bob.result, n_pulses=n_pulses)

    def _now(self) -> float:
        return self._clock() if self._clock else 0.0

    def _charge(self, stage: str, t0: float) -> None:
        if self._clock:
            self.stage_seconds[stage] += self._clock() - t0


_STAGES = {1: "sifting", 2: "sifting", 3: "estimation", 4: "reconciliation", 5: "reconciliation",
           6: "reconciliation", 7: "verification+amplification", 8: "verification+amplification",
           9: "verification+amplification", 10: "verification+amplification", 11: "abort",
           12: "reconciliation", 13: "reconciliation", 14: "reconciliation"}


def _stage_of(type_code: int) -> str:
    return _STAGES.get(type_code, "other")
