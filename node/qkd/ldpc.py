"""One-way, blind LDPC reconciliation: Alice sends syndromes; a frame Bob cannot decode gets some
of its punctured bits revealed and another try, and is dropped (not the block) if it still fails.

Layer: sans-I/O protocol kernel. Alice's half is pure functions (``syndromes``, ``frame_tags``,
``reveal``); Bob's half is the state machine ``LdpcDecoder``.

The sifted key is cut into frames of at most ``FRAME_BITS`` (equal lengths, short ones padded
with zeros both ends know). One eIRA code per block is built by both ends from a public seed
(``ldpc_kernels.build``), with as many checks as ``max_efficiency`` x frame x h(upper QBER
estimate) asks: a rate made for the estimated QBER, not picked from a table. Each codeword holds the
frame's key bits and ``punctured`` filler bits that Alice draws secretly and Bob knows nothing
of (spread over the code's degree-2 chain, never two adjacent, so their columns are independent
and the filler hides exactly that many syndrome bits); the first try therefore leaks only
``start_efficiency`` x frame x h(q) at a lower estimate of the QBER. A frame Bob cannot decode
gets ``reveal_step`` more filler bits revealed (punctured -> shortened: blind reconciliation,
Martinez-Mateo, Elkouss and Martin, QIC 12 (2012)), up to ``MAX_RETRIES`` times. A frame is
accepted only if its ``FRAME_TAG_BITS``-bit universal hash (the Carter-Wegman family of
``amplification``) matches Alice's, so a decoder that settled on a wrong word costs that frame,
not the block. A retry resumes decoding from where the last try stopped (its messages), with the
revealed bits pinned.

Leak, exactly, per kept frame: syndrome bits - punctured bits + revealed filler bits + tag bits.
A dropped frame is charged all of its key bits instead (as if disclosed).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import ldpc_kernels as kernels
from .amplification import HashChoice, choose_hash, universal_hash
from .analytic import binary_entropy
from .errors import ProtocolError

FRAME_BITS = 131_072
"""Long frames: the spread between frames of the f at which they decode shrinks with length, and
the per-frame tag costs less. At 32 kbit the same protocol measured f 1.19-1.28 at QBER 1 %; at
64 kbit 1.15-1.17; at 128 kbit 1.13-1.15 (12 frames, two seeds)."""
MAX_RETRIES = 96
DECODE_FROM = 1.08
"""Bob decodes a frame only once its leak reaches this many times n h(QBER from the syndromes,
less three standard errors): frames decoded from about 1.11 on in the sweeps."""
MAX_ITERATIONS = 40
STALL_ITERATIONS = 4
"""A try ends after this many iterations without fewer unsatisfied checks than its best: the
next try resumes from its messages, so little is lost (f +0.001 at QBER 1 %, against 10), and
failing tries, most of the decoding time, cost a third."""
FRAME_TAG_BITS = 32
INFORMATION_WEIGHTS = ((3, 0.55), (7, 0.3), (18, 0.15))
"""Column weights of the information variables and their shares (the parity part is a dual
diagonal). Chosen by measurement, not by density evolution: sweeps of fifteen mixes at 32 and
64 kbit frames, QBER 1 % (the highest rate, hardest to approach), then the blind protocol's f at
QBER 1-3 % for the three best. Heavier mixes (weights to 25-30) and lighter ones (3 and 8-12
only) both decoded fewer frames near f = 1.1."""
PINNED_LLR = 1e4


def start_efficiency(qber: float) -> float:
    """The f of the first try, at the lower estimate: below where frames decode (about 1.11-1.14
    at the full frame), so that every frame pays only for the reveals it needs, in
    ``MAX_RETRIES`` steps. Starting at 1.22 (QBER 1 %) to 1.10 (5 %) at the point estimate, where
    most frames decoded at once, cost 0.06-0.08 more in f; starting at 1.06 cost time (4 more
    tries per frame) and no f."""
    return 1.09


def max_efficiency(qber: float) -> float:
    """The f with every filler bit revealed, at the upper estimate: above where every frame of the
    sweeps decoded. Not higher: the more filler the code carries, the weaker the punctured code a
    frame is decoded with (1.30 at QBER 1 % measured f 0.01 worse than 1.24)."""
    return 1.24 - 0.06 * min(max((qber - 0.01) / 0.04, 0.0), 1.0)


UPPER_SIGMAS = 3.0
"""How many standard deviations the code's QBER lies above the test sample's estimate."""


def upper_estimate(qber: float, test_bits: int, key_bits: int) -> float:
    """A QBER a frame's is very unlikely to exceed: three standard deviations of the difference
    between the test sample's rate and a frame's, both drawn around the link's true rate. (Taking
    the frame as large as the test sample, as this did before, overstated it for 128 kbit frames
    and a 40 kbit sample; the tighter bound, with less filler in the code, measured f 0.005
    lower in six of six seeds at QBER 1 %.)"""
    frame_bits = frame_length(key_bits)
    sigma = math.sqrt(max(qber, 1e-3) * (1 - qber) * (1 / max(test_bits, 1) + 1 / max(frame_bits, 1)))
    return min(qber + UPPER_SIGMAS * sigma, 0.5)


def frame_length(key_bits: int) -> int:
    """The longest frame a key of ``key_bits`` is cut into: equal frames of at most ``FRAME_BITS``."""
    frames = max(1, -(-key_bits // FRAME_BITS))
    return -(-key_bits // frames)


def _entropy(q: float) -> float:
    return float(binary_entropy(q))


@dataclass(frozen=True)
class LdpcPlan:
    """Public parameters both ends derive the code, frames, tags and filler positions from."""

    n_bits: int
    frame_bits: int
    syndrome_bits: int
    punctured: int
    seed: int

    @property
    def frames(self) -> int:
        return -(-self.n_bits // self.frame_bits)

    @property
    def code_bits(self) -> int:
        return self.frame_bits + self.punctured

    @property
    def reveal_step(self) -> int:
        """Filler bits revealed per retry: the filler in ``MAX_RETRIES`` equal steps."""
        return max(1, -(-self.punctured // MAX_RETRIES))

    def frame_bounds(self, frame: int) -> tuple[int, int]:
        """[start, stop) of a frame in the sifted key; frames differ in length by at most one."""
        base, extra = divmod(self.n_bits, self.frames)
        start = frame * base + min(frame, extra)
        return start, start + base + (1 if frame < extra else 0)

    def code(self) -> tuple[np.ndarray, np.ndarray]:
        k = self.code_bits - self.syndrome_bits
        weights = np.empty(k, np.int64)
        position = 0
        for i, (weight, share) in enumerate(INFORMATION_WEIGHTS):
            count = k - position if i == len(INFORMATION_WEIGHTS) - 1 else int(round(share * k))
            weights[position:position + count] = weight
            position += count
        return kernels.build(self.code_bits, self.syndrome_bits, weights, self.seed)

    def filler_positions(self) -> np.ndarray:
        """Codeword positions of the filler, in the order they are revealed: chain variables
        (the last ``syndrome_bits`` positions) with no two adjacent, in a public random order.
        Computed once per plan (every frame of every try uses them); read-only."""
        return self._filler_positions

    def key_positions(self) -> np.ndarray:
        return self._key_positions

    @functools.cached_property
    def _filler_positions(self) -> np.ndarray:
        chain_start = self.code_bits - self.syndrome_bits
        slots = np.random.default_rng([self.seed, 2]).permutation(self.syndrome_bits // 2)[:self.punctured]
        positions = chain_start + 2 * slots  # even chain offsets: never two neighbours
        positions.flags.writeable = False
        return positions

    @functools.cached_property
    def _key_positions(self) -> np.ndarray:
        mask = np.ones(self.code_bits, bool)
        mask[self._filler_positions] = False
        positions = np.flatnonzero(mask)
        positions.flags.writeable = False
        return positions

    def tag_choice(self, frame: int) -> HashChoice:
        start, stop = self.frame_bounds(frame)
        return choose_hash(np.random.default_rng([self.seed, frame, 1]), stop - start)


def plan(n_bits: int, qber_estimate: float, qber_upper: float, seed: int) -> LdpcPlan:
    """Checks for the upper estimate at ``max_efficiency``; filler so that the first try leaks
    ``start_efficiency`` at a lower estimate as far below the point estimate as the upper one is
    above it. The point estimate comes from a test sample of a few 10 kbit, off by 5 % or more
    of the QBER: a first try at the point estimate started as much above what the frames need,
    and f followed it (1.17 on the standard link against 1.14 with the estimate exact)."""
    if n_bits < 1:
        raise ProtocolError("nothing to reconcile")
    if not (0.0 <= qber_estimate <= qber_upper <= 0.5):
        raise ProtocolError("QBER estimates out of range")
    q = min(max(qber_estimate, 1e-3), 0.2)
    q_upper = min(max(qber_upper, q), 0.2)
    frame_bits = frame_length(n_bits)
    syndrome_bits = min(frame_bits - 1, max(16, math.ceil(max_efficiency(q_upper) * frame_bits * _entropy(q_upper))))
    q_lower = max(2 * q - q_upper, 1e-3)
    start_bits = math.ceil(start_efficiency(q_lower) * frame_bits * _entropy(q_lower))
    punctured = max(0, min(syndrome_bits // 2, syndrome_bits - start_bits))
    return LdpcPlan(n_bits=n_bits, frame_bits=frame_bits, syndrome_bits=syndrome_bits, punctured=punctured,
                    seed=seed)


def _codeword(key: np.ndarray, plan: LdpcPlan, frame: int, filler: np.ndarray) -> np.ndarray:
    start, stop = plan.frame_bounds(frame)
    word = np.zeros(plan.code_bits, np.uint8)
    word[plan.key_positions()[:stop - start]] = key[start:stop]  # the rest of the key slots: padding
    word[plan.filler_positions()] = filler
    return word


def syndromes(key: np.ndarray, plan: LdpcPlan, filler: np.ndarray) -> np.ndarray:
    """Alice: (frames, syndrome_bits) uint8. ``filler``: (frames, punctured) secret uniform bits."""
    row_start, column = plan.code()
    return np.stack([kernels.syndrome(row_start, column, _codeword(key, plan, f, filler[f]))
                     for f in range(plan.frames)])


def frame_tags(key: np.ndarray, plan: LdpcPlan) -> np.ndarray:
    """Alice: each frame's tag, the low bits of its universal hash, as uint32."""
    tags = np.empty(plan.frames, np.uint32)
    for f in range(plan.frames):
        start, stop = plan.frame_bounds(f)
        tags[f] = _tag(universal_hash(key[start:stop], plan.tag_choice(f), FRAME_TAG_BITS))
    return tags


def _tag(bits: np.ndarray) -> int:
    return int(np.packbits(bits, bitorder="little").view("<u4")[0])


def reveal(plan: LdpcPlan, filler: np.ndarray, frames: np.ndarray, retry: int) -> np.ndarray:
    """Alice: the filler bits revealed at ``retry`` for each asked frame, frame after frame."""
    if frames.size and (frames.min() < 0 or frames.max() >= plan.frames or np.unique(frames).size != frames.size):
        raise ProtocolError("reveal asked for frames outside the plan")
    if not 0 <= retry < MAX_RETRIES:
        raise ProtocolError("reveal asked beyond the retries the plan allows")
    span = slice(retry * plan.reveal_step, (retry + 1) * plan.reveal_step)
    parts = [filler[int(f), span] for f in frames]
    return np.concatenate(parts) if parts else np.empty(0, np.uint8)


class LdpcDecoder:
    """Bob's half: decodes every frame, asks for filler reveals, drops what still fails."""

    def __init__(self, key: np.ndarray, plan: LdpcPlan, alice_syndromes: np.ndarray, tags: np.ndarray,
                 qber_estimate: float) -> None:
        if alice_syndromes.shape != (plan.frames, plan.syndrome_bits) or tags.shape != (plan.frames,):
            raise ProtocolError("syndromes do not match the LDPC plan")
        self.plan = plan
        self._key0 = key.astype(np.uint8, copy=True)
        self._key = self._key0.copy()
        self._code = plan.code()
        self._phi = kernels.phi_table()
        self._tags = tags
        self._filler_at = plan.filler_positions()
        self._key_at = plan.key_positions()
        self._revealed = np.zeros(plan.frames, np.int64)  # filler bits revealed per frame
        self._known_filler = np.zeros((plan.frames, plan.punctured), np.uint8)
        q = min(max(qber_estimate, 1e-3), 0.2)
        self._llr = math.log((1 - q) / q)
        self._alice = alice_syndromes
        self.retries = 0
        self.iterations: list[int] = []
        self._messages: dict[int, np.ndarray] = {}  # a failed frame's decoder state, for its retry
        self.qber_from_syndromes, sigma = syndrome_qber(plan, self._code, self._key0, alice_syndromes)
        self._decode_from = DECODE_FROM * _entropy(max(self.qber_from_syndromes - 3 * sigma, 0.0))
        self.failed = np.asarray([f for f in range(plan.frames) if not self._try(f)], np.int64)
        self.first_try_failures = int(self.failed.size)

    def _try(self, frame: int) -> bool:
        """Decode, unless the frame's syndrome is still clearly too short (the filler's last bits
        are always tried): a try below where frames decode costs time and tells nothing."""
        start, stop = self.plan.frame_bounds(frame)
        revealed = int(self._revealed[frame])
        leak = self.plan.syndrome_bits - self.plan.punctured + revealed
        if revealed < self.plan.punctured and leak < self._decode_from * (stop - start):
            return False
        return self._decode(frame)

    def _decode(self, frame: int) -> bool:
        start, stop = self.plan.frame_bounds(frame)
        revealed = int(self._revealed[frame])
        mine = _codeword(self._key0, self.plan, frame, self._known_filler[frame])  # unknown filler: 0
        prior = np.full(self.plan.code_bits, self._llr)
        prior[self._key_at[stop - start:]] = PINNED_LLR  # padding: equal at both ends
        prior[self._filler_at[revealed:]] = 0.0  # filler not yet revealed: no information
        prior[self._filler_at[:revealed]] = PINNED_LLR  # revealed: Bob holds Alice's value
        target = self._alice[frame] ^ kernels.syndrome(*self._code, mine)
        message = self._messages.get(frame)
        warm = message is not None
        if message is None:
            message = np.empty(self._code[1].size, np.float32)
        error, iterations = kernels.decode(*self._code, target, prior, MAX_ITERATIONS, STALL_ITERATIONS, self._phi,
                                           message, warm)
        if iterations < 0:
            self._messages[frame] = message
            return False
        self._messages.pop(frame, None)
        candidate = self._key0[start:stop] ^ error[self._key_at[:stop - start]]
        if _tag(universal_hash(candidate, self.plan.tag_choice(frame), FRAME_TAG_BITS)) != int(self._tags[frame]):
            return False  # settled on a wrong word: a failure like any other
        self._key[start:stop] = candidate
        self.iterations.append(iterations)
        return True

    @property
    def done(self) -> bool:
        return self.failed.size == 0 or self.retries >= MAX_RETRIES or self.plan.punctured == 0

    def receive_reveal(self, bits: np.ndarray) -> None:
        """Alice's filler bits for the failed frames at this retry; decode those frames again."""
        if self.done:
            raise ProtocolError("no reveal was asked for")
        step = self.plan.reveal_step
        low = self.retries * step
        width = max(0, min(self.plan.punctured, low + step) - low)
        if bits.size != width * self.failed.size:
            raise ProtocolError("revealed bits do not match the frames asked for")
        still = []
        for i, f in enumerate(self.failed):
            frame = int(f)
            self._known_filler[frame, low:low + width] = bits[i * width:(i + 1) * width]
            self._revealed[frame] = low + width
            if not self._try(frame):
                still.append(frame)
        self.retries += 1
        self.failed = np.asarray(still, np.int64)
        if self.done:
            self._messages.clear()

    @property
    def dropped(self) -> np.ndarray:
        return self.failed if self.done else np.empty(0, np.int64)

    @property
    def revealed(self) -> np.ndarray:
        """Filler bits revealed per frame."""
        return self._revealed.copy()

    def kept_key(self) -> np.ndarray:
        return kept(self._key, self.plan, self.dropped)

    @property
    def corrected_bits(self) -> int:
        return int((self.kept_key() != kept(self._key0, self.plan, self.dropped)).sum())


def syndrome_qber(plan: LdpcPlan, code: tuple[np.ndarray, np.ndarray], key: np.ndarray,
                  alice_syndromes: np.ndarray) -> tuple[float, float]:
    """Bob: the QBER his key and Alice's syndromes imply, and its standard error.

    A check none of whose bits is filler differs between the two syndromes with probability
    (1 - (1 - 2q)^d) / 2 for its d key bits; the QBER that makes the expected number of differing
    checks the observed one (moments, solved by bisection) uses about a hundred times more
    bits than the test sample, so Bob knows where frames can start to decode. The error is
    from the Fisher information (infinite when the checks carry none: then nothing is skipped).
    """
    row_start, column = code
    m = row_start.size - 1
    row_of_edge = np.repeat(np.arange(m), np.diff(row_start))
    filler = np.zeros(plan.code_bits, bool)
    filler[plan.filler_positions()] = True
    clean = np.bincount(row_of_edge, weights=filler[column], minlength=m) == 0
    degree_for_length: dict[int, np.ndarray] = {}  # frames differ in length by one bit at most
    degrees, odds = [], []
    no_filler = np.zeros(plan.punctured, np.uint8)
    for frame in range(plan.frames):
        start, stop = plan.frame_bounds(frame)
        degree = degree_for_length.get(stop - start)
        if degree is None:
            counted = np.zeros(plan.code_bits, bool)
            counted[plan.key_positions()[:stop - start]] = True  # key bits, not padding
            degree = np.bincount(row_of_edge, weights=counted[column], minlength=m).astype(np.int64)
            degree_for_length[stop - start] = degree
        odd = alice_syndromes[frame] ^ kernels.syndrome(row_start, column, _codeword(key, plan, frame, no_filler))
        use = clean & (degree > 0)
        degrees.append(degree[use])
        odds.append(odd[use])
    all_degrees = np.concatenate(degrees)
    checks = np.bincount(all_degrees)
    observed = float(np.concatenate(odds).sum())
    d = np.arange(checks.size)

    def expected(q: float) -> float:
        return float((checks * (1 - (1 - 2 * q) ** d) / 2).sum())

    if checks.sum() == 0 or observed >= expected(0.5):
        return 0.5, math.inf
    low, high = 0.0, 0.5
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if expected(mid) < observed else (low, mid)
    q = (low + high) / 2
    p = (1 - (1 - 2 * q) ** d) / 2
    slope = d * (1 - 2 * q) ** np.maximum(d - 1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        information = float(np.where(p * (1 - p) > 0, checks * slope ** 2 / (p * (1 - p)), 0.0).sum())
    return q, (1 / math.sqrt(information) if information > 0 else math.inf)


def revealed_per_frame(plan: LdpcPlan, requests: list[np.ndarray]) -> np.ndarray:
    """Alice's count of filler bits revealed per frame, from the frames asked at each retry."""
    counts = np.zeros(plan.frames, np.int64)
    for retry, frames in enumerate(requests):
        low = retry * plan.reveal_step
        counts[frames] = max(0, min(plan.punctured, low + plan.reveal_step))
    return counts


def kept(key: np.ndarray, plan: LdpcPlan, dropped: np.ndarray) -> np.ndarray:
    """The key without the dropped frames (both ends)."""
    if dropped.size == 0:
        return key
    mask = np.ones(key.size, bool)
    for f in dropped:
        start, stop = plan.frame_bounds(int(f))
        mask[start:stop] = False
    return key[mask]


def leak_bits(plan: LdpcPlan, revealed: np.ndarray, dropped: np.ndarray) -> int:
    """What the block charges to error correction, as in the module docstring."""
    is_dropped = np.zeros(plan.frames, bool)
    is_dropped[dropped] = True
    leak = 0
    for f in range(plan.frames):
        start, stop = plan.frame_bounds(f)
        if is_dropped[f]:
            leak += stop - start
        else:
            leak += plan.syndrome_bits - plan.punctured + int(revealed[f]) + FRAME_TAG_BITS
    return leak
