"""`qkdnet export`: one topology file as a Docker Compose project, Kubernetes manifests or a
containerlab topology, every node on the image `docker/Dockerfile` builds.

Layer: control plane (writes files, starts nothing). Each target runs every node with
``qkdnet node`` on fixed ports, advertising its DNS name, with its own identity mounted as a
secret, and the controller as one more container that attaches to them (``qkdnet run`` over the
topology with a deployment section). Output goes to a fresh directory, or over a non-empty one
only with ``force``; files appear complete or not at all.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import yaml

from qkdnet.node.endpoint import dns_label
from qkdnet.orchestrator import certs as pki
from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.export import compose, containerlab, kubernetes
from qkdnet.orchestrator.export.common import Plan
from qkdnet.orchestrator.topology import Topology

TARGETS: dict[str, Callable[[Plan], dict[str, Any]]] = {
    "compose": compose.files,
    "kubernetes": kubernetes.files,
    "containerlab": containerlab.files,
}


def export(topology: Topology, target: str, directory: pathlib.Path, image: str, force: bool = False,
           certs_dir: pathlib.Path | None = None) -> list[pathlib.Path]:
    """Write ``target``'s files for ``topology`` into ``directory``; returns the paths written.

    ``certs_dir``: an existing PKI (``qkdnet certs``) to use instead of a fresh one in ``pki/``.
    """
    if target not in TARGETS:
        raise QkdnetError(f"unknown export target {target!r}; choose {', '.join(TARGETS)}")
    taken = {"controller": "the controller's container"}
    for kind, names in (("node", topology.nodes), ("SAE", topology.saes)):
        for name in names:
            label = dns_label(name)
            if label is None:
                raise QkdnetError(f"{topology.source}: {kind} {name!r} cannot be exported: its name is no DNS label "
                                  "(letters, digits, '-', '_' or '.', starting with a letter, at most 63)")
            host = label if kind == "node" else f"sae-{label}"
            if host in taken:
                raise QkdnetError(f"{topology.source}: {kind} {name!r} cannot be exported: its host name "
                                  f"{host!r} is also that of {taken[host]}")
            taken[host] = f"{kind} {name!r}"
    directory = pathlib.Path(directory)
    if directory.exists() and not directory.is_dir():
        raise QkdnetError(f"{directory}: not a directory")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise QkdnetError(f"{directory} exists and is not empty (use --force to write into it)")
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".export-") as scratch:
        staging = pathlib.Path(scratch)
        written_pki = None if certs_dir is not None else staging / "pki"
        paths = pki.load(topology, certs_dir) if certs_dir is not None else pki.create(topology, staging / "pki")
        plan = Plan.of(topology, paths, image, written_pki)
        written = []
        for relative, content in TARGETS[target](plan).items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content if isinstance(content, str) else _yaml(content))
            # Private keys (and manifests carrying them) for their owner alone.
            path.chmod(0o600 if relative.endswith(".key") or relative.endswith("secrets.yaml") else 0o644)
            written.append(relative)
        for entry in staging.iterdir():  # everything is complete: move it into place
            final = directory / entry.name
            if final.is_dir():
                shutil.rmtree(final)
            elif final.exists():
                final.unlink()
            entry.rename(final)
    return [directory / relative for relative in written]


def _yaml(content: Any) -> str:
    if isinstance(content, list):  # several documents in one file
        return yaml.safe_dump_all(content, sort_keys=False)
    return yaml.safe_dump(content, sort_keys=False)
