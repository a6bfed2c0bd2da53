"""Per-strategy results while an experiment runs, for Prometheus (``qkdnet experiment
--metrics-port``): requests by strategy and outcome, their duration and the link key they spent.

Layer: control plane (prometheus_client, no I/O). The runner records each routed request here as
it completes; the CLI serves ``render`` behind a bearer token.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from qkdnet.node.relay.result import RelayResult


class ExperimentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("qkdnet_experiment_requests", "Requests of the running experiment, by strategy "
                                "and outcome (blocked: no usable route)", ["strategy", "outcome"],
                                registry=self.registry)
        self.request_seconds = Histogram("qkdnet_experiment_request_duration_seconds",
                                         "Time from a request to its outcome, by strategy", ["strategy"],
                                         registry=self.registry)
        self.link_bits = Counter("qkdnet_experiment_link_key_consumed_bits", "Link key spent by the requests, "
                                 "by strategy", ["strategy"], registry=self.registry)

    def record(self, strategy: str, routed: RelayResult) -> None:
        self.requests.labels(strategy, routed.outcome).inc()
        self.request_seconds.labels(strategy).observe(routed.latency_s)
        self.link_bits.labels(strategy).inc(routed.link_bits_consumed)

    def render(self) -> bytes:
        return generate_latest(self.registry)
