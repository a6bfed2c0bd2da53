"""Kubernetes manifests plus a kustomization: per node a one-replica StatefulSet with a volume for
its key store, a headless Service (its stable DNS name), a Secret with its identity and a
NetworkPolicy; a ConfigMap with the topology; the controller as a Job.

Requests are sized from measured figures (README, ``benchmarks/scale.py``: 94–102 MB resident
per node, 120 MB at most, at 10–100 nodes; a pod runs its own interpreter, so resident memory,
not the PSS shared with a local launcher, is what it costs).
"""

from __future__ import annotations

import base64
import pathlib
from typing import Any

from qkdnet.node.endpoint import dns_label
from qkdnet.orchestrator.export import monitoring
from qkdnet.orchestrator.export.common import (
    CONTROLLER_PKI_DIR,
    DATA_DIR,
    GRPC_PORT,
    IDENTITY_DIR,
    KME_PORT,
    METRICS_PORT,
    NODE_LABEL,
    ROLE_LABEL,
    SAE_LABEL,
    TOPOLOGY_FILE,
    Plan,
    controller_args,
    node_args,
    probe_command,
    topology_document,
)

NODE_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
KEY_STORE_SIZE = "1Gi"


def files(plan: Plan) -> dict[str, Any]:
    """One file per kind of object (each a list of documents) and kustomization.yaml naming them."""
    namespace = plan.name
    labels = {"app.kubernetes.io/part-of": plan.name}
    objects: dict[str, list[dict[str, Any]]] = {
        "namespace.yaml": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace,
                                                                                 "labels": labels}}],
        "secrets.yaml": [], "services.yaml": [], "statefulsets.yaml": [], "networkpolicies.yaml": [],
    }
    hosts = {node: plan.host(node) for node in plan.topology.nodes}
    for node, host in hosts.items():
        meta = {"name": host, "namespace": namespace, "labels": {**labels, NODE_LABEL: node}}
        objects["secrets.yaml"].append(_secret(f"{host}-identity", namespace, plan.identity_files(node)))
        objects["services.yaml"].append({
            "apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"clusterIP": "None", "selector": {NODE_LABEL: node}, "publishNotReadyAddresses": True,
                     "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT},
                               {"name": "kme", "port": KME_PORT, "targetPort": KME_PORT},
                               {"name": "metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT}]}})
        objects["statefulsets.yaml"].append(_statefulset(plan, node, meta))
        objects["networkpolicies.yaml"].append(_policy(plan, node, meta))
    for sae in plan.topology.saes:  # for applications to mount: their client identity
        cert, key = plan.certs.sae[sae]
        objects["secrets.yaml"].append(_secret(f"sae-{dns_label(sae)}", namespace, {"sae.pem": cert, "sae.key": key,
                                                                          "ca.pem": plan.certs.ca_file}))
    objects["secrets.yaml"].append(_secret("controller-identity", namespace, plan.controller_files()))
    # For the cluster's Prometheus and Grafana: the scrape configuration and rules, the dashboards
    # (labelled for Grafana's dashboard sidecar) and the read-only monitor identity.
    objects["secrets.yaml"].append(_secret("monitor-identity", namespace, monitoring.monitor_files(plan)))
    objects["monitoring.yaml"] = [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "qkdnet-prometheus", "namespace": namespace, "labels": labels},
         "data": {"prometheus.yml": _dump(monitoring.prometheus_config(plan, hosts, f"{namespace}.svc")),
                  "qkdnet-rules.yml": monitoring.rules_text()}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "qkdnet-dashboards", "namespace": namespace,
                      "labels": {**labels, "grafana_dashboard": "1"}},
         "data": monitoring.dashboard_files()},
    ]
    objects["controller.yaml"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "topology", "namespace": namespace,
                                                                "labels": labels},
         "data": {"topology.yaml": _dump(topology_document(plan.topology, hosts))}},
        _job(plan, namespace, labels),
    ]
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "namespace": namespace, "resources": list(objects)}
    return {**{f"kubernetes/{name}": docs for name, docs in objects.items()},
            "kubernetes/kustomization.yaml": kustomization}


def _secret(name: str, namespace: str, files: dict[str, pathlib.Path]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace},
            "data": {file_name: base64.b64encode(path.read_bytes()).decode() for file_name, path in files.items()}}


def _probe(node: str, period_s: int) -> dict[str, Any]:
    return {"exec": {"command": probe_command(node)}, "periodSeconds": period_s, "timeoutSeconds": 5,
            "failureThreshold": 3}


def _statefulset(plan: Plan, node: str, meta: dict[str, Any]) -> dict[str, Any]:
    host = plan.host(node)
    pod_labels = {NODE_LABEL: node, ROLE_LABEL: "node"}
    container = {
        "name": "node", "image": plan.image, "args": node_args(node, host),
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT}, {"name": "kme", "containerPort": KME_PORT},
                  {"name": "metrics", "containerPort": METRICS_PORT}],
        "volumeMounts": [{"name": "identity", "mountPath": IDENTITY_DIR, "readOnly": True},
                         {"name": "keys", "mountPath": DATA_DIR}],
        "readinessProbe": _probe(node, 5), "livenessProbe": {**_probe(node, 20), "initialDelaySeconds": 20},
        "resources": NODE_RESOURCES,
    }
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
        "spec": {
            "serviceName": host, "replicas": 1, "selector": {"matchLabels": {NODE_LABEL: node}},
            "template": {"metadata": {"labels": pod_labels},
                         "spec": {"hostname": host, "containers": [container],
                                  "volumes": [{"name": "identity", "secret": {"secretName": f"{host}-identity",
                                                                               "defaultMode": 0o400}}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "keys"},
                                      "spec": {"accessModes": ["ReadWriteOnce"],
                                               "resources": {"requests": {"storage": KEY_STORE_SIZE}}}}],
        },
    }


def _policy(plan: Plan, node: str, meta: dict[str, Any]) -> dict[str, Any]:
    """gRPC from the node's neighbours and the controller only; the KME from its declared SAEs only."""
    peers = plan.neighbours(node)
    grpc_from: list[dict[str, Any]] = [{"podSelector": {"matchLabels": {ROLE_LABEL: "controller"}}}]
    if peers:
        grpc_from.append({"podSelector": {"matchExpressions": [{"key": NODE_LABEL, "operator": "In",
                                                                "values": peers}]}})
    ingress: list[dict[str, Any]] = [
        {"from": grpc_from, "ports": [{"protocol": "TCP", "port": GRPC_PORT}]},
        # Prometheus, wherever it runs, still needs the monitor certificate to read anything.
        {"from": [{"podSelector": {"matchLabels": {ROLE_LABEL: "monitoring"}}},
                  {"namespaceSelector": {"matchLabels": {ROLE_LABEL: "monitoring"}}}],
         "ports": [{"protocol": "TCP", "port": METRICS_PORT}]}]
    saes = plan.saes_of(node)
    if saes:
        ingress.append({"from": [{"podSelector": {"matchExpressions": [{"key": SAE_LABEL, "operator": "In",
                                                                         "values": saes}]}}],
                        "ports": [{"protocol": "TCP", "port": KME_PORT}]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
            "spec": {"podSelector": {"matchLabels": {NODE_LABEL: node}}, "policyTypes": ["Ingress"],
                     "ingress": ingress}}


def _job(plan: Plan, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    container = {"name": "controller", "image": plan.image, "args": controller_args(),
                 "volumeMounts": [{"name": "topology", "mountPath": str(pathlib.PurePosixPath(TOPOLOGY_FILE).parent)
                                   + "/topology.yaml", "subPath": "topology.yaml", "readOnly": True},
                                  {"name": "identity", "mountPath": CONTROLLER_PKI_DIR, "readOnly": True}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "controller", "namespace": namespace, "labels": labels},
            "spec": {"backoffLimit": 2, "template": {
                "metadata": {"labels": {ROLE_LABEL: "controller"}},
                "spec": {"restartPolicy": "Never", "containers": [container],
                         "volumes": [{"name": "topology", "configMap": {"name": "topology"}},
                                     {"name": "identity", "secret": {"secretName": "controller-identity",
                                                                     "defaultMode": 0o400}}]}}}}


def _dump(document: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False)
