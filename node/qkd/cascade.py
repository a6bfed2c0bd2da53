"""Cascade error correction, batched: every parity question of a round travels in one message.

Layer: sans-I/O kernel. Alice's half is the pure function ``answer_parities``; Bob's half is
the state machine ``CascadeCorrector``, which asks for parities, takes the answers back, flips
his bits and asks again until every block of every pass agrees. The transport loop lives
outside, so the same algorithm runs in memory in tests and over gRPC in the node.

Blocks are dyadic: the key is padded with virtual zeros to a power of two L, pass p uses blocks
of a power-of-two size, and every sub-block of a binary search is a node of the implicit binary
tree over [0, L) (root 1, children 2i and 2i+1). Bob remembers every parity Alice has
disclosed or that follows from disclosed ones (right = parent xor left), so searches started by
the cascade effect reuse them and never ask twice. Each answered question is one leaked bit.
Block sizes: see ``plan``. This is the original Cascade protocol (Brassard-Salvail 1993) with
power-of-two blocks and parity reuse, no BICONF, and two deviations, both for speed: the passes
the plan adds beyond the first three permute by random affine maps instead of uniform shuffles
(``CascadePlan.permutations``), and in the long tail of a large key a search asks two levels of
its binary search at once (``TAIL_BITS_PER_SEARCH``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import gmpy2
import numpy as np

from . import cascade_kernels as kernels
from .errors import ProtocolError


@dataclass(frozen=True)
class CascadePlan:
    """Public parameters both halves derive the same permutations and blocks from."""

    n_bits: int
    block_sizes: tuple[int, ...]
    seed: int

    @property
    def padded_bits(self) -> int:
        return max(1 << max(self.n_bits - 1, 1).bit_length(), max(self.block_sizes))

    def permutations(self, shuffles: ShuffleCache | None = None) -> np.ndarray:
        """(passes, n_bits) int32: position -> sifted index, per pass. Pass 0 keeps the sifted
        order; passes 1 to ``SHUFFLED_PASSES`` - 1 are uniformly random (``shuffled``); later
        passes, which only separate the rare pairs of errors every earlier pass kept together,
        are random affine maps modulo a prime (``affine_table``). Bob's kernels read the shuffled
        rows and walk the affine maps instead of materialising this."""
        perms = np.empty((len(self.block_sizes), self.n_bits), np.int32)
        perms[0] = np.arange(self.n_bits, dtype=np.int32)
        shuffled = self.shuffled(shuffles)
        perms[1:1 + shuffled.shape[0]] = shuffled
        table = self.affine_table()
        for p in range(1 + shuffled.shape[0], len(self.block_sizes)):
            modulus, a, b = (int(v) for v in table[p, :3])
            kernels.affine_permutation(self.n_bits, modulus, a, b, perms[p])
        return perms

    def shuffled(self, shuffles: ShuffleCache | None = None) -> np.ndarray:
        """(shuffled passes, n_bits) int32: each a SplitMix64 shuffle of the padded length
        restricted to 0..n_bits-1 in its order (uniform again), so that an end can reuse the
        shuffle while the seed stays (``ShuffleCache``)."""
        full = (shuffles or ShuffleCache()).shuffles(self)
        out = np.empty((full.shape[0], self.n_bits), np.int32)
        for row in range(full.shape[0]):
            kernels.restrict(full[row], out[row])
        return out

    def affine_table(self) -> np.ndarray:
        """(passes, 5) int64: modulus, a, b, a^-1, -a^-1 b of each affine pass (zeros elsewhere)."""
        table = np.zeros((len(self.block_sizes), 5), np.int64)
        for p in range(SHUFFLED_PASSES, len(self.block_sizes)):
            modulus, a, b = self._affine(p)
            a_inverse = pow(a, -1, modulus)
            table[p] = modulus, a, b, a_inverse, (-a_inverse * b) % modulus
        return table

    def prefix_parities(self, key: np.ndarray, shuffles: ShuffleCache | None = None,
                        real_before: np.ndarray | None = None) -> np.ndarray:
        """``prefix_parities(key, self.permutations())`` without materialising the permutations.
        ``real_before``: (shuffled passes, padded length + 1) int32 to fill, for each shuffled
        pass, with how many of its shuffle's first i entries are key positions (Bob's half maps
        positions through it)."""
        full = (shuffles or ShuffleCache()).shuffles(self)
        out = np.empty((len(self.block_sizes), self.n_bits + 1), np.uint8)
        key = np.ascontiguousarray(key, np.uint8)
        table = self.affine_table()
        for p in range(len(self.block_sizes)):
            if p == 0:
                kernels.identity_prefix_parity(key, out[0])
            elif p < SHUFFLED_PASSES:
                ranks = real_before[p - 1] if real_before is not None else _NO_RANKS
                kernels.ranked_prefix_parity(key, full[p - 1], out[p], ranks)
            else:
                modulus, a, b = (int(v) for v in table[p, :3])
                kernels.affine_prefix_parity(key, modulus, a, b, out[p])
        return out

    def inverse_permutations(self, perms: np.ndarray) -> np.ndarray:
        """The inverse of each pass's permutation (sifted index -> position)."""
        inverse = np.empty_like(perms)
        for p in range(perms.shape[0]):
            kernels.invert(perms[p], inverse[p])
        return inverse

    def shuffle_seed(self, p: int) -> int:
        return (self.seed + p * 0x632BE59BD9B4E019) % (1 << 63)

    def _affine(self, p: int) -> tuple[int, int, int]:
        """(prime modulus >= n_bits, a, b) of pass p's affine map, from the public seed."""
        modulus = int(gmpy2.next_prime(max(self.n_bits, 2) - 1))
        rng = np.random.default_rng([self.seed, p])
        return modulus, int(rng.integers(1, modulus)), int(rng.integers(0, modulus))


_NO_RANKS = np.empty(0, np.int32)


class ShuffleCache:
    """The shuffles of one plan seed, and their inverses, kept by one link end. Why: a shuffle of
    4 M positions costs about 60 ms and its inverse 10 ms, at each end and shuffled pass; Alice
    keeps a seed for ``SHUFFLE_REUSE_BLOCKS`` blocks (``LinkEndpoint.cascade_seed``), so each end
    computes them once per that many blocks. The errors of a block do not depend on the public
    permutations, so reusing them changes no block's statistics. Blocks of one link running
    side by side share it: the lock makes one compute what the others then read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._perms = np.empty((0, 0), np.int32)
        self._inverses: np.ndarray | None = None

    def shuffles(self, plan: CascadePlan) -> np.ndarray:
        """(shuffled passes, padded length) int32: the plan's shuffles of the padded length (read-only)."""
        with self._lock:
            return self._shuffles(plan)[0]

    def inverses(self, plan: CascadePlan) -> np.ndarray:
        """The inverses of ``shuffles(plan)`` (read-only)."""
        with self._lock:
            perms, all_perms = self._shuffles(plan)
            if self._inverses is None or self._inverses.shape[0] < perms.shape[0]:
                inverses = np.empty_like(all_perms)
                for row in range(all_perms.shape[0]):
                    kernels.invert(all_perms[row], inverses[row])
                inverses.flags.writeable = False
                self._inverses = inverses
            return self._inverses[:perms.shape[0]]

    def _shuffles(self, plan: CascadePlan) -> tuple[np.ndarray, np.ndarray]:
        """The plan's shuffles, and every shuffle of its seed (the lock held)."""
        key = (plan.padded_bits, plan.seed)
        count = max(0, min(SHUFFLED_PASSES, len(plan.block_sizes)) - 1)
        if self._key != key or self._perms.shape[0] < count:
            perms = np.empty((SHUFFLED_PASSES - 1, plan.padded_bits), np.int32)
            for p in range(1, SHUFFLED_PASSES):
                kernels.permutation(plan.padded_bits, plan.shuffle_seed(p), perms[p - 1])
            perms.flags.writeable = False
            self._key, self._perms, self._inverses = key, perms, None
        return self._perms[:count], self._perms


SHUFFLE_REUSE_BLOCKS = 16
"""Blocks that share one Cascade seed (and so one set of shuffles)."""

TAIL_BITS_PER_SEARCH = 100_000
TAIL_DEPTH = 2
"""While at most one search per TAIL_BITS_PER_SEARCH key bits is live (32 in a 3.2 Mbit key,
none below 100 kbit), each asks TAIL_DEPTH levels at once (see ``cascade_kernels.advance``): at
3.2 Mbit and QBER 1 %, about a quarter fewer rounds (1,305 -> 945) for 1 % more leak."""

SHUFFLED_PASSES = 3
"""Passes before this index (after the first, which keeps the sifted order) use uniformly random
permutations: pass 2 must split the neighbouring errors of pass 1's blocks. Later passes use
random affine maps."""


RESIDUAL_TARGET = 1e-5
"""Expected pairs of errors per block that every pass leaves together (the model in ``plan``)."""
MAX_PASSES = 16


def plan(n_bits: int, qber_estimate: float, seed: int, passes: int = 3) -> CascadePlan:
    """Block sizes: pass 1 about 1/QBER, later passes eight times larger, all powers of two; at
    least ``passes`` passes, and more while the model below expects residual errors.

    Sizes chosen by a sweep over QBER 1-5% (2^18-bit keys): leak/(n h(QBER)) of 1.04-1.07,
    against 1.08-1.17 for Yan et al.'s 1/QBER, 4/QBER sizes with four passes.

    Errors Cascade cannot see come in pairs that share a block in every pass. Pass 1 leaves about
    (n / k1) Poisson(q k1)-probability-of-two pairs together; a later pass of block size k keeps a
    given pair together with probability k / n. A fixed three passes left such pairs in about 1
    block in 150 of 50 kbit keys (the emulation topologies' blocks: k / n = 1024 / 50,000), none
    in 3 Mbit keys; passes are added until the expectation is under ``RESIDUAL_TARGET``. An added
    pass of block size k costs about n / k parities and divides the expectation by n / k, so the
    cheapest is a block near n / e: added passes use the power of two just under n / 4.
    """
    q = min(max(qber_estimate, 1e-4), 0.25)
    first = 1 << max(1, round(math.log2(1.0 / q)))
    cap = 1 << max(1, (max(n_bits, 2) - 1).bit_length() - 1)
    sizes = [min(first, cap)]
    later = min(8 * first, cap)
    mean = q * sizes[0]
    residual = max(n_bits, 1) / sizes[0] * math.exp(-mean) * mean ** 2 / 2
    added = max(later, 1 << max(1, (max(n_bits, 8) // 4).bit_length() - 1))
    while len(sizes) < passes or (residual > RESIDUAL_TARGET and len(sizes) < MAX_PASSES):
        size = later if len(sizes) < passes else min(added, cap)
        sizes.append(size)
        residual *= min(1.0, size / max(n_bits, 1))
    return CascadePlan(n_bits=n_bits, block_sizes=tuple(sizes), seed=seed)


@dataclass(frozen=True)
class ParityQueries:
    pass_index: np.ndarray  # uint8
    node: np.ndarray  # int64 node of the implicit tree over the padded key


def node_ranges(node: np.ndarray, padded_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """[start, stop) of tree nodes in a pass's permuted order."""
    level = np.frexp(node.astype(np.float64))[1] - 1
    size = padded_bits >> level
    start = (node - (np.int64(1) << level)) * size
    return start, start + size


def prefix_parities(key: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """(passes, n + 1) running XOR of the key in each pass's order, for O(1) range parities."""
    out = np.empty((perms.shape[0], perms.shape[1] + 1), np.uint8)
    key = np.ascontiguousarray(key, np.uint8)
    for p in range(perms.shape[0]):
        kernels.prefix_parity(key, perms[p], out[p])
    return out


def answer_parities(prefix: np.ndarray, padded_bits: int, queries: ParityQueries) -> np.ndarray:
    """Alice's half: the parity of each asked block of her key (pure function)."""
    out = np.empty(queries.node.size, np.uint8)
    if queries.pass_index.size != queries.node.size or not kernels.answer(
            prefix, padded_bits, np.ascontiguousarray(queries.pass_index, np.uint8),
            np.ascontiguousarray(queries.node, np.int64), out):
        raise ProtocolError("parity query outside the Cascade plan")
    return out


class CascadeCorrector:
    """Bob's half: corrects his key against Alice's disclosed parities (loops in ``cascade_kernels``)."""

    def __init__(self, key: np.ndarray, plan: CascadePlan, shuffles: ShuffleCache | None = None) -> None:
        self.plan = plan
        self._n = key.size
        self._L = plan.padded_bits
        self._key0 = key.astype(np.uint8, copy=True)
        self._sizes = np.asarray(plan.block_sizes, np.int64)
        shuffles = shuffles or ShuffleCache()
        self._shuffles, self._shuffle_inverses = shuffles.shuffles(plan), shuffles.inverses(plan)
        self._real_before = np.empty((self._shuffles.shape[0], self._L + 1), np.int32)
        self._affine = plan.affine_table()
        self._prefix0 = plan.prefix_parities(self._key0, shuffles, self._real_before)
        passes = len(plan.block_sizes)
        self._fenwick = np.zeros((passes, self._n + 1), np.uint8)
        self._known = np.zeros((passes, 2 * self._L), np.int8)  # Alice's parity + 1; 0: not known
        self._flipped = np.zeros(self._n, np.bool_)
        top_blocks = [-(-self._n // size) for size in plan.block_sizes]
        self._active = np.zeros((passes, max(top_blocks)), np.bool_)
        capacity = sum(top_blocks)
        self._searches = np.zeros((capacity, 3), np.int64)
        self._count = np.zeros(1, np.int64)
        self._tail_searches = self._n // TAIL_BITS_PER_SEARCH
        self._ask_pass = np.zeros(capacity + (self._tail_searches << TAIL_DEPTH), np.int64)
        self._ask_node = np.zeros(capacity + (self._tail_searches << TAIL_DEPTH), np.int64)
        self._started = 0
        self._pending: ParityQueries | None = None
        self.leaked_bits = 0
        self.rounds = 0

    def next_queries(self) -> ParityQueries | None:
        """The questions of the next round, or None when every block agrees."""
        if self._pending is not None:
            return self._pending
        while True:
            status, asked = kernels.advance(
                self._started, self._L, self._sizes, self._shuffles, self._shuffle_inverses, self._real_before,
                self._affine,
                self._prefix0, self._fenwick,
                self._known, self._flipped, self._active, self._searches, self._count,
                self._ask_pass, self._ask_node, self._tail_searches, TAIL_DEPTH)
            if status == kernels.INCONSISTENT:
                raise ProtocolError("Cascade parities are inconsistent (corrupted or forged answers)")
            if asked:
                self._pending = ParityQueries(pass_index=self._ask_pass[:asked].astype(np.uint8),
                                              node=self._ask_node[:asked].copy())
                return self._pending
            if self._started >= len(self.plan.block_sizes):
                return None
            self._start_pass(self._started)

    def receive(self, parities: np.ndarray) -> None:
        if self._pending is None:
            raise ProtocolError("parities received but no question is open")
        queries, self._pending = self._pending, None
        if parities.size != queries.node.size:
            raise ProtocolError("parity answer does not match the questions asked")
        self.leaked_bits += int(parities.size)
        self.rounds += 1
        kernels.learn(self._known, queries.pass_index.astype(np.int64), queries.node, parities.astype(np.int8))

    @property
    def key(self) -> np.ndarray:
        return self._key0 ^ self._flipped.astype(np.uint8)

    @property
    def corrected_bits(self) -> int:
        return int(self._flipped.sum())

    def _start_pass(self, p: int) -> None:
        """Every top-level block of pass p becomes a search; their parities are the first asked."""
        self._started = p + 1
        size = self.plan.block_sizes[p]
        blocks = -(-self._n // size)
        first, count = int(self._count[0]), blocks
        top = self._L // size
        rows = self._searches[first:first + count]
        rows[:, 0] = p
        rows[:, 1] = top + np.arange(blocks)
        rows[:, 2] = top.bit_length() - 1
        self._active[p, :blocks] = True
        self._count[0] = first + count
