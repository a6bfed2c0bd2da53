"""What every export target shares: ports, paths inside the containers, the node's command line
and the topology document the controller attaches with."""

from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass
from typing import Any

from qkdnet.node.endpoint import dns_label, join_host_port
from qkdnet.orchestrator.certs import CertPaths
from qkdnet.orchestrator.topology import CLASSICAL_KEYS, Topology

GRPC_PORT = 50051
KME_PORT = 8443
METRICS_PORT = 9464  # each node's Prometheus /metrics (HTTPS, mutual TLS: the monitor identity)
IDENTITY_DIR = "/etc/qkdnet/identity"  # node.pem, node.key, ca.pem, kme.pem, kme.key (a mounted secret)
CONTROLLER_PKI_DIR = "/etc/qkdnet/pki"  # ca.pem, controller.pem, controller.key
DATA_DIR = "/var/lib/qkdnet"
TOPOLOGY_FILE = "/etc/qkdnet/topology.yaml"
NODE_LABEL = "qkdnet.io/node"
SAE_LABEL = "qkdnet.io/sae"
ROLE_LABEL = "qkdnet.io/role"


@dataclass(frozen=True)
class Plan:
    topology: Topology
    certs: CertPaths
    image: str
    name: str  # the project's name: lower-case, DNS-safe
    written_pki: pathlib.Path | None  # where a fresh PKI is being written (``pki/`` of the output)

    @classmethod
    def of(cls, topology: Topology, certs: CertPaths, image: str, written_pki: pathlib.Path | None) -> Plan:
        name = "qkdnet-" + "".join(c if c.isalnum() else "-" for c in topology.name.lower()).strip("-")
        return cls(topology, certs, image, name[:50].rstrip("-"), written_pki)

    def host(self, node: str) -> str:
        """The node's host name in containers and clusters (``export`` checked it is a label)."""
        return dns_label(node) or node

    def neighbours(self, node: str) -> list[str]:
        return sorted(self.topology.graph.neighbors(node))

    def saes_of(self, node: str) -> list[str]:
        return sorted(sae for sae, at in self.topology.saes.items() if at == node)

    def identity_files(self, node: str) -> dict[str, pathlib.Path]:
        """The node's secret: file name in ``IDENTITY_DIR`` -> the PKI file it is."""
        cert, key = self.certs.node[node]
        kme_cert, kme_key = self.certs.kme[node]
        return {"node.pem": cert, "node.key": key, "ca.pem": self.certs.ca_file, "kme.pem": kme_cert,
                "kme.key": kme_key}

    def controller_files(self) -> dict[str, pathlib.Path]:
        cert, key = self.certs.controller
        return {"ca.pem": self.certs.ca_file, "controller.pem": cert, "controller.key": key}


def node_args(node: str, host: str) -> list[str]:
    """``qkdnet node``'s arguments in a container: every interface, advertised by its DNS name."""
    return ["node", "--name", node, "--listen", f"0.0.0.0:{GRPC_PORT}", "--advertise", f"{host}:{GRPC_PORT}",
            "--kme-listen", f"0.0.0.0:{KME_PORT}", "--kme-advertise", f"{host}:{KME_PORT}",
            "--metrics-listen", f"0.0.0.0:{METRICS_PORT}", "--metrics-advertise", f"{host}:{METRICS_PORT}",
            "--identity-dir", IDENTITY_DIR, "--data-dir", DATA_DIR]


def probe_command(node: str) -> list[str]:
    """The node's own health check (gRPC health over mutual TLS, with its own identity)."""
    return ["python", "-m", "qkdnet.node.probe", "--name", node, "--identity-dir", IDENTITY_DIR,
            f"127.0.0.1:{GRPC_PORT}"]


def controller_args() -> list[str]:
    return ["run", TOPOLOGY_FILE, "--certs", CONTROLLER_PKI_DIR, "--attach-timeout", "300"]


def topology_document(topology: Topology, hosts: dict[str, str]) -> dict[str, Any]:
    """The topology as a YAML mapping ``qkdnet.orchestrator.topology`` loads back to the same
    network, with a deployment section placing each node at ``hosts[node]``."""
    return {
        "name": topology.name,
        "nodes": list(topology.nodes),
        "links": [{"source": link.transmitter, "target": link.receiver, **dataclasses.asdict(link.params),
                   **{key: getattr(link.classical, field) for key, field in CLASSICAL_KEYS.items()
                      if getattr(link.classical, field)},
                   **({"reconciler": link.reconciler} if link.reconciler else {})}
                  for link in topology.links],
        "processing": dataclasses.asdict(topology.processing),
        "pool_capacity_bits": topology.pool_capacity_bits,
        "time_scale": topology.time_scale,
        "saes": [{"id": sae, "node": node} for sae, node in topology.saes.items()],
        "routing": {"name": topology.routing.name, **topology.routing.options},
        "deployment": {n: join_host_port(hosts[n], GRPC_PORT) for n in topology.nodes},
    }
