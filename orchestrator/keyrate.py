"""``qkdnet keyrate``: run the link engine over distances and compare with the model.

Layer: tool over the sans-I/O engine (no network). For each distance it runs whole blocks on
the in-memory channel and reports the analytic asymptotic rate, the measured finite-key rate,
per-intensity gains and test-basis QBER, and the PLOB bound, all per pulse.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from qkdnet.node.qkd import analytic
from qkdnet.node.qkd.link import InMemoryLink
from qkdnet.node.qkd.params import LinkParams, ProcessingParams
from qkdnet.orchestrator import files


@dataclass(frozen=True)
class DistanceReport:
    distance_km: float
    analytic_rate_per_pulse: float
    measured_rate_per_pulse: float
    qber: float | None
    plob_per_pulse: float
    gains: list[float]
    model_gains: list[float]
    qber_per_intensity: list[float]
    model_qber_per_intensity: list[float]
    blocks: int
    accepted_blocks: int
    pulses: int
    abort_reasons: list[str]


def measure(params: LinkParams, processing: ProcessingParams, distances_km: list[float], blocks: int,
            seed: int, progress: Callable[[str], None] | None = None) -> list[DistanceReport]:
    reports = []
    for distance, stream in zip(distances_km, np.random.SeedSequence(seed).spawn(len(distances_km)), strict=True):
        link_params = params.with_changes(length_km=distance)
        link = InMemoryLink(link_params, processing, seed=stream)
        secret = pulses = accepted = 0
        gains = [0.0, 0.0, 0.0]
        qbers = [0.0, 0.0, 0.0]
        qber_z: list[float] = []
        reasons = []
        for b in range(blocks):
            if progress:
                progress(f"{distance:g} km: block {b + 1}/{blocks}")
            pair = link.run_block()
            pulses += pair.n_pulses
            result = pair.alice
            if result.accepted:
                accepted += 1
                secret += result.amplified_bits
            elif result.abort_reason:
                reasons.append(result.abort_reason)
            if result.qber_z is not None:
                qber_z.append(result.qber_z)
            for k in range(3):
                if result.gain_per_intensity:
                    gains[k] += result.gain_per_intensity[k] / blocks
                    qbers[k] += result.qber_x_per_intensity[k] / blocks
        reports.append(DistanceReport(
            distance_km=distance,
            analytic_rate_per_pulse=analytic.asymptotic_rate_per_pulse(link_params),
            measured_rate_per_pulse=secret / pulses if pulses else 0.0,
            qber=sum(qber_z) / len(qber_z) if qber_z else (qbers[0] if any(gains) else None),
            plob_per_pulse=analytic.plob_bound_per_pulse(link_params),
            gains=gains, model_gains=[analytic.gain(link_params, mu) for mu in link_params.intensities],
            qber_per_intensity=qbers,
            model_qber_per_intensity=[analytic.qber(link_params, mu) for mu in link_params.intensities],
            blocks=blocks, accepted_blocks=accepted, pulses=pulses, abort_reasons=sorted(set(reasons))))
    return reports


def format_table(reports: list[DistanceReport]) -> str:
    lines = [f"{'km':>6} {'analytic/pulse':>14} {'measured/pulse':>14} {'PLOB/pulse':>11} {'QBER':>7}  "
             f"{'gain mu/nu/0':>30}  {'QBER_X mu/nu/0':>22}  blocks"]
    for r in reports:
        gains = "/".join(f"{g:.2e}" for g in r.gains)
        qbers = "/".join(f"{q:.3f}" for q in r.qber_per_intensity)
        qber = f"{r.qber:.4f}" if r.qber is not None else "-"
        lines.append(f"{r.distance_km:6g} {r.analytic_rate_per_pulse:14.3e} {r.measured_rate_per_pulse:14.3e} "
                     f"{r.plob_per_pulse:11.3e} {qber:>7}  {gains:>30}  {qbers:>22}  "
                     f"{r.accepted_blocks}/{r.blocks}")
        for reason in r.abort_reasons:
            lines.append(f"{'':6} aborted: {reason}")
    return "\n".join(lines)


def write_json(reports: list[DistanceReport], path: pathlib.Path) -> None:
    files.write_json(path, [asdict(r) for r in reports])


def write_plot(reports: list[DistanceReport], path: pathlib.Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r.distance_km for r in reports]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.semilogy(x, [r.plob_per_pulse for r in reports], "k--", label="PLOB bound")
    ax.semilogy(x, [max(r.analytic_rate_per_pulse, 1e-12) for r in reports], "b-", label="analytic (asymptotic)")
    measured = [(d, r.measured_rate_per_pulse) for d, r in zip(x, reports, strict=False) if r.measured_rate_per_pulse > 0]
    if measured:
        ax.semilogy(*zip(*measured, strict=False), "ro", label="measured (finite block)")
    ax.set_xlabel("fibre length (km)")
    ax.set_ylabel("secret key bits per pulse")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
