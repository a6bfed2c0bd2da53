"""Experiment results: CSV and JSON files, a summary per strategy, PNG plots and a Markdown report.

Layer: orchestrator, output only. Plots use matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

import csv
import io
import pathlib
from collections import defaultdict

import numpy as np

from qkdnet.orchestrator.experiment.config import ExperimentConfig
from qkdnet.orchestrator.experiment.runner import RunResult, as_rows
from qkdnet.orchestrator.files import write_atomically, write_json
from qkdnet.orchestrator.stats import percentile


def summarize(config: ExperimentConfig, results: list[RunResult]) -> dict:
    by_strategy: dict[str, list[RunResult]] = defaultdict(list)
    for run in results:
        by_strategy[run.strategy].append(run)
    strategies = {}
    for label, runs in by_strategy.items():
        requests = [r for run in runs for r in run.requests]
        delivered = [r for r in requests if r["outcome"] == "delivered"]
        latencies = np.array([r["latency_ms"] for r in delivered]) if delivered else np.array([])
        emulated = config.duration_s * len(runs)
        demand_wall = sum(run.wall_s.get("demand", 0) + run.wall_s.get("drain", 0) for run in runs)
        links = [l for run in runs for l in run.links]
        strategies[label] = dict(
            runs=len(runs), requests=len(requests), delivered=len(delivered),
            blocked=sum(r["outcome"] == "blocked" for r in requests),
            failed=sum(r["outcome"] == "failed" for r in requests),
            retried=sum(r["attempts"] > 1 for r in requests),
            blocking_probability=round(1 - len(delivered) / len(requests), 4) if requests else None,
            delivered_bits_per_s=round(sum(r["key_bits"] for r in delivered) / emulated, 2),
            latency_ms_p50=_ms(latencies, 0.50), latency_ms_p95=_ms(latencies, 0.95), latency_ms_p99=_ms(latencies, 0.99),
            mean_hops=round(float(np.mean([r["hops"] for r in delivered])), 3) if delivered else None,
            link_bits_consumed=sum(r["link_bits_consumed"] for r in requests),
            relays_per_wall_s=round(len(requests) / demand_wall, 2) if demand_wall else None,
            links_balanced=all(l["balanced"] for l in links),
            min_link_clock_ratio=min((l["link_clock_ratio"] for l in links if l["role"] == "transmitter"), default=None),
            wall_s={k: round(sum(run.wall_s.get(k, 0) for run in runs), 2)
                    for k in ("boot", "warmup", "demand", "drain", "collect", "stop")},
            exposure={e["node"]: e["keys_readable"] for run in runs for e in run.exposure})
    return dict(experiment=config.name, topology=config.topology.name, duration_s=config.duration_s,
                time_scale=config.time_scale, seeds=list(config.seeds), repetitions=config.repetitions,
                strategies=strategies)


def _ms(values: np.ndarray, fraction: float) -> float | None:
    value = percentile(values.tolist(), fraction)
    return None if value is None else round(value, 3)


def write_results(config: ExperimentConfig, results: list[RunResult], out: pathlib.Path) -> dict:
    """Write everything to ``out`` (created); returns the summary. Files are written whole, then renamed."""
    out.mkdir(parents=True, exist_ok=True)
    for part in ("requests", "pools", "links", "exposure", "events"):
        _write_csv(out / f"{part}.csv", as_rows(results, part))
    summary = summarize(config, results)
    write_json(out / "summary.json", summary)
    plots = _plots(results, summary, out)
    write_atomically(out / "report.md", _markdown(config, summary, results, plots))
    return summary


def _write_csv(path: pathlib.Path, rows: list[dict]) -> None:
    text = io.StringIO(newline="")
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_atomically(path, text.getvalue())


def _plots(results: list[RunResult], summary: dict, out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(summary["strategies"])
    made = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        made.append(name)

    for key, title, name in (("delivered_bits_per_s", "Delivered key rate (bits per emulated second)", "delivered_rate.png"),
                             ("blocking_probability", "Request blocking probability", "blocking.png")):
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar(labels, [summary["strategies"][l][key] or 0 for l in labels], color="tab:blue")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=20)
        save(fig, name)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label in labels:
        lat = np.sort([r["latency_ms"] for run in results if run.strategy == label for r in run.requests
                       if r["outcome"] == "delivered"])
        if lat.size:
            ax.plot(lat, np.arange(1, lat.size + 1) / lat.size, label=label)
    ax.set_xlabel("latency (ms, wall)")
    ax.set_ylabel("fraction of delivered requests")
    ax.set_title("Latency distribution")
    ax.legend(fontsize=8)
    save(fig, "latency_cdf.png")

    firsts = [next(run for run in results if run.strategy == label) for label in labels]
    fig, axes = plt.subplots(len(firsts), 1, figsize=(7, 2.4 * len(firsts)), sharex=True, squeeze=False)
    for ax, run in zip(axes[:, 0], firsts, strict=False):
        series = defaultdict(list)
        for row in run.pools:
            series[row["link"]].append((row["t_s"], row["pool_bits"]))
        for link, points in sorted(series.items()):
            ax.plot(*zip(*points, strict=False), label=link, linewidth=1)
        ax.set_title(f"Link pool levels: {run.strategy} (seed {run.seed})", fontsize=9)
        ax.set_ylabel("bits")
    axes[-1, 0].set_xlabel("emulated time (s)")
    axes[0, 0].legend(fontsize=7, ncol=4)
    save(fig, "pool_levels.png")

    for part, key, title, name in (("links", "consumed_bits", "Link key consumed per link end", "consumption.png"),
                                   ("exposure", "keys_readable", "End-to-end keys each node could read", "exposure.png")):
        fig, ax = plt.subplots(figsize=(8, 3.5))
        rows = as_rows(firsts, part)
        keys = sorted({(r["node"], r.get("peer", "")) for r in rows})
        width = 0.8 / max(len(labels), 1)
        for i, label in enumerate(labels):
            values = {(r["node"], r.get("peer", "")): r[key] for r in rows if r["strategy"] == label}
            ax.bar(np.arange(len(keys)) + i * width, [values.get(k, 0) for k in keys], width, label=label)
        ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, ["->".join(filter(None, k)) for k in keys],
                      rotation=60, fontsize=7)
        ax.set_title(title)
        ax.legend(fontsize=7)
        save(fig, name)
    return made


def _markdown(config: ExperimentConfig, summary: dict, results: list[RunResult], plots: list[str]) -> str:
    s = summary["strategies"]
    lines = [f"# Experiment {config.name}", "",
             f"Topology `{config.topology.name}`, {config.duration_s:g} s of emulated demand after {config.warmup_s:g} s "
             f"of warm-up, time scale {config.time_scale:g}, seeds {list(config.seeds)}, "
             f"{config.repetitions} repetition(s). Every run is a fresh network of real node processes.", "",
             "| strategy | requests | delivered | blocking | key rate (b/s) | p50 ms | p99 ms | mean hops | retried | links balanced |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in s.items():
        lines.append(f"| {label} | {r['requests']} | {r['delivered']} | {r['blocking_probability']} | "
                     f"{r['delivered_bits_per_s']} | {r['latency_ms_p50']} | {r['latency_ms_p99']} | {r['mean_hops']} | "
                     f"{r['retried']} | {r['links_balanced']} |")
    nodes = sorted({n for r in s.values() for n in r["exposure"]})
    lines += ["", "## Exposure: end-to-end keys each trusted node could read", "",
              "| strategy | " + " | ".join(nodes) + " |", "|---|" + "---|" * len(nodes)]
    for label, r in s.items():
        lines.append(f"| {label} | " + " | ".join(str(r["exposure"].get(n, 0)) for n in nodes) + " |")
    lines += ["", "## Where the wall time went (seconds, all runs)", "",
              "| strategy | boot | warm-up | demand | drain | collect | stop | relays/s | link clock ratio (min) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for label, r in s.items():
        w = r["wall_s"]
        lines.append(f"| {label} | {w['boot']} | {w['warmup']} | {w['demand']} | {w['drain']} | {w['collect']} | "
                     f"{w['stop']} | {r['relays_per_wall_s']} | {r['min_link_clock_ratio']} |")
    lines += ["", "A link clock ratio below 1 means the links' BB84 engines could not keep up with the "
              "time scale on this machine: they produced key for fewer emulated seconds than elapsed.", ""]
    events = results[0].events if results else []  # the same schedule in every run
    if events:
        lines += ["Events: " + ", ".join(f"{e['event']} {e['link']} at {e['t_s']:.0f} s" for e in events[:10]), ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
