"""The node's Prometheus metrics: what it reports about its links, its keys and its APIs.

Layer: node domain (prometheus_client, no I/O). Each component owns its own counters and
histograms (the relay engine its relays, the KME its requests, the database its commit times),
made unregistered; this collector gathers them with gauges and counters read from the link ends
and the store at scrape time, so nothing is copied between scrapes. Names follow Prometheus
conventions: one ``qkdnet_`` prefix, base units (bits, seconds, ratios 0-1) in the name,
``_total`` for counters, and labels with a bounded set of values only (node, peer, link, role,
state, reason, intensity, outcome, endpoint, code, event), never a key ID.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from qkdnet.node.abort_reasons import CATEGORIES
from qkdnet.node.keystore.lifecycle import KeyState

if TYPE_CHECKING:
    from qkdnet.node.trusted_node import TrustedNode

LINK_LABELS = ["node", "peer", "link", "role"]
LINK_STATES = ("starting", "running", "full", "down", "cut")
INTENSITIES = ("signal", "decoy", "vacuum")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Families:
    """Metric families keyed by name, filled one sample at a time."""

    def __init__(self) -> None:
        self.gauges: dict[str, GaugeMetricFamily] = {}
        self.counters: dict[str, CounterMetricFamily] = {}

    def gauge(self, name: str, doc: str, labels: list[str], values: list[str], value: float) -> None:
        family = self.gauges.setdefault(name, GaugeMetricFamily(name, doc, labels=labels))
        family.add_metric(values, value)

    def counter(self, name: str, doc: str, labels: list[str], values: list[str], value: float) -> None:
        family = self.counters.setdefault(name, CounterMetricFamily(name, doc, labels=labels))
        family.add_metric(values, value)

    def all(self) -> Iterator[Metric]:
        yield from self.gauges.values()
        yield from self.counters.values()


class NodeCollector(Collector):
    def __init__(self, node: TrustedNode, extra: Callable[[], Iterable[Metric]] = lambda: ()) -> None:
        """``extra``: families owned outside the node (its KME's request metrics, once it has one)."""
        self.node = node
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        out = _Families()
        self._links(out)
        self._keys(out)
        yield from out.all()
        yield from self.node.relay.relays.collect()
        yield from self.node.relay.relay_seconds.collect()
        yield from self.node.store.commit_seconds.collect()
        yield from self.extra()

    def _links(self, out: _Families) -> None:
        node = self.node.name
        time_scale = self.node.settings.time_scale if self.node.settings else 0.0
        for end in self.node.links:
            s, runtime = end.status(), end.runtime
            labels = [node, s.peer, s.link_id, s.role]
            out.counter("qkdnet_link_secret_key_bits", "Secret key bits this link end has put into its pool",
                        LINK_LABELS, labels, s.generated_bits)
            out.counter("qkdnet_link_sifted_bits", "Sifted key bits (before error correction)",
                        LINK_LABELS, labels, s.sifted_bits)
            out.gauge("qkdnet_link_qber_ratio", "QBER of the last block (key basis after Cascade, else test basis)",
                      LINK_LABELS, labels, s.qber)
            for intensity, qber in zip(INTENSITIES, runtime.last_qber_per_intensity, strict=False):
                out.gauge("qkdnet_link_qber_per_intensity_ratio", "Test-basis QBER of the last block per intensity",
                          [*LINK_LABELS, "intensity"], [*labels, intensity], qber)
            out.counter("qkdnet_link_blocks_accepted", "BB84 blocks accepted", LINK_LABELS, labels,
                        s.blocks_accepted)
            for reason in CATEGORIES:
                out.counter("qkdnet_link_blocks_aborted", "BB84 blocks aborted, by reason", [*LINK_LABELS, "reason"],
                            [*labels, reason], runtime.aborts_by_category.get(reason, 0))
            out.counter("qkdnet_link_auth_key_consumed_bits", "Authentication key spent on the classical channel",
                        LINK_LABELS, labels, s.auth_bits)
            out.gauge("qkdnet_link_pool_bits", "Link key held in the pool", LINK_LABELS, labels, s.pool_bits)
            out.gauge("qkdnet_link_pool_capacity_bits", "Pool capacity", LINK_LABELS, labels, end.pool.capacity_bits)
            out.gauge("qkdnet_link_pool_low_watermark_bits", "Level below which a paused link generates again",
                      LINK_LABELS, labels, end.pool.low_watermark_bits)
            out.counter("qkdnet_link_key_consumed_bits", "Link key used by relays", LINK_LABELS, labels,
                        s.consumed_bits)
            out.counter("qkdnet_link_key_discarded_bits", "Link key thrown away unused (failed relays, reconciliation)",
                        LINK_LABELS, labels, s.discarded_bits)
            out.counter("qkdnet_link_resyncs", "Resynchronisations after lost, late or repeated messages",
                        LINK_LABELS, labels, s.resyncs)
            out.gauge("qkdnet_link_up", "1 if the link is in service (not down or cut)", LINK_LABELS, labels,
                      0.0 if s.state in ("down", "cut") else 1.0)
            for state in LINK_STATES:
                out.gauge("qkdnet_link_state", "1 for the link end's current state", [*LINK_LABELS, "state"],
                          [*labels, state], 1.0 if s.state == state else 0.0)
            out.counter("qkdnet_link_emulated_seconds", "Emulated time this link has covered", LINK_LABELS, labels,
                        s.emulated_seconds)
            # With time_scale 0 a link runs as fast as it can: there is no clock to lag behind. The
            # transmitter paces the link; its clock runs only while it generates (not at a full pool).
            if time_scale > 0 and s.role == "transmitter":
                lag = max(0.0, runtime.generating_s * time_scale - s.emulated_seconds)
                out.gauge("qkdnet_link_emulated_clock_lag_seconds", "Emulated seconds the link is behind its clock "
                          "while generating", LINK_LABELS, labels, lag)
                out.gauge("qkdnet_link_emulated_clock_ratio", "Emulated time covered per second of the link's clock "
                          "while generating (1: the host keeps up)", LINK_LABELS, labels, s.clock_ratio)

    def _keys(self, out: _Families) -> None:
        node, keys, store = self.node.name, self.node.store.keys, self.node.store
        out.gauge("qkdnet_keys_held", "End-to-end keys held awaiting delivery", ["node"], [node],
                  keys.max_keys - keys.room)
        out.gauge("qkdnet_keys_capacity", "End-to-end keys the store may hold", ["node"], [node], keys.max_keys)
        counts = {state.value: 0 for state in KeyState} | store.audit_event_counts()  # all, from zero
        for event, count in sorted(counts.items()):
            out.counter("qkdnet_audit_events", "Audit log entries since the node started, by event (the keys' "
                        "lifecycle transitions)", ["node", "event"], [node, event], count)
        out.counter("qkdnet_relays_forwarded", "Relays this node forwarded as an intermediate", ["node"], [node],
                    self.node.relay.relays_forwarded)


def render(node: TrustedNode, extra: Callable[[], Iterable[Metric]] = lambda: ()) -> bytes:
    """The node's metrics in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node, extra))
    return generate_latest(registry)
