"""Text for people: the tables and lines the CLI and the shell print.

Layer: control plane, output only (pure functions of typed summaries and results).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from qkdnet.node.relay.result import RelayResult
from qkdnet.node.status import KeyEntry
from qkdnet.orchestrator.summary import LinkSummary, NetworkStatus, RunSummary


def format_links(links: Iterable[LinkSummary]) -> list[str]:
    lines = [f"{'link':<22}{'km':>6}{'QBER':>8}{'sifted b/s':>13}{'secret b/s':>13}{'pool bits':>11}"
             f"{'consumed':>10}{'blocks ok/abort':>17}  state"]
    for l in links:
        lines.append(f"{l.link:<22}{l.length_km:>6g}{l.qber:>8.4f}{l.sifted_bits_per_s:>13.3g}"
                     f"{l.secret_bits_per_s:>13.3g}{l.pool_bits:>11}{l.consumed_bits:>10}"
                     f"{l.blocks_accepted:>9}/{l.blocks_aborted:<7}  {l.state}")
    return lines


KEEPS_UP = 0.95  # a link covering less of its emulated clock than this is reported as lagging


def clock_warnings(links: Iterable[LinkSummary]) -> list[str]:
    """One line when the host could not keep up with the emulated clock on some link."""
    lagging = sorted((l for l in links if 0 < l.clock_ratio < KEEPS_UP), key=lambda l: l.clock_ratio)
    if not lagging:
        return []
    worst = lagging[0]
    return [f"warning: this host cannot keep up with the emulated clock on {len(lagging)} link(s): "
            f"{worst.link} made key for {100 * worst.clock_ratio:.0f} % of the emulated time it ran, so key is "
            "scarcer than the physics alone would make it (a lower time_scale lets it keep up)"]


def format_status(status: NetworkStatus) -> str:
    """The running network (``qkdnet status``): nodes with liveness, then links."""
    width = max(4, *(len(n) for n in status.nodes)) + 2
    lines = [f"topology {status.topology}: {len(status.nodes)} nodes, supervisor pid {status.pid}", "",
             f"{'node':<{width}}{'gRPC':<22}{'KME':<28}{'metrics':<38}state"]
    for name, node in status.nodes.items():
        lines.append(f"{name:<{width}}{node.address:<22}{node.kme:<28}{node.metrics or '-':<38}"
                     f"{'up' if node.alive else 'FAILED: ' + node.failure}")
    lines += [""] + format_links(status.links) + clock_warnings(status.links)
    if status.faults:
        lines += ["", f"faults injected: {len(status.faults)} (qkdnet fault list); latest:",
                  format_faults(status.faults[-3:])]
    return "\n".join(lines)


def format_faults(faults: list[dict]) -> str:
    """Faults injected into the running network, oldest first, with their local time."""
    if not faults:
        return "no faults injected"
    lines = []
    for fault in faults:
        when = time.strftime("%H:%M:%S", time.localtime(fault["at"]))
        detail = f"  {fault['detail']}" if fault.get("detail") else ""
        lines.append(f"{when}  {fault['fault']:<8}{fault['link']}{detail}")
    return "\n".join(lines)


def _maybe(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def format_summary(summary: RunSummary) -> str:
    lines = [f"topology {summary.topology}: {summary.nodes} nodes, {summary.wall_seconds:.1f} s", ""]
    lines += format_links(summary.links) + clock_warnings(summary.links)
    lines += ["", f"{'pair':<22}{'keys':>10}{'hops':>6}{'keys/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'link bits':>11}"
                  "  identical"]
    for p in summary.pairs:
        lines.append(f"{p.source + '->' + p.destination:<22}{str(p.delivered) + '/' + str(p.requested):>10}"
                     f"{p.hops:>6}{p.keys_per_s:>9.1f}{_maybe(p.latency_p50_ms):>9}{_maybe(p.latency_p99_ms):>9}"
                     f"{p.link_key_consumed_bits:>11}  {'yes' if p.identical_at_both_ends else 'NO'}")
        lines += [f"    error: {error}" for error in p.errors]
    lines += [f"node {node} failed: {why}" for node, why in summary.node_failures.items()]
    return "\n".join(lines)


def format_relay(result: RelayResult, key_bits: int, most: int = 20) -> str:
    """A relay's outcome: the keys' IDs (never keys), the route and what it cost."""
    if not result.ok:
        return f"relay failed: {result.error}"
    via = " + ".join("-".join(p) for p in result.paths)
    lines = [f"{len(result.key_ids)} key(s) of {key_bits} bits {result.source}->{result.destination} via {via} in "
             f"{1000 * result.latency_s:.1f} ms; link key consumed {result.link_bits_consumed} bits"]
    lines += [f"  {key_id}" for key_id in result.key_ids[:most]]
    if len(result.key_ids) > most:
        lines.append(f"  ... and {len(result.key_ids) - most} more")
    return "\n".join(lines)


def _digest(digest: bytes) -> str:
    return f"hmac {digest.hex()[:16]}..." if digest else "(no longer held, or too short to compare)"


def format_keys(keys: list[KeyEntry]) -> str:
    lines = [f"{k.key_id}  {k.peer:<10} {k.bits:>5} bits  {_digest(k.digest)}" for k in keys]
    return "\n".join(lines + [f"{len(keys)} key(s)"])
