"""Confidence intervals over runs and paired comparisons of strategies.

Layer: orchestrator, output only. Every strategy of an experiment faces the same demand and the
same link randomness for each (seed, repetition), so two strategies are compared run by run on
their differences (a paired t-test), which removes what the runs share. With several strategies,
each figure's comparisons are corrected together (Holm), so "significant" stays at 5 % overall.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """The mean and its Student-t confidence interval (no interval from a single run)."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if data.size == 0:
        return dict(mean=None, low=None, high=None, runs=0)
    mean = float(data.mean())
    if data.size < 2:
        return dict(mean=_round(mean), low=None, high=None, runs=int(data.size))
    half = float(stats.t.ppf(0.5 + confidence / 2, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return dict(mean=_round(mean), low=_round(mean - half), high=_round(mean + half), runs=int(data.size))


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """Mean of a - b over paired runs, its interval, and the two-sided paired t-test's p-value.
    Differences identical on every run give p = 0 (if non-zero) or 1; fewer than two pairs, None."""
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    diffs = diffs[np.isfinite(diffs)]
    interval = mean_interval(diffs.tolist(), confidence)
    if diffs.size < 2:
        p_value = None
    elif float(diffs.std(ddof=1)) <= 1e-12 * max(1.0, float(np.abs(diffs).max())):  # the same on every run
        p_value = 0.0 if float(diffs.mean()) != 0.0 else 1.0
    else:
        p_value = float(stats.ttest_rel(np.asarray(a, float)[:diffs.size], np.asarray(b, float)[:diffs.size]).pvalue)
    return dict(mean_difference=interval["mean"], low=interval["low"], high=interval["high"], pairs=int(diffs.size),
                p_value=None if p_value is None else round(p_value, 6))


def holm(p_values: Sequence[float | None], alpha: float = ALPHA) -> list[bool]:
    """Which hypotheses Holm's step-down procedure rejects at family-wise level ``alpha``."""
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    rejected = [False] * len(p_values)
    for rank, (p, i) in enumerate(known):
        if p > alpha / (len(known) - rank):
            break
        rejected[i] = True
    return rejected


def compare(per_run: dict[str, dict[tuple[int, int], dict]], figures: Sequence[str]) -> list[dict]:
    """Every pair of strategies on every figure, paired on (seed, repetition).

    ``per_run``: strategy -> (seed, repetition) -> figures of that run."""
    rows = []
    for figure in figures:
        family = []
        for a, b in itertools.combinations(per_run, 2):
            runs = sorted(set(per_run[a]) & set(per_run[b]))
            pairs = [(float(x), float(y)) for x, y in ((per_run[a][r].get(figure), per_run[b][r].get(figure))
                                                        for r in runs) if x is not None and y is not None]
            family.append(dict(figure=figure, a=a, b=b, **paired_difference([x for x, _ in pairs],
                                                                             [y for _, y in pairs])))
        for row, significant in zip(family, holm([r["p_value"] for r in family]), strict=True):
            row["significant"] = significant
        rows += family
    return rows


def _round(value: float) -> float:
    return round(value, 6)


__all__ = ["ALPHA", "CONFIDENCE", "compare", "holm", "mean_interval", "paired_difference"]
