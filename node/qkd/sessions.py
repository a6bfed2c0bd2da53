"""The two halves of one post-processing block as message-driven state machines.

Layer: sans-I/O protocol. ``BobSession.begin()`` returns Bob's first envelope; afterwards each
side's ``handle(envelope)`` returns the envelopes it sends in answer (possibly none) until its
``result`` is set. Each side computes only from its own detector or source record and the
messages it receives. Any protocol or authentication failure ends the block with a recorded
reason and, where the peer still waits, an authenticated Abort. A message for another frame, or
one naming an authentication key this end no longer holds (a repeat, or a stale message after a
resynchronisation), is ignored: nothing of it is used and the block goes on.

Order: Detections (B) -> SiftReply (A) -> TestBits (B) -> Reconcile | Syndromes | Abort (A) ->
[ParityQuery (B) -> ParityReply (A)]* (Cascade) or [RevealRequest (B) -> Reveal (A)]* (LDPC) ->
ReconciliationDone (B) -> Amplify | Abort (A) -> Confirm (B) -> Finish (A).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import cascade, ldpc
from .amplification import HashChoice, choose_hash, universal_hash
from .authentication import KEY_BITS, AuthKeyIndex
from .bits import pack, unpack
from .channel import AliceRecord, BobRecord
from .endpoint import BlockResult, LinkEndpoint
from .errors import AuthenticationError, AuthKeyExhausted, ProtocolError, UnknownAuthKey
from .estimation import BasisCounts, estimate, secret_key_length
from .messages import (
    MESSAGE_TYPES,
    Abort,
    Amplify,
    Confirm,
    Detections,
    Finish,
    Message,
    ParityQuery,
    ParityReply,
    Reconcile,
    ReconciliationDone,
    Reveal,
    RevealRequest,
    SiftReply,
    Syndromes,
    TestBits,
    frame_of,
)
from .sifting import sift, slot_gaps, slots_from_gaps
from .verification import (
    TAG_BITS,
    collision_probability,
    key_tag,
    new_hash_key,
    tags_match,
)

_EMPTY = np.empty(0, np.uint8)

WAITS_FOR_EARLIER_BLOCKS = (ReconciliationDone,)
"""Alice decides the block's authentication refill on these, from the ledger of every earlier
block (``LinkEndpoint.refill_wanted``): a runtime running blocks side by side hands them to her
only once ``LinkEndpoint.ended_before(block_index)`` (see ``messages.message_type``)."""

QUICK_TO_HANDLE = (ParityQuery, ParityReply, RevealRequest)
"""Messages whose handling is a small step (a Cascade round at either end, Alice's answer to a
reveal request: well under a millisecond, a few ms when Bob starts a Cascade pass). A runtime may
handle these in place instead of handing them to a worker thread, whose round trip costs about
as much as the step and, with several blocks in flight, competes for the GIL."""


class _Session:
    role = ""

    def __init__(self, endpoint: LinkEndpoint, frame_id: int) -> None:
        self.endpoint = endpoint
        self.frame_id = frame_id
        self.result: BlockResult | None = None
        self.auth = endpoint.block_auth()  # this block's own r, pads and transcript
        self._refill = (0, 0)  # authentication keys (Alice's, Bob's) the final key refills
        self.ignored_messages = 0
        self._stats: dict = {}
        self._deferred_end: tuple[str | None, np.ndarray] | None = None
        self._expect: type[Message] | Any = Message

    @property
    def _opens_block(self) -> bool:
        """Whether the next message from the peer is its first of the block (names r)."""
        return False

    @property
    def done(self) -> bool:
        return self.result is not None

    def handle(self, envelope: bytes) -> list[bytes]:
        if self.done or frame_of(envelope) != self.frame_id:
            self.ignored_messages += 1
            return []
        try:
            try:
                message = self.auth.open(envelope, opens_block=self._opens_block)
            except UnknownAuthKey:
                self.ignored_messages += 1
                return []
            if message.frame_id != self.frame_id:
                raise ProtocolError(f"message for frame {message.frame_id} in frame {self.frame_id}")
            if isinstance(message, Abort):
                self._end(f"peer aborted: {message.reason}")
                return []
            out = [self.auth.seal(m) for m in self._on(message)]
            if self._deferred_end is not None:
                self._end(*self._deferred_end)
            return out
        except AuthKeyExhausted as exc:
            self._end(f"authentication key exhausted: {exc}")
            return []
        except (AuthenticationError, ProtocolError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return self._abort(reason)

    def _abort(self, reason: str) -> list[bytes]:
        self.auth.abandon_transcript()
        try:
            out = [self.auth.seal(Abort(frame_id=self.frame_id, reason=reason))]
        except (AuthKeyExhausted, AuthenticationError):  # no pad left, or the block never opened
            out = []
        self._end(reason)
        return out

    def _end(self, reason: str | None, key: np.ndarray = _EMPTY) -> None:
        self.auth.end_block()
        accepted = reason is None
        auth_bits = self.auth.used_bits
        refill_bits = 0
        if accepted:
            # The authentication keys Alice announced come first out of the block's own key.
            refill_bits = KEY_BITS * sum(self._refill)
            key = self.endpoint.refill(self.frame_id, key, *self._refill)
        self.result = BlockResult(frame_id=self.frame_id, role=self.role, accepted=accepted,
                                  abort_reason=reason, key=key if accepted else _EMPTY,
                                  auth_bits=auth_bits, auth_refill_bits=refill_bits, **self._stats)

    def abandon(self, reason: str) -> None:
        """End the block unfinished (the peer stopped answering); nothing of it is kept."""
        if not self.done:
            self._end(reason)

    def _on(self, message: Message) -> list[Message]:
        """Dispatch to ``_on_<MessageType>``, refusing any message the protocol does not expect now."""
        if not isinstance(message, self._expect):
            waiting = getattr(self._expect, "__name__", str(self._expect))  # a type, or a union of types
            raise ProtocolError(f"unexpected {type(message).__name__}, waiting for {waiting}")
        handler = getattr(self, _HANDLERS[type(message)])
        result: list[Message] = handler(message)
        return result


_HANDLERS = {cls: f"_on_{cls.__name__}" for cls in MESSAGE_TYPES.values()}


class AliceSession(_Session):
    """Transmitter side: holds the source record; answers, estimates, decides."""

    role = "alice"

    def __init__(self, endpoint: LinkEndpoint, frame_id: int, record: AliceRecord, block_index: int) -> None:
        """``block_index``: the block's place in the link (0 first), which picks its public
        randomness (``LinkEndpoint.block_rng``)."""
        super().__init__(endpoint, frame_id)
        self._record = record
        self._block_index = block_index
        self._rng = endpoint.block_rng(block_index)
        self._ldpc: ldpc.LdpcPlan | None = None
        self._expect = Detections

    @property
    def _opens_block(self) -> bool:
        return self._expect is Detections

    def _on_Detections(self, m: Detections) -> list[Message]:
        ep = self.endpoint
        if m.n_pulses != self._record.n_pulses:
            raise ProtocolError("detection report names a different frame size")
        slots, ok = slots_from_gaps(np.ascontiguousarray(m.slot_gaps, np.uint32), m.n_pulses)
        if not ok:
            raise ProtocolError("detection report names slots outside the frame")
        bob_basis = unpack(m.bases, slots.size)
        intensity, basis, bit = self._record.lookup(slots, self._rng, ep.params, ep.secret_bits)
        self._sifted = sift(basis, bob_basis, bit, intensity)
        self._key = self._sifted.key
        self._stats.update(n_pulses=m.n_pulses, detections=int(slots.size),
                           sifted_key_bits=int(self._key.size), test_bits=int(self._sifted.test.size))
        self._expect = TestBits
        return [SiftReply(frame_id=self.frame_id, bases=pack(basis))]

    def _on_TestBits(self, m: TestBits) -> list[Message]:
        ep, proc = self.endpoint, self.endpoint.processing
        sifted = self._sifted
        errors = sifted.test != unpack(m.bits, sifted.test.size)
        z = BasisCounts(_per_intensity(sifted.key_counts))
        x = BasisCounts(_per_intensity(sifted.test_counts),
                        _per_intensity(np.bincount(sifted.test_intensity[errors], minlength=3)))
        est = estimate(z, x, ep.params.intensities, ep.params.intensity_probabilities, proc.epsilon_sec)
        self._estimate = est
        sent = np.maximum(self._record.pulses_per_intensity, 1)
        detected = sifted.detected
        self._stats.update(qber_x=est.qber_x, estimate=est,
                           gain_per_intensity=tuple(float(g) for g in detected / sent),
                           qber_x_per_intensity=tuple(float(e) / max(float(t), 1.0)
                                                      for e, t in zip(x.errors or (), x.detections, strict=False)))
        if est.qber_x > proc.qber_abort_threshold:
            return self._abort_msg(f"QBER {est.qber_x:.4f} in the test basis exceeds "
                                   f"{proc.qber_abort_threshold}")
        if secret_key_length(est, TAG_BITS, proc.epsilon_sec, proc.epsilon_cor) <= 0:
            return self._abort_msg("decoy-state bounds leave no positive key length "
                                   f"(s_Z1 >= {est.s_z1:.0f}, phase error <= {est.phase_error_z1:.4f})")
        if self._key.size < 64:
            return self._abort_msg("too few sifted key bits")
        self._leak = 0
        self._rounds = 0
        if proc.reconciler == "ldpc":
            return self._start_ldpc(est.qber_x, ldpc.upper_estimate(est.qber_x, int(sifted.test.size), int(self._key.size)),
                                    int(self._rng.integers(1 << 62)))
        plan = cascade.plan(self._key.size, max(est.qber_x, 1e-3), ep.cascade_seed(self._block_index),
                            proc.cascade_passes)
        self._plan = plan
        self._prefix = plan.prefix_parities(self._key, ep.cascade_shuffles)
        self._expect = ParityQuery | ReconciliationDone
        transcript_key = self.auth.open_transcript()
        return [Reconcile(frame_id=self.frame_id, qber_estimate=float(est.qber_x),
                          block_sizes=np.asarray(plan.block_sizes, np.int64), seed=plan.seed,
                          transcript_key_origin=transcript_key.origin, transcript_key_seq=transcript_key.seq)]

    def _start_ldpc(self, qber_estimate: float, qber_upper: float, seed: int) -> list[Message]:
        plan = ldpc.plan(self._key.size, qber_estimate, qber_upper, seed)
        self._ldpc = plan
        # The punctured filler is secret (it hides syndrome bits): the device's randomness.
        self._filler = self.endpoint.secret_bits(plan.frames * plan.punctured).reshape(plan.frames, plan.punctured)
        self._reveal_requests: list[np.ndarray] = []
        self._stats.update(reconciler="ldpc", frames=plan.frames)
        transcript_key = self.auth.open_transcript()
        self._expect = RevealRequest | ReconciliationDone
        return [Syndromes(frame_id=self.frame_id, qber_estimate=float(qber_estimate), qber_upper=float(qber_upper),
                          seed=seed,
                          syndromes=pack(ldpc.syndromes(self._key, plan, self._filler)),
                          tags=ldpc.frame_tags(self._key, plan),
                          transcript_key_origin=transcript_key.origin, transcript_key_seq=transcript_key.seq)]

    def _on_RevealRequest(self, m: RevealRequest) -> list[Message]:
        if self._ldpc is None or m.retry != self._rounds:
            raise ProtocolError(f"reveal for retry {m.retry}, expected {self._rounds}")
        bits = ldpc.reveal(self._ldpc, self._filler, m.frames, m.retry)
        self._reveal_requests.append(m.frames)
        self._rounds += 1
        return [Reveal(frame_id=self.frame_id, bits=pack(bits), count=int(bits.size))]

    def _on_ParityQuery(self, m: ParityQuery) -> list[Message]:
        parities = cascade.answer_parities(
            self._prefix, self._plan.padded_bits, cascade.ParityQueries(m.pass_index, m.node))
        self._leak += int(parities.size)
        self._rounds += 1
        return [ParityReply(frame_id=self.frame_id, parities=pack(parities), count=int(parities.size))]

    def _on_ReconciliationDone(self, m: ReconciliationDone) -> list[Message]:
        ep, proc = self.endpoint, self.endpoint.processing
        self.auth.check_transcript(m.transcript_tag)
        if self._ldpc is not None:
            plan, dropped = self._ldpc, np.unique(m.dropped_frames)
            if dropped.size != m.dropped_frames.size or (dropped.size and (dropped[0] < 0 or dropped[-1] >= plan.frames)):
                raise ProtocolError("dropped frames outside the LDPC plan")
            self._key = ldpc.kept(self._key, plan, dropped)
            self._leak = ldpc.leak_bits(plan, ldpc.revealed_per_frame(plan, self._reveal_requests), dropped)
            self._stats["frames_dropped"] = int(dropped.size)
            if self._key.size == 0:
                return self._abort_msg("every LDPC frame was dropped")
        elif m.dropped_frames.size:
            raise ProtocolError("Cascade drops no frame")
        n = self._key.size
        if not 0 <= m.corrected_bits <= n:
            raise ProtocolError("corrected bit count out of range")
        if collision_probability(n) > proc.epsilon_cor:
            raise ProtocolError("verification hash too weak for epsilon_cor at this block size")
        leak = self._leak + TAG_BITS
        length = secret_key_length(self._estimate, leak, proc.epsilon_sec, proc.epsilon_cor)
        self._stats.update(qber_z=m.corrected_bits / n, leak_ec_bits=self._leak,
                           verification_bits=TAG_BITS, cascade_rounds=self._rounds)
        if length <= 0:
            return self._abort_msg(f"key length {length} after error-correction leak {leak} bits")
        hash_key = new_hash_key(self._rng)
        choice = choose_hash(self._rng, n)
        self._final = universal_hash(self._key, choice, length)
        self._stats["amplified_bits"] = length
        self._refill = _affordable(ep.refill_wanted(self._block_index, self.auth.used_units), length)
        self._expect = Confirm
        return [Amplify(frame_id=self.frame_id, hash_key=hash_key, tag=key_tag(self._key, hash_key),
                        key_bits=length, hash_choice=choice.to_bytes(), auth_refill_alice=self._refill[0],
                        auth_refill_bob=self._refill[1])]

    def _on_Confirm(self, m: Confirm) -> list[Message]:
        if not m.ok:
            self._end("verification failed: keys differ after reconciliation")
            return []
        self._deferred_end = (None, self._final)  # after Finish is sealed, so its pad is charged
        return [Finish(frame_id=self.frame_id, accepted=True)]

    def _end(self, reason: str | None, key: np.ndarray = _EMPTY) -> None:
        super()._end(reason, key)
        refilled = self._refill if reason is None else (0, 0)
        self.endpoint.block_ended(self._block_index, self.auth.used_units, refilled)

    def _abort_msg(self, reason: str) -> list[Message]:
        self.auth.abandon_transcript()
        self._deferred_end = (reason, _EMPTY)
        return [Abort(frame_id=self.frame_id, reason=reason)]


class BobSession(_Session):
    """Receiver side: holds the detector record; drives Cascade."""

    role = "bob"

    def __init__(self, endpoint: LinkEndpoint, frame_id: int, record: BobRecord) -> None:
        super().__init__(endpoint, frame_id)
        self._record = record
        self._expect = SiftReply

    def begin(self) -> list[bytes]:
        rec = self._record
        gaps = slot_gaps(rec.slots)
        self._stats.update(n_pulses=rec.n_pulses, detections=int(rec.slots.size))
        try:
            self.auth.new_hash_key()
            return [self.auth.seal(Detections(frame_id=self.frame_id, n_pulses=rec.n_pulses,
                                               slot_gaps=gaps, bases=pack(rec.basis)))]
        except AuthKeyExhausted as exc:
            self._end(f"authentication key exhausted: {exc}")
            return []

    def _on_SiftReply(self, m: SiftReply) -> list[Message]:
        rec = self._record
        alice_basis = unpack(m.bases, rec.slots.size)
        sifted = sift(alice_basis, rec.basis, rec.bit)
        self._key = sifted.key
        self._stats.update(sifted_key_bits=int(self._key.size), test_bits=int(sifted.test.size))
        self._expect = Reconcile | Syndromes
        return [TestBits(frame_id=self.frame_id, bits=pack(sifted.test))]

    def _on_Reconcile(self, m: Reconcile) -> list[Message]:
        sizes = tuple(int(s) for s in m.block_sizes)
        if not sizes or any(s < 2 or s & (s - 1) for s in sizes) or len(sizes) > 16:
            raise ProtocolError("Cascade block sizes must be powers of two")
        self.auth.join_transcript(AuthKeyIndex(m.transcript_key_origin, m.transcript_key_seq))
        self._stats["qber_x"] = m.qber_estimate
        self._corrector = cascade.CascadeCorrector(self._key, cascade.CascadePlan(self._key.size, sizes, m.seed),
                                                   self.endpoint.cascade_shuffles)
        return self._next_round()

    def _on_Syndromes(self, m: Syndromes) -> list[Message]:
        plan = ldpc.plan(self._key.size, m.qber_estimate, m.qber_upper, m.seed)
        self.auth.join_transcript(AuthKeyIndex(m.transcript_key_origin, m.transcript_key_seq))
        syndromes = unpack(m.syndromes, plan.frames * plan.syndrome_bits).reshape(plan.frames, plan.syndrome_bits)
        self._stats.update(qber_x=m.qber_estimate, reconciler="ldpc", frames=plan.frames)
        self._decoder = ldpc.LdpcDecoder(self._key, plan, syndromes, m.tags, m.qber_estimate)
        self._stats["frames_failed_first"] = self._decoder.first_try_failures
        return self._next_ldpc_step()

    def _next_ldpc_step(self) -> list[Message]:
        d = self._decoder
        if not d.done:
            self._expect = Reveal
            return [RevealRequest(frame_id=self.frame_id, retry=d.retries, frames=d.failed)]
        self._key = d.kept_key()
        self._stats.update(qber_z=d.corrected_bits / max(self._key.size, 1), cascade_rounds=d.retries,
                           leak_ec_bits=ldpc.leak_bits(d.plan, d.revealed, d.dropped),
                           frames_dropped=int(d.dropped.size))
        self._expect = Amplify
        return [ReconciliationDone(frame_id=self.frame_id, corrected_bits=d.corrected_bits,
                                   transcript_tag=self.auth.finish_transcript(), dropped_frames=d.dropped)]

    def _on_Reveal(self, m: Reveal) -> list[Message]:
        self._decoder.receive_reveal(unpack(m.bits, m.count))
        return self._next_ldpc_step()

    def _next_round(self) -> list[Message]:
        queries = self._corrector.next_queries()
        if queries is None:
            c = self._corrector
            self._stats.update(qber_z=c.corrected_bits / max(self._key.size, 1),
                               leak_ec_bits=c.leaked_bits, cascade_rounds=c.rounds)
            self._key = c.key
            self._expect = Amplify
            return [ReconciliationDone(frame_id=self.frame_id, corrected_bits=c.corrected_bits,
                                       transcript_tag=self.auth.finish_transcript(),
                                       dropped_frames=np.empty(0, np.int64))]
        self._expect = ParityReply
        return [ParityQuery(frame_id=self.frame_id, pass_index=queries.pass_index, node=queries.node)]

    def _on_ParityReply(self, m: ParityReply) -> list[Message]:
        expected = self._corrector.next_queries()
        if expected is None or m.count != expected.node.size:
            raise ProtocolError("parity reply does not answer the open questions")
        self._corrector.receive(unpack(m.parities, m.count))
        return self._next_round()

    def _on_Amplify(self, m: Amplify) -> list[Message]:
        n = self._key.size
        if not 0 < m.key_bits <= n:
            raise ProtocolError("final key length out of range")
        if min(m.auth_refill_alice, m.auth_refill_bob) < 0 or \
                KEY_BITS * (m.auth_refill_alice + m.auth_refill_bob) > m.key_bits:
            raise ProtocolError("authentication refill out of range")
        self._refill = (m.auth_refill_alice, m.auth_refill_bob)
        self._stats.update(verification_bits=TAG_BITS, amplified_bits=m.key_bits)
        if not tags_match(key_tag(self._key, m.hash_key), m.tag):
            self._expect = Finish
            self._verified = False
            return [Confirm(frame_id=self.frame_id, ok=False)]
        self._final = universal_hash(self._key, HashChoice.from_bytes(n, m.hash_choice), m.key_bits)
        self._verified = True
        self._expect = Finish
        return [Confirm(frame_id=self.frame_id, ok=True)]

    def _on_Finish(self, m: Finish) -> list[Message]:
        if m.accepted and self._verified:
            self._end(None, self._final)
        else:
            self._end("verification failed: keys differ after reconciliation")
        return []


def _per_intensity(counts: np.ndarray) -> tuple[int, int, int]:
    signal, decoy, vacuum = (int(c) for c in counts)
    return signal, decoy, vacuum


def _affordable(wanted: tuple[int, int], key_bits: int) -> tuple[int, int]:
    """The refill Alice announces: what is wanted, cut down (larger share first) to fit the key."""
    alice, bob = wanted
    while KEY_BITS * (alice + bob) > key_bits:
        if alice >= bob:
            alice -= 1
        else:
            bob -= 1
    return alice, bob
