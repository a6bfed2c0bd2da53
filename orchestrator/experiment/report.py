"""Experiment results: CSV and JSON files, a summary per strategy, PNG plots and a Markdown report.

Layer: orchestrator, output only. Plots use matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

import csv
import io
import pathlib
from collections import defaultdict

import numpy as np

from qkdnet.node.settings import ClockMode
from qkdnet.orchestrator.experiment.config import ExperimentConfig
from qkdnet.orchestrator.experiment.runner import RunResult, as_rows
from qkdnet.orchestrator.experiment.significance import compare, mean_interval
from qkdnet.orchestrator.files import write_atomically, write_json
from qkdnet.orchestrator.stats import percentile

HEADLINE = ("blocking_probability", "delivered_bits_per_s", "latency_ms_p50", "mean_hops")
KEEPS_UP = 0.95  # real time: a link clock ratio below this is a host that could not keep up


def summarize(config: ExperimentConfig, results: list[RunResult]) -> dict:
    """Per strategy: the figures over all its runs, the mean and 95 % interval of each headline
    figure over runs (seeds x repetitions), and where the wall time went; then every pair of
    strategies compared run by run; then warnings."""
    by_strategy: dict[str, list[RunResult]] = defaultdict(list)
    for run in results:
        by_strategy[run.strategy].append(run)
    strategies = {}
    per_run: dict[str, dict[tuple[int, int], dict]] = {}
    for label, runs in by_strategy.items():
        strategies[label] = _figures(config, runs)
        per_run[label] = {(run.seed, run.repetition): _figures(config, [run]) for run in runs}
        strategies[label]["intervals"] = {f: mean_interval([r[f] for r in per_run[label].values()])
                                          for f in HEADLINE}
    warnings = []
    ratios = [s["min_link_clock_ratio"] for s in strategies.values() if s["min_link_clock_ratio"] is not None]
    if config.clock is ClockMode.REALTIME and ratios and min(ratios) < KEEPS_UP:
        warnings.append(f"real time: this host could not keep up with the demand's clock; the slowest link made key "
                        f"for {100 * min(ratios):.0f} % of the emulated time, so key was scarcer than the physics "
                        "alone would make it and the results depend on the host (clock: virtual does not)")
    return dict(experiment=config.name, topology=config.topology.name, duration_s=config.duration_s,
                clock=config.clock.value, clock_step_s=config.clock_step_s if config.clock is ClockMode.VIRTUAL else None,
                time_scale=config.time_scale, seeds=list(config.seeds), repetitions=config.repetitions,
                strategies=strategies, comparisons=compare(per_run, HEADLINE), warnings=warnings)


def _figures(config: ExperimentConfig, runs: list[RunResult]) -> dict:
    requests = [r for run in runs for r in run.requests]
    delivered = [r for r in requests if r["outcome"] == "delivered"]
    latencies = np.array([r["latency_ms"] for r in delivered]) if delivered else np.array([])
    emulated = config.duration_s * len(runs)
    demand_wall = sum(run.wall_s.get("demand", 0) + run.wall_s.get("drain", 0) for run in runs)
    links = [l for run in runs for l in run.links]
    emulated_total = sum(run.clock.get("end_s", config.warmup_s + config.duration_s) for run in runs)
    wall_total = sum(sum(run.wall_s.get(k, 0) for k in WALL_PHASES) for run in runs)
    figures = dict(
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
        wall_s={k: round(sum(run.wall_s.get(k, 0) for run in runs), 2) for k in WALL_PHASES},
        emulated_s_per_wall_s=round(emulated_total / wall_total, 4) if wall_total else None,
        exposure={e["node"]: e["keys_readable"] for run in runs for e in run.exposure})
    if all(run.clock for run in runs):  # virtual time: the demand's wall time, split
        figures["demand_wall_s"] = {k: round(sum(run.clock[f"{k}_wall_s"] for run in runs), 2)
                                    for k in ("sync", "serve")}
        figures["clock_steps"] = sum(run.clock["advances"] for run in runs)
        shares = [run.clock["link_wait_share_min"] for run in runs if run.clock["link_wait_share_min"] is not None]
        means = [run.clock["link_wait_share_mean"] for run in runs if run.clock["link_wait_share_mean"] is not None]
        figures["link_wait_share_min"] = min(shares, default=None)
        figures["link_wait_share_mean"] = round(float(np.mean(means)), 4) if means else None
    return figures


WALL_PHASES = ("boot", "warmup", "demand", "drain", "collect", "stop")
# Summary figures measured on the wall clock: the only ones that may differ between two runs of
# one virtual-time experiment with the same seeds.
WALL_CLOCK_FIGURES = frozenset({"wall_s", "relays_per_wall_s", "emulated_s_per_wall_s", "demand_wall_s",
                                "link_wait_share_min", "link_wait_share_mean"})


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
    ax.set_xlabel("latency (ms, modelled)" if summary.get("clock") == "virtual" else "latency (ms, wall)")
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


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f} %"


def _intervals_and_comparisons(summary: dict) -> list[str]:
    """Means with 95 % intervals over runs, and the paired differences found significant."""
    s = summary["strategies"]
    lines = ["", "## Over runs: mean and 95 % confidence interval (Student's t, runs = seeds x repetitions)", "",
             "| strategy | runs | " + " | ".join(HEADLINE) + " |", "|---|---|" + "---|" * len(HEADLINE)]

    def cell(interval: dict) -> str:
        if interval["mean"] is None:
            return "-"
        if interval["low"] is None:
            return f"{interval['mean']:g}"
        return f"{interval['mean']:g} [{interval['low']:g}, {interval['high']:g}]"

    for label, r in s.items():
        lines.append(f"| {label} | {r['runs']} | " + " | ".join(cell(r["intervals"][f]) for f in HEADLINE) + " |")
    rows = summary.get("comparisons", [])
    lines += ["", "## Strategies compared run by run (paired t-test, Holm-corrected per figure at 5 %)", ""]
    if not any(r["p_value"] is not None for r in rows):
        return lines + ["Fewer than two runs per strategy: no test (give more seeds or repetitions).", ""]
    lines += ["| figure | a | b | mean of a - b | 95 % interval | p | significant |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        interval = "-" if r["low"] is None else f"[{r['low']:g}, {r['high']:g}]"
        lines.append(f"| {r['figure']} | {r['a']} | {r['b']} | {r['mean_difference']} | {interval} | "
                     f"{r['p_value']} | {'yes' if r['significant'] else 'no'} |")
    return lines + [""]


def _markdown(config: ExperimentConfig, summary: dict, results: list[RunResult], plots: list[str]) -> str:
    s = summary["strategies"]
    virtual = config.clock is ClockMode.VIRTUAL
    timing = (f"virtual time (clock steps of {config.clock_step_s:g} s; latency modelled: fibre at 5 us/km each "
              f"way plus {1000 * config.hop_processing_s:g} ms per hop)" if virtual
              else f"real time at time scale {config.time_scale:g} (latency measured on the wall clock)")
    lines = [f"# Experiment {config.name}", "",
             f"Topology `{config.topology.name}`, {config.duration_s:g} s of emulated demand after {config.warmup_s:g} s "
             f"of warm-up, in {timing}; seeds {list(config.seeds)}, "
             f"{config.repetitions} repetition(s). Every run is a fresh network of real node processes.", ""]
    lines += [f"**Warning:** {w}" for w in summary.get("warnings", [])]
    lines += ["",
             "| strategy | requests | delivered | blocking | key rate (b/s) | p50 ms | p99 ms | mean hops | retried | links balanced |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in s.items():
        lines.append(f"| {label} | {r['requests']} | {r['delivered']} | {r['blocking_probability']} | "
                     f"{r['delivered_bits_per_s']} | {r['latency_ms_p50']} | {r['latency_ms_p99']} | {r['mean_hops']} | "
                     f"{r['retried']} | {r['links_balanced']} |")
    nodes = sorted({n for r in s.values() for n in r["exposure"]})
    lines += _intervals_and_comparisons(summary)
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
                     f"{w['stop']} | {r['relays_per_wall_s']} | "
                     f"{'- (virtual time)' if virtual else r['min_link_clock_ratio']} |")
    if virtual:
        lines += ["", "| strategy | emulated s per wall s | demand: advancing the clock (s) | demand: serving steps (s) "
                  "| clock steps | busiest link's wait for the clock |", "|---|---|---|---|---|---|"]
        for label, r in s.items():
            lines.append(f"| {label} | {r['emulated_s_per_wall_s']} | {r['demand_wall_s']['sync']} | "
                         f"{r['demand_wall_s']['serve']} | {r['clock_steps']} | {_percent(r['link_wait_share_min'])} |")
        lines += ["", "In virtual time the links produce key as fast as the host allows and the clock waits for the "
                  "slowest: a slower host makes the run longer, not its results different. Advancing the clock is "
                  "mostly the links computing; the busiest link's wait is what synchronisation cost it.", ""]
    else:
        lines += ["", "A link clock ratio below 1 means the links' BB84 engines could not keep up with the "
                  "time scale on this machine: they produced key for fewer emulated seconds than elapsed.", ""]
    events = results[0].events if results else []  # the same schedule in every run
    if events:
        lines += ["Events: " + ", ".join(f"{e['event']} {e['link']} at {e['t_s']:.0f} s" for e in events[:10]), ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
