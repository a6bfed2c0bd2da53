"""A containerlab topology: a ``kind: linux`` node per trusted node on the qkdnet image, one link
per topology edge, and the controller as one more node.

The nodes speak gRPC over containerlab's management network, by name (each advertises its node
name; containerlab's ``/etc/hosts`` entries are ``clab-<lab>-<node>``, so the nodes advertise
those); the per-edge links are the data-plane interfaces a tester impairs with
``containerlab tools netem``.
"""

from __future__ import annotations

from typing import Any

from qkdnet.orchestrator.export.common import (
    CONTROLLER_PKI_DIR,
    IDENTITY_DIR,
    TOPOLOGY_FILE,
    Plan,
    controller_args,
    node_args,
    topology_document,
)


def files(plan: Plan) -> dict[str, Any]:
    lab = plan.name
    names = {node: plan.host(node) for node in plan.topology.nodes}  # containerlab's node names
    host = {node: f"clab-{lab}-{names[node]}" for node in plan.topology.nodes}  # its /etc/hosts names
    interface_count: dict[str, int] = {}

    def interface(node: str) -> str:
        interface_count[node] = interface_count.get(node, 0) + 1
        return f"{names[node]}:eth{interface_count[node]}"

    nodes: dict[str, Any] = {}
    for node in plan.topology.nodes:
        nodes[names[node]] = {"kind": "linux", "image": plan.image, "cmd": " ".join(node_args(node, host[node])),
                              "binds": [f"identity/{names[node]}:{IDENTITY_DIR}:ro"],
                       "labels": {"qkdnet.io/node": node}}
    nodes["controller"] = {"kind": "linux", "image": plan.image, "cmd": " ".join(controller_args()),
                           "binds": [f"controller:{CONTROLLER_PKI_DIR}:ro", f"topology.yaml:{TOPOLOGY_FILE}:ro"],
                           "labels": {"qkdnet.io/role": "controller"}}
    links = [{"endpoints": [interface(link.transmitter), interface(link.receiver)]} for link in plan.topology.links]
    identities: dict[str, str] = {}
    for node in plan.topology.nodes:
        for file_name, path in plan.identity_files(node).items():
            identities[f"identity/{names[node]}/{file_name}"] = path.read_text()
    for file_name, path in plan.controller_files().items():
        identities[f"controller/{file_name}"] = path.read_text()
    return {"qkdnet.clab.yml": {"name": lab, "topology": {"nodes": nodes, "links": links}},
            "topology.yaml": topology_document(plan.topology, host), **identities}
