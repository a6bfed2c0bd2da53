"""A Docker Compose project: a service per node and one for the controller, on one image."""

from __future__ import annotations

import os
import pathlib
from typing import Any

from qkdnet.orchestrator.export import monitoring
from qkdnet.orchestrator.export.common import (
    CONTROLLER_PKI_DIR,
    DATA_DIR,
    GRPC_PORT,
    IDENTITY_DIR,
    KME_PORT,
    METRICS_PORT,
    TOPOLOGY_FILE,
    Plan,
    controller_args,
    node_args,
    probe_command,
    topology_document,
)


def files(plan: Plan) -> dict[str, Any]:
    """compose.yaml and the topology the controller reads; secrets point into the PKI."""
    secrets: dict[str, Any] = {}
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}

    def secret(name: str, path: pathlib.Path, target: str) -> dict[str, str]:
        secrets[name] = {"file": _relative(path, plan)}
        return {"source": name, "target": target}

    hosts = {node: plan.host(node) for node in plan.topology.nodes}
    for index, node in enumerate(plan.topology.nodes):
        host = hosts[node]  # the service's name, the name others reach it by
        mounted = [secret(f"{host}-{file_name.replace('.', '-')}", path, f"{IDENTITY_DIR}/{file_name}")
                   for file_name, path in plan.identity_files(node).items()]
        volumes[f"keys-{host}"] = {}
        services[host] = {
            "image": plan.image,
            "hostname": host,
            "command": node_args(node, host),
            "volumes": [f"keys-{host}:{DATA_DIR}"],
            "secrets": mounted,
            # The KME is published on the host for applications there: 8443 for the first node, and so on.
            "ports": [f"{KME_PORT + index}:{KME_PORT}"],
            "expose": [str(GRPC_PORT), str(METRICS_PORT)],
            "healthcheck": {"test": ["CMD", *probe_command(node)], "interval": "5s", "timeout": "5s",
                            "retries": 12, "start_period": "10s"},
            "restart": "unless-stopped",  # after a run the controller shuts nodes down: back, unconfigured
            "labels": {"qkdnet.io/node": node},
        }
    services["controller"] = {
        "image": plan.image,
        "command": controller_args(),
        "configs": [{"source": "topology", "target": TOPOLOGY_FILE}],
        "secrets": [secret(f"controller-{file_name.replace('.', '-')}", path, f"{CONTROLLER_PKI_DIR}/{file_name}")
                    for file_name, path in plan.controller_files().items()],
        "depends_on": {host: {"condition": "service_healthy"} for host in hosts.values()},
        "restart": "no",
        "labels": {"qkdnet.io/role": "controller"},
    }
    configs: dict[str, Any] = {"topology": {"file": "./topology.yaml"}}
    written: dict[str, Any] = {"topology.yaml": topology_document(plan.topology, hosts)}

    def config(name: str, relative: str, content: Any, target: str) -> dict[str, str]:
        configs[name] = {"file": f"./{relative}"}
        written[relative] = content
        return {"source": name, "target": target}

    # Prometheus scrapes every node with the monitor identity and evaluates the shipped rules;
    # Grafana starts with it as data source and the shipped dashboards: http://localhost:3000.
    services["prometheus"] = {
        "image": monitoring.PROMETHEUS_IMAGE,
        "configs": [config("prometheus", "monitoring/prometheus.yml", monitoring.prometheus_config(plan, hosts),
                           "/etc/prometheus/prometheus.yml"),
                    config("prometheus-rules", "monitoring/rules.yml", monitoring.rules_text(),
                           monitoring.PROMETHEUS_RULES)],
        "secrets": [secret(f"monitor-{name.replace('.', '-')}", path, f"{monitoring.PROMETHEUS_PKI_DIR}/{name}")
                    for name, path in monitoring.monitor_files(plan).items()],
        "ports": ["9090:9090"],
        "labels": {"qkdnet.io/role": "monitoring"},
    }
    dashboards = [config(f"dashboard-{name.removesuffix('.json')}", f"monitoring/grafana/dashboards/{name}", text,
                         f"{monitoring.GRAFANA_DASHBOARDS_DIR}/{name}")
                  for name, text in monitoring.dashboard_files().items()]
    services["grafana"] = {
        "image": monitoring.GRAFANA_IMAGE,
        "configs": [config("grafana-datasource", "monitoring/grafana/datasource.yml",
                           monitoring.grafana_datasource("http://prometheus:9090"),
                           "/etc/grafana/provisioning/datasources/qkdnet.yml"),
                    config("grafana-dashboards", "monitoring/grafana/dashboards.yml",
                           monitoring.grafana_dashboard_provider(),
                           "/etc/grafana/provisioning/dashboards/qkdnet.yml"), *dashboards],
        "ports": ["3000:3000"],
        "depends_on": ["prometheus"],
        "labels": {"qkdnet.io/role": "monitoring"},
    }
    project = {"name": plan.name, "services": services, "volumes": volumes, "secrets": secrets, "configs": configs}
    return {"compose.yaml": project, **written}


def _relative(path: pathlib.Path, plan: Plan) -> str:
    """Secrets are read relative to the project directory: the PKI written beside it, or one given."""
    if plan.written_pki is not None and path.is_relative_to(plan.written_pki):
        return "./pki/" + path.relative_to(plan.written_pki).as_posix()
    return os.fspath(path.resolve())
