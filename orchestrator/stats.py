"""Summary statistics shared by run summaries, experiment reports and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The value at ``fraction`` (0..1) of the sorted values, by nearest rank; None if empty."""
    if not len(values):
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))])
