"""A Prometheus configuration that scrapes every node of a running network.

Layer: control plane. ``qkdnet up`` writes it beside the network's state, so an operator (or a
test) starts ``prometheus --config.file=...`` and sees every node at once. Scrapes use mutual
TLS with the monitor identity (read-only: /metrics and nothing else), or the controller's for a
PKI made before the monitor existed. Each target carries its node's name as ``qkdnet_node``.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from qkdnet.orchestrator.files import write_atomically
from qkdnet.orchestrator.monitoring import RULES_FILE

if TYPE_CHECKING:
    from qkdnet.orchestrator.network import Network

SCRAPE_INTERVAL_S = 5


def scrape_config(network: Network, interval_s: int = SCRAPE_INTERVAL_S,
                  network_metrics: tuple[str, str] | None = None) -> dict[str, Any]:
    """``network_metrics``: the supervisor's base URL and token, for the network-level job."""
    targets = []
    scheme = "http"
    for name, handle in network.nodes.items():
        if not handle.metrics_url:
            continue
        url = urlsplit(handle.metrics_url)
        scheme = url.scheme
        targets.append({"targets": [url.netloc], "labels": {"qkdnet_node": name}})
    job: dict[str, Any] = {"job_name": "qkdnet", "scheme": scheme, "metrics_path": "/metrics",
                           "static_configs": targets}
    if scheme == "https" and network.certs is not None:
        cert, key = network.certs.monitor or network.certs.controller
        job["tls_config"] = {"ca_file": str(pathlib.Path(network.certs.ca_file).resolve()),
                             "cert_file": str(pathlib.Path(cert).resolve()), "key_file": str(pathlib.Path(key).resolve())}
    jobs = [job]
    if network_metrics is not None:
        url, token = urlsplit(network_metrics[0]), network_metrics[1]
        jobs.append({"job_name": "qkdnet-network", "scheme": url.scheme, "metrics_path": "/metrics",
                     "authorization": {"type": "Bearer", "credentials": token},
                     "static_configs": [{"targets": [url.netloc]}]})
    return {"global": {"scrape_interval": f"{interval_s}s", "evaluation_interval": f"{interval_s}s"},
            "rule_files": [str(RULES_FILE)], "scrape_configs": jobs}


def write(path: pathlib.Path, network: Network, interval_s: int = SCRAPE_INTERVAL_S,
          network_metrics: tuple[str, str] | None = None) -> None:
    """Readable by its owner alone: it holds the supervisor's token when it scrapes the network job."""
    text = yaml.safe_dump(scrape_config(network, interval_s, network_metrics), sort_keys=False)
    write_atomically(path, text.encode(), 0o600)
