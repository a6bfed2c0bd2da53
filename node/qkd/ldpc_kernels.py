"""Compiled LDPC kernels: code construction from a public seed, syndromes, min-sum decoding.

Layer: sans-I/O kernel, compiled by numba (``cache=True``). Pure functions of their arrays.

Codes are extended irregular repeat-accumulate (eIRA) codes: the last m of the n variable nodes
form a dual diagonal (variable k + i checks rows i and i + 1), which gives the degree-2 nodes a
cycle-free chain; each of the first k = n - m variables has ``column_weight`` ones in distinct
rows, with rows filled evenly. Both ends build the same matrix from the same public seed.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .splitmix import next_value as _next


@nb.njit(cache=True, nogil=True)
def build(n: int, m: int, weights: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Check-major (row_start, column) arrays of an eIRA parity-check matrix with m rows.

    ``weights[v]`` is the column weight of information variable v (v < n - m). Each of v's rows
    is drawn among the least-filled rows, refusing (for up to 32 draws) a row that already holds
    a variable v shares a row with: a greedy, depth-two form of progressive edge growth that
    leaves few 4-cycles (random placement left thousands, and high-weight columns then failed).
    """
    k = n - m
    state = np.empty(1, np.uint64)
    state[0] = np.uint64(seed)
    sockets = int(weights.sum())
    capacity = sockets // m + 4 + 2
    members = np.full((m, capacity), -1, np.int64)
    fill = np.zeros(m, np.int64)
    for i in range(m):  # the dual diagonal first, so that it counts in the 4-cycle test
        members[i, fill[i]] = k + i
        fill[i] += 1
        if i + 1 < m:
            members[i + 1, fill[i + 1]] = k + i
            fill[i + 1] += 1
    mark = np.full(n, -1, np.int64)  # mark[u] == v: u shares a row with v
    chosen = np.empty(64, np.int64)
    order = np.arange(k)
    for s in range(k - 1, 0, -1):  # place variables in random order, so weights interleave
        j = np.int64(_next(state) % np.uint64(s + 1))
        order[s], order[j] = order[j], order[s]
    for idx in range(k):
        v = order[idx]
        for a in range(weights[v]):
            best = -1
            for _attempt in range(32):
                r = int(np.int64(_next(state) % np.uint64(m)))
                r2 = int(np.int64(_next(state) % np.uint64(m)))
                if fill[r2] < fill[r]:
                    r = r2  # the less filled of two random rows keeps rows balanced
                if fill[r] >= capacity:
                    continue
                taken = False
                for b in range(a):
                    if chosen[b] == r:
                        taken = True
                        break
                if taken:
                    continue
                if best < 0:
                    best = r
                clash = False
                for t in range(fill[r]):
                    if mark[members[r, t]] == v:
                        clash = True
                        break
                if not clash:
                    best = r
                    break
            if best < 0:  # every draw full or taken: first row with room not yet chosen
                for row in range(m):
                    if fill[row] < capacity:
                        ok = True
                        for b in range(a):
                            if chosen[b] == row:
                                ok = False
                        if ok:
                            best = row
                            break
            chosen[a] = best
            for t in range(fill[best]):
                mark[members[best, t]] = v
            members[best, fill[best]] = v
            fill[best] += 1
    row_start = np.zeros(m + 1, np.int64)
    for i in range(m):
        row_start[i + 1] = row_start[i] + fill[i]
    column = np.empty(row_start[m], np.int64)
    for i in range(m):
        column[row_start[i]:row_start[i + 1]] = members[i, :fill[i]]
    return row_start, column


@nb.njit(cache=True, nogil=True)
def syndrome(row_start: np.ndarray, column: np.ndarray, bits: np.ndarray) -> np.ndarray:
    m = row_start.size - 1
    out = np.zeros(m, np.uint8)
    for r in range(m):
        parity = np.uint8(0)
        for e in range(row_start[r], row_start[r + 1]):
            parity ^= bits[column[e]]
        out[r] = parity
    return out


PHI_STEP = 1.0 / 64
PHI_MAX = 32.0


def phi_table() -> np.ndarray:
    """phi(x) = -ln tanh(x / 2) on a grid of step 1/64 over [0, 32] (phi(0) held at phi(1/1024)).

    phi is its own inverse, and sum-product's check update is sign * phi(sum of phi(|m|)).
    """
    x = np.maximum(np.arange(int(PHI_MAX / PHI_STEP) + 2) * PHI_STEP, 1.0 / 1024)
    return (-np.log(np.tanh(x / 2))).astype(np.float64)


@nb.njit(cache=True, nogil=True, inline="always")
def _phi(table: np.ndarray, x: float) -> float:
    if x >= PHI_MAX:
        return 0.0
    position = x / PHI_STEP
    i = int(position)
    fraction = position - i
    return table[i] + fraction * (table[i + 1] - table[i])


@nb.njit(cache=True, nogil=True)
def decode(row_start: np.ndarray, column: np.ndarray, target: np.ndarray, prior_llr: np.ndarray,
           max_iterations: int, stall_iterations: int, table: np.ndarray, message: np.ndarray,
           warm: bool) -> tuple[np.ndarray, int]:
    """The error pattern e with H e = target that layered sum-product decoding finds, and the
    iterations it took (-1: not found within ``max_iterations``, or no fewer unsatisfied checks
    than the best so far for ``stall_iterations`` iterations: a frame that will get a reveal
    anyway need not spend the rest).

    ``prior_llr[v]`` = log(P(e_v = 0) / P(e_v = 1)); a large value pins a variable. Check updates
    go through phi (``phi_table``, interpolated): normalised min-sum, tried first, failed on
    codes with high-weight columns that sum-product decodes (see the README).

    ``message`` (one per edge, float32) holds the check-to-variable messages on return; with
    ``warm`` they are where decoding resumes (a retry after a reveal: the new priors and target
    replace the old, the checks' beliefs carry over), else they start at zero.
    """
    m = row_start.size - 1
    n = prior_llr.size
    total = prior_llr.copy()
    if warm:
        for e in range(column.size):
            total[column[e]] += message[e]
    else:
        message[:] = 0.0
    error = np.zeros(n, np.uint8)
    widest = 0
    for r in range(m):
        widest = max(widest, row_start[r + 1] - row_start[r])
    own_phi = np.empty(widest)
    best, best_at = m + 1, 0
    for iteration in range(1, max_iterations + 1):
        for r in range(m):
            lo, hi = row_start[r], row_start[r + 1]
            negative = target[r] == 1
            phis = 0.0
            for e in range(lo, hi):
                q = total[column[e]] - message[e]
                message[e] = q  # hold the variable-to-check value until the update below
                if q < 0:
                    negative = not negative
                own_phi[e - lo] = _phi(table, abs(q))
                phis += own_phi[e - lo]
            for e in range(lo, hi):
                q = message[e]
                magnitude = _phi(table, max(phis - own_phi[e - lo], 0.0))
                flip = negative != (q < 0)
                new = -magnitude if flip else magnitude
                message[e] = new
                total[column[e]] = q + new
        for v in range(n):
            error[v] = 1 if total[v] < 0 else 0
        unsatisfied = 0
        for r in range(m):
            parity = np.uint8(0)
            for e in range(row_start[r], row_start[r + 1]):
                parity ^= error[column[e]]
            if parity != target[r]:
                unsatisfied += 1
        if unsatisfied == 0:
            return error, iteration
        if unsatisfied < best:
            best, best_at = unsatisfied, iteration
        elif iteration - best_at >= stall_iterations:
            break
    return error, -1
