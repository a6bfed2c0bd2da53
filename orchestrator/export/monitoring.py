"""Monitoring beside an exported network: Prometheus scraping every node, the shipped alert
rules, and Grafana with the shipped dashboards (provisioned, nothing to click).

Layer: control plane (plain data). Compose runs Prometheus and Grafana as services; the
Kubernetes export ships the same scrape configuration, rules and dashboards as ConfigMaps (the
dashboards labelled ``grafana_dashboard: "1"`` for Grafana's dashboard sidecar) and the monitor
identity as a Secret, for the cluster's own Prometheus and Grafana.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from qkdnet.node.endpoint import join_host_port
from qkdnet.orchestrator.export.common import METRICS_PORT, Plan
from qkdnet.orchestrator.monitoring import RULES_FILE, dashboards
from qkdnet.orchestrator.prometheus_config import SCRAPE_INTERVAL_S

PROMETHEUS_PKI_DIR = "/etc/prometheus/pki"  # ca.pem, monitor.pem, monitor.key
PROMETHEUS_RULES = "/etc/prometheus/qkdnet-rules.yml"
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.2"
GRAFANA_IMAGE = "grafana/grafana:11.2.0"
GRAFANA_DASHBOARDS_DIR = "/var/lib/grafana/dashboards/qkdnet"


def monitor_files(plan: Plan) -> dict[str, pathlib.Path]:
    """The scraper's identity: the monitor's (or, for a PKI made before it, the controller's)."""
    cert, key = plan.certs.monitor or plan.certs.controller
    return {"ca.pem": plan.certs.ca_file, "monitor.pem": cert, "monitor.key": key}


def prometheus_config(plan: Plan, hosts: dict[str, str], domain: str = "") -> dict[str, Any]:
    """Scrape every node at host:9464 over mutual TLS (the KME certificate names the host).

    ``domain``: reach each node as ``host.domain`` (a cluster's Prometheus in another namespace);
    each node is then a job of its own that checks the certificate for its bare host name.
    """
    tls = {"ca_file": f"{PROMETHEUS_PKI_DIR}/ca.pem", "cert_file": f"{PROMETHEUS_PKI_DIR}/monitor.pem",
           "key_file": f"{PROMETHEUS_PKI_DIR}/monitor.key"}

    def target(node: str) -> dict[str, Any]:
        host = f"{hosts[node]}.{domain}" if domain else hosts[node]
        return {"targets": [join_host_port(host, METRICS_PORT)], "labels": {"qkdnet_node": node}}

    jobs: list[dict[str, Any]] = []
    if domain:
        for node in plan.topology.nodes:  # job names are unique; the job label stays "qkdnet"
            one = target(node)
            one["labels"]["job"] = "qkdnet"
            jobs.append({"job_name": f"qkdnet-{hosts[node]}", "scheme": "https", "metrics_path": "/metrics",
                         "tls_config": {**tls, "server_name": hosts[node]}, "static_configs": [one]})
    else:
        jobs.append({"job_name": "qkdnet", "scheme": "https", "metrics_path": "/metrics", "tls_config": tls,
                     "static_configs": [target(node) for node in plan.topology.nodes]})
    return {"global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
            "rule_files": [PROMETHEUS_RULES], "scrape_configs": jobs}


def rules_text() -> str:
    return RULES_FILE.read_text()


def dashboard_files() -> dict[str, str]:
    """File name -> Grafana dashboard JSON, for every shipped view."""
    return {f"qkdnet-{view}.json": json.dumps(dashboards.dashboard(view), indent=2) + "\n"
            for view in dashboards.VIEWS}


def grafana_datasource(prometheus_url: str) -> dict[str, Any]:
    return {"apiVersion": 1, "datasources": [{"name": "Prometheus", "type": "prometheus", "uid": "prometheus",
                                              "access": "proxy", "url": prometheus_url, "isDefault": True}]}


def grafana_dashboard_provider() -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{"name": "qkdnet", "folder": "qkdnet", "type": "file",
                                            "options": {"path": GRAFANA_DASHBOARDS_DIR}}]}
