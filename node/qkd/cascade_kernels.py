"""Compiled inner loops of Cascade: the public permutations and Bob's walk down the parity trees.

Layer: sans-I/O kernel, compiled by numba (``cache=True``: compiled once per installation, then
loaded). No I/O, clock or shared state; every function takes its arrays and returns. Why
compiled: a round of Cascade advances thousands of small binary searches by a step or two each,
and doing that with numpy calls cost about 2.5 ms of interpreter overhead per round, over 1,000
rounds per block. Bob's parity of any block is read in O(log n) from the parity prefix of his
sifted key and a XOR Fenwick tree of the bits he has flipped since.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .splitmix import next_value as _splitmix

OK = 0
INCONSISTENT = 1
BUCKETS = 256


@nb.njit(cache=True, nogil=True)
def _below(state: np.ndarray, spare: np.ndarray, bound: int) -> int:
    """Uniform on 0..bound-1 (bound < 2^32) by Lemire's multiply-shift with rejection: exact, and a
    division only in the rare rejection branch. Each SplitMix64 output feeds two 32-bit draws."""
    while True:
        if spare[0] == 0:
            word = _splitmix(state)
            spare[1] = word >> np.uint64(32)
            spare[0] = 1
            r = word & np.uint64(0xFFFFFFFF)
        else:
            spare[0] = 0
            r = spare[1]
        product = r * np.uint64(bound)
        low = product & np.uint64(0xFFFFFFFF)
        if low >= np.uint64(bound) or low >= (np.uint64(1 << 32) - np.uint64(bound)) % np.uint64(bound):
            return int(product >> np.uint64(32))


@nb.njit(cache=True, nogil=True)
def permutation(n: int, seed: int, out: np.ndarray) -> None:
    """A uniformly random permutation of 0..n-1 from SplitMix64 seeded by ``seed`` (public: both
    ends compute the same one).

    Rao-Sandelius: every element draws one of 256 buckets (eight draws per 64-bit output), the
    buckets are laid end to end and each is Fisher-Yates shuffled with exact bounded draws; the
    result is uniform, and each step touches memory in order or within one cache-sized bucket
    (plain Fisher-Yates over 3 M elements waited on memory).
    """
    state = np.empty(1, np.uint64)
    state[0] = np.uint64(seed)
    bucket = np.empty(n, np.uint8)
    starts = np.zeros(BUCKETS + 1, np.int64)
    word = np.uint64(0)
    for i in range(n):
        if i % 8 == 0:
            word = _splitmix(state)
        drawn = np.uint8(word & np.uint64(0xFF))
        word >>= np.uint64(8)
        bucket[i] = drawn
        starts[np.int64(drawn) + 1] += 1
    for b in range(BUCKETS):
        starts[b + 1] += starts[b]
    fill = starts[:BUCKETS].copy()
    for i in range(n):
        own = bucket[i]
        out[fill[own]] = i
        fill[own] += 1
    spare = np.zeros(2, np.uint64)
    for b in range(BUCKETS):
        low = starts[b]
        for i in range(starts[b + 1] - 1, low, -1):
            j = low + _below(state, spare, i - low + 1)
            out[i], out[j] = out[j], out[i]


@nb.njit(cache=True, nogil=True)
def affine_permutation(n: int, modulus: int, a: int, b: int, out: np.ndarray) -> None:
    """out[x] = the first of f(x), f(f(x)), ... below n, where f(y) = (a y + b) mod modulus and
    modulus is a prime >= n (cycle walking): a bijection of 0..n-1, its inverse the same walk of
    f's inverse, in O(1) per element with memory touched in order."""
    y = b % modulus
    for x in range(n):
        z = y
        while z >= n:
            z = (a * z + b) % modulus
        out[x] = z
        y += a
        if y >= modulus:
            y -= modulus


@nb.njit(cache=True, nogil=True)
def affine_prefix_parity(key: np.ndarray, modulus: int, a: int, b: int, out: np.ndarray) -> None:
    """``prefix_parity`` through ``affine_permutation(key.size, modulus, a, b)``, without
    materialising the permutation (Alice needs only the prefix)."""
    n = key.size
    y = b % modulus
    parity = np.uint8(0)
    out[0] = 0
    for x in range(n):
        z = y
        while z >= n:
            z = (a * z + b) % modulus
        parity ^= key[z]
        out[x + 1] = parity
        y += a
        if y >= modulus:
            y -= modulus


@nb.njit(cache=True, nogil=True)
def answer(prefix: np.ndarray, padded_bits: int, pass_index: np.ndarray, node: np.ndarray, out: np.ndarray) -> bool:
    """Alice's parity of each asked node (pass_index[k], node[k]) into ``out``, from her prefixes;
    False, with ``out`` unspecified, if a question lies outside the plan."""
    n = prefix.shape[1] - 1
    for k in range(node.size):
        p, v = np.int64(pass_index[k]), node[k]
        if v < 1 or v >= 2 * padded_bits or p >= prefix.shape[0]:
            return False
        level = 0
        while (v >> (level + 1)) > 0:
            level += 1
        size = padded_bits >> level
        start = (v - (np.int64(1) << level)) * size
        stop = min(start + size, n)
        start = min(start, n)
        out[k] = prefix[p, stop] ^ prefix[p, start]
    return True


@nb.njit(cache=True, nogil=True)
def restrict(perm: np.ndarray, out: np.ndarray) -> None:
    """out = the entries of ``perm`` below out.size, in ``perm``'s order (a uniformly random
    permutation restricted to a prefix of its values is a uniformly random permutation of it)."""
    n = out.size
    j = 0
    for i in range(perm.size):
        if perm[i] < n:
            out[j] = perm[i]
            j += 1


@nb.njit(cache=True, nogil=True)
def ranked_prefix_parity(key: np.ndarray, perm: np.ndarray, out: np.ndarray, real_before: np.ndarray) -> None:
    """``prefix_parity`` through ``perm`` restricted to 0..key.size-1, without materialising it;
    and, unless ``real_before`` is empty (Alice), real_before[i] = how many of perm[0..i-1] are
    below key.size: a key position's place in the restricted order is real_before at its place
    in ``perm`` (Bob maps flips through it instead of building the restricted permutation)."""
    n = key.size
    ranks = real_before.size > 0
    parity = np.uint8(0)
    out[0] = 0
    j = 0
    for i in range(perm.size):
        if ranks:
            real_before[i] = j
        x = perm[i]
        if x < n:
            parity ^= key[x]
            j += 1
            out[j] = parity
    if ranks:
        real_before[perm.size] = j


@nb.njit(cache=True, nogil=True)
def identity_prefix_parity(key: np.ndarray, out: np.ndarray) -> None:
    """``prefix_parity`` in the sifted order (numpy's xor accumulate took eight times as long)."""
    parity = np.uint8(0)
    out[0] = 0
    for i in range(key.size):
        parity ^= key[i]
        out[i + 1] = parity


@nb.njit(cache=True, nogil=True)
def invert(perm: np.ndarray, out: np.ndarray) -> None:
    for i in range(perm.size):
        out[perm[i]] = i


@nb.njit(cache=True, nogil=True)
def prefix_parity(key: np.ndarray, perm: np.ndarray, out: np.ndarray) -> None:
    """out[i] = XOR of key[perm[0..i-1]]: the running parity of the key in a pass's order."""
    parity = np.uint8(0)
    out[0] = 0
    for i in range(perm.size):
        parity ^= key[perm[i]]
        out[i + 1] = parity


@nb.njit(cache=True, nogil=True)
def _fenwick_flip(tree: np.ndarray, p: int, position: int) -> None:
    i = position + 1
    size = tree.shape[1] - 1
    while i <= size:
        tree[p, i] ^= 1
        i += i & -i


@nb.njit(cache=True, nogil=True)
def _fenwick_between(tree: np.ndarray, p: int, start: int, stop: int) -> int:
    """XOR of the flips at positions start..stop-1: the two prefix walks, each stopped where they
    meet (what lies below is in both), so a small range costs about twice its log, not twice n's."""
    parity = 0
    i, j = stop, start
    while i != j:
        if i > j:
            parity ^= tree[p, i]
            i -= i & -i
        else:
            parity ^= tree[p, j]
            j -= j & -j
    return parity


@nb.njit(cache=True, nogil=True)
def _bob_parity(prefix0: np.ndarray, flips: np.ndarray, p: int, start: int, stop: int) -> int:
    n = prefix0.shape[1] - 1
    if start >= n:
        return 0  # padding: zero at both ends
    if stop > n:
        stop = n
    return int(prefix0[p, stop] ^ prefix0[p, start]) ^ _fenwick_between(flips, p, start, stop)


@nb.njit(cache=True, nogil=True)
def _alice_known(known: np.ndarray, p: int, node: int, start: int, n: int) -> int:
    """Alice's parity of a node, 0 for padding, -1 if not known. ``known`` holds parity + 1 and 0
    for unknown, so it starts as zeros: pages the searches never touch are never written."""
    if start >= n:
        return 0
    return int(known[p, node]) - 1


@nb.njit(cache=True, nogil=True)
def learn(known: np.ndarray, passes: np.ndarray, nodes: np.ndarray, parities: np.ndarray) -> None:
    """File Alice's answers, and what a known parent and a newly known child imply of the sibling."""
    for k in range(nodes.size):
        p, node = passes[k], nodes[k]
        known[p, node] = parities[k] + 1
        parent = node // 2
        if parent >= 1 and known[p, parent] > 0:
            known[p, node ^ 1] = ((known[p, parent] - 1) ^ parities[k]) + 1


@nb.njit(cache=True, nogil=True)
def _affine_walk(x: int, n: int, modulus: int, a: int, b: int) -> int:
    """The first of f(x), f(f(x)), ... below n, f(y) = (a y + b) mod modulus (``affine_permutation``)."""
    z = (a * x + b) % modulus
    while z >= n:
        z = (a * z + b) % modulus
    return z


@nb.njit(cache=True, nogil=True)
def _original(p: int, position: int, n: int, shuffles: np.ndarray, real_before: np.ndarray,
              affine: np.ndarray) -> int:
    """The sifted index at ``position`` of pass p's order: pass 0 keeps the order; the next
    ``shuffles.shape[0]`` passes take the position-th key entry of their padded-length shuffle
    (found by bisecting ``real_before``); later ones walk their affine map (``affine`` rows:
    modulus, a, b, a^-1, -a^-1 b)."""
    if p == 0:
        return position
    if p <= shuffles.shape[0]:
        counts = real_before[p - 1]
        low, high = 0, counts.size - 2  # the first i with counts[i + 1] > position
        while low < high:
            middle = (low + high) // 2
            if counts[middle + 1] > position:
                high = middle
            else:
                low = middle + 1
        return int(shuffles[p - 1, low])
    return _affine_walk(position, n, affine[p, 0], affine[p, 1], affine[p, 2])


@nb.njit(cache=True, nogil=True)
def _position(p: int, original: int, n: int, shuffle_inverses: np.ndarray, real_before: np.ndarray,
              affine: np.ndarray) -> int:
    """Where sifted index ``original`` sits in pass p's order (the inverse of ``_original``)."""
    if p == 0:
        return original
    if p <= shuffle_inverses.shape[0]:
        return int(real_before[p - 1, shuffle_inverses[p - 1, original]])
    return _affine_walk(original, n, affine[p, 0], affine[p, 3], affine[p, 4])


@nb.njit(cache=True, nogil=True)
def advance(started: int, padded_bits: int, sizes: np.ndarray, shuffles: np.ndarray, shuffle_inverses: np.ndarray,
            real_before: np.ndarray, affine: np.ndarray,
            prefix0: np.ndarray, flips: np.ndarray, known: np.ndarray, flipped: np.ndarray,
            active: np.ndarray, searches: np.ndarray, count: np.ndarray,
            ask_pass: np.ndarray, ask_node: np.ndarray, tail_searches: int, tail_depth: int) -> tuple[int, int]:
    """Advance every search as far as Alice's known parities allow; flip the bits found, start the
    searches their flips make necessary in passes already started, and sweep again until a sweep
    flips nothing. Returns (status, number of questions written to ``ask_*``).

    ``searches`` rows are (pass, node, level) of the implicit tree over the padded key; ``count[0]``
    how many are live; ``active[p, b]`` whether top block b of pass p has a live search. While at
    most ``tail_searches`` are live, a search that must ask asks for every left child in the
    ``tail_depth`` levels below it at once (2^d - 1 parities instead of d, one round instead of
    d): the long tail of a pass is a few searches at a time, where rounds, not parities, cost.
    ``ask_*`` must hold one question per top block plus ``tail_searches`` * 2^tail_depth.
    """
    n = flipped.size
    passes = sizes.size
    while True:
        flipped_any = False
        asked = 0
        i = 0
        while i < count[0]:
            p, node, level = searches[i, 0], searches[i, 1], searches[i, 2]
            size = padded_bits >> level
            start = (node - (1 << level)) * size
            block = start // sizes[p]
            keep = False
            bob = -1  # Bob's parity of the node, once known in this walk
            while True:
                size = padded_bits >> level
                start = (node - (1 << level)) * size
                alice = _alice_known(known, p, node, start, n)
                if alice < 0:
                    ask_pass[asked], ask_node[asked] = p, node
                    asked += 1
                    keep = True
                    break
                if bob < 0:
                    bob = _bob_parity(prefix0, flips, p, start, start + size)
                if alice == bob:
                    break  # an even number of errors left here (maybe none): nothing to find
                if size == 1:
                    original = _original(p, start, n, shuffles, real_before, affine)
                    if flipped[original]:
                        return INCONSISTENT, 0  # true parities never flip a bit back
                    flipped[original] = True
                    flipped_any = True
                    active[p, block] = False
                    for q in range(passes):
                        position = _position(q, original, n, shuffle_inverses, real_before, affine)
                        _fenwick_flip(flips, q, position)
                        if q >= started:
                            continue
                        b = position // sizes[q]
                        top = padded_bits // sizes[q] + b
                        if active[q, b] or known[q, top] == 0:
                            continue
                        if known[q, top] - 1 != _bob_parity(prefix0, flips, q, b * sizes[q], (b + 1) * sizes[q]):
                            row = count[0]
                            searches[row, 0], searches[row, 1] = q, top
                            searches[row, 2] = np.int64(np.log2(padded_bits // sizes[q]) + 0.5)
                            count[0] += 1
                            active[q, b] = True
                    break
                left = 2 * node
                half = size // 2
                alice_left = _alice_known(known, p, left, start, n)
                if alice_left < 0:
                    depth = tail_depth if count[0] <= tail_searches else 1
                    for j in range(depth):
                        child_level = level + j + 1
                        child_size = padded_bits >> child_level
                        if child_size < 1:
                            break
                        for t in range(1 << j):
                            child = 2 * ((node << j) + t)  # left child of the t-th node j levels down
                            child_start = (child - (1 << child_level)) * child_size
                            if _alice_known(known, p, child, child_start, n) < 0:
                                ask_pass[asked], ask_node[asked] = p, child
                                asked += 1
                    keep = True
                    break
                level += 1
                bob_left = _bob_parity(prefix0, flips, p, start, start + half)
                if alice_left != bob_left:
                    node, bob = left, bob_left
                else:
                    node, bob = left + 1, bob ^ bob_left
                    known[p, node] = (alice ^ alice_left) + 1
            if keep:
                searches[i, 1], searches[i, 2] = node, level
                i += 1
            else:
                active[p, block] = False
                last = count[0] - 1
                searches[i, 0], searches[i, 1], searches[i, 2] = searches[last, 0], searches[last, 1], searches[last, 2]
                count[0] = last
        if not flipped_any:
            return OK, asked
