"""The network-level metrics a running network's supervisor exposes: what the nodes cannot see
alone (routed requests and their blocking, links and nodes by state, faults injected).

Layer: control plane (prometheus_client, no I/O). Served at ``/metrics`` beside the live view,
behind the same token (Prometheus sends it as a bearer token; ``qkdnet up``'s prometheus.yml
does). The relay counters belong to this object; the states come from the view's last sample.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from qkdnet.node.relay.result import RelayResult
from qkdnet.orchestrator.live_view.model import ViewModel

OUTCOMES = ("delivered", "blocked", "failed")
LINK_STATES = ("starting", "running", "full", "down", "cut")
FAULT_KINDS = ("cut", "restore", "impair", "kill", "restart")


class NetworkMetrics(Collector):
    def __init__(self, view: ViewModel) -> None:
        self.view = view
        self.requests = Counter("qkdnet_network_requests", "Key requests routed by the controller, by outcome "
                                "(blocked: no usable route when asked)", ["outcome"], registry=None)
        self.request_seconds = Histogram("qkdnet_network_request_duration_seconds",
                                         "Time from a routed request to its outcome, retries included",
                                         ["outcome"], registry=None)
        for outcome in OUTCOMES:
            self.requests.labels(outcome)
            self.request_seconds.labels(outcome)

    def record(self, result: RelayResult) -> None:
        self.requests.labels(result.outcome).inc()
        self.request_seconds.labels(result.outcome).observe(result.latency_s)

    def collect(self) -> Iterator[Metric]:
        snapshot = self.view.snapshot()
        nodes = GaugeMetricFamily("qkdnet_network_nodes", "Nodes by state", labels=["state"])
        alive = sum(1 for n in snapshot["nodes"] if n["alive"])
        nodes.add_metric(["up"], alive)
        nodes.add_metric(["down"], len(snapshot["nodes"]) - alive)
        links = GaugeMetricFamily("qkdnet_network_links", "Links by state", labels=["state"])
        for state in LINK_STATES:
            links.add_metric([state], sum(1 for link in snapshot["links"] if link["state"] == state))
        faults = CounterMetricFamily("qkdnet_network_faults", "Faults injected, by kind", labels=["kind"])
        for kind in FAULT_KINDS:
            faults.add_metric([kind], sum(1 for f in self.view.faults if f["fault"] == kind))
        yield from (nodes, links, faults)
        yield from self.requests.collect()
        yield from self.request_seconds.collect()


def render(metrics: NetworkMetrics) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    return generate_latest(registry)
