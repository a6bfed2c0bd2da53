"""Topologies as data: load, fill defaults, validate, and assign link roles.

Layer: control plane (no node imports beyond the parameter dataclasses). Formats: readable YAML
(``nodes``/``links``), networkx node-link JSON, GraphML and GML, plus generated ``line:N``,
``ring:N``, ``star:N`` and ``grid:RxC``. Edge attributes are ``LinkParams`` fields with units
in their names (``length_km``, ``attenuation_db_per_km``, ...); omitted ones take the file's
``defaults`` and then the ``standard`` preset. Every problem is one line naming the file.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import pathlib
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any
from xml.etree.ElementTree import ParseError

import networkx as nx
import yaml

from qkdnet.node.endpoint import WILDCARD_HOSTS, join_host_port, split_host_port
from qkdnet.node.errors import QkdnetError
from qkdnet.node.qkd.errors import ParameterError
from qkdnet.node.qkd.params import RECONCILERS, LinkParams, ProcessingParams, link_params_from_mapping
from qkdnet.node.routing import StrategySpec
from qkdnet.orchestrator.errors import TopologyError

BUILTIN = importlib.resources.files("qkdnet.topologies")  # package data, also from a wheel
DEFAULT_TOPOLOGY = "default"
GENERATED = re.compile(r"^(line|ring|star|grid):(\d+)(?:x(\d+))?$")
# A name starts with a letter or digit, so that "." and ".." (or a leading "-") never name one:
# node names become directory names under the state directory.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_NODES = 1000
# Fast defaults for emulation: symmetric bases let 200k-detection blocks give key at eps 1e-10.
EMULATION_LINK_DEFAULTS = {"p_z_alice": 0.5, "p_z_bob": 0.5, "length_km": 25.0}
EMULATION_PROCESSING = {"block_detections": 200_000}


@dataclass(frozen=True)
class ClassicalChannel:
    """The link's classical channel (sifting, error correction, relays), emulated by ``tc`` in
    ``--isolation netns``; the quantum channel is ``LinkParams``."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_ratio: float = 0.0
    rate_mbit: float = 0.0  # 0: unlimited

    def tc_commands(self, interface: str) -> list[str]:
        """``tc`` batch lines shaping ``interface``: netem for delay, jitter and loss, with a token
        bucket (tbf) below it for the rate (tbf alone for a rate only); none for a perfect channel."""
        netem = []
        if self.delay_ms or self.jitter_ms:
            netem.append(f"delay {self.delay_ms}ms" + (f" {self.jitter_ms}ms" if self.jitter_ms else ""))
        if self.loss_ratio:
            netem.append(f"loss {100 * self.loss_ratio}%")
        tbf = f"tbf rate {self.rate_mbit}mbit burst 32kbit latency 100ms" if self.rate_mbit else ""
        if not netem:
            return [f"qdisc add dev {interface} root handle 1: {tbf}"] if tbf else []
        lines = [f"qdisc add dev {interface} root handle 1: netem {' '.join(netem)}"]
        return lines + ([f"qdisc add dev {interface} parent 1:1 handle 10: {tbf}"] if tbf else [])


CLASSICAL_KEYS = {"classical_delay_ms": "delay_ms", "classical_jitter_ms": "jitter_ms",
                  "classical_loss_ratio": "loss_ratio", "classical_rate_mbit": "rate_mbit"}


@dataclass(frozen=True)
class Link:
    link_id: str
    transmitter: str
    receiver: str
    params: LinkParams
    classical: ClassicalChannel = ClassicalChannel()
    reconciler: str | None = None  # this link's error correction; None: the network's (processing)


@dataclass(frozen=True)
class Topology:
    name: str
    source: str
    graph: nx.Graph  # nodes are names; edges carry "link": Link
    links: tuple[Link, ...]
    processing: ProcessingParams
    pool_capacity_bits: int
    time_scale: float
    saes: dict[str, str] = dataclasses.field(default_factory=dict)  # SAE ID -> the node (KME) it attaches to
    routing: StrategySpec = StrategySpec()  # how KMEs route application key requests
    deployment: dict[str, str] = dataclasses.field(default_factory=dict)  # node -> its gRPC host:port; empty: local

    @property
    def nodes(self) -> list[str]:
        return list(self.graph.nodes)

    def link_processing(self, link: Link) -> ProcessingParams:
        """The post-processing settings of one link: the network's, with the link's reconciler."""
        if link.reconciler is None:
            return self.processing
        return dataclasses.replace(self.processing, reconciler=link.reconciler)

    def with_link_changes(self, changes: dict) -> Topology:
        """The same network with every link's parameters changed (e.g. pulse_rate_hz), checked."""
        if not changes:
            return self
        graph = self.graph.copy()
        links = []
        for link in self.links:
            try:
                params = link_params_from_mapping(changes, link.params)
            except (ParameterError, TypeError, ValueError) as exc:
                raise TopologyError(f"{self.source}: link change: {exc}") from None
            new = dataclasses.replace(link, params=params)
            graph.edges[link.transmitter, link.receiver]["link"] = new
            links.append(new)
        return dataclasses.replace(self, graph=graph, links=tuple(links))

    def link_between(self, a: str, b: str) -> Link:
        if not self.graph.has_edge(a, b):
            raise TopologyError(f"{self.name}: no link between {a!r} and {b!r}")
        return self.graph.edges[a, b]["link"]


def load(spec: str) -> Topology:
    """A file path, a built-in name from topologies/, or a generated spec like ``line:5``."""
    match = GENERATED.match(spec)
    if match:
        return _from_generated(spec, match)
    path: pathlib.Path | Traversable = pathlib.Path(spec)
    if not pathlib.Path(spec).exists():
        for candidate in (BUILTIN / spec, BUILTIN / f"{spec}.yaml"):
            if candidate.is_file() and candidate.name != "__init__.py":
                path = candidate
                break
        else:
            raise TopologyError(f"{spec}: no such file, built-in topology or generator "
                                "(try line:5, ring:6, star:4, grid:3x3 or a file)")
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read ({exc.strerror})") from None
    suffix = pathlib.PurePath(path.name).suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            return _from_yaml(str(path), text)
        if suffix == ".json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TopologyError(f"{path}: expected a node-link JSON object with 'nodes' and 'links'")
            return _from_graph(str(path), nx.node_link_graph(data, edges="links" if "links" in data else "edges"),
                               data.get("graph") or {})
        if suffix == ".graphml":
            graph = nx.read_graphml(path)
            return _from_graph(str(path), graph, dict(graph.graph))
        if suffix == ".gml":
            graph = nx.read_gml(path)
            return _from_graph(str(path), graph, dict(graph.graph))
    except TopologyError:
        raise
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise TopologyError(f"{path}: not valid {suffix[1:].upper()}: {str(exc).splitlines()[0]}") from None
    except (nx.NetworkXError, KeyError, TypeError, ValueError, AttributeError, IndexError, ParseError) as exc:
        raise TopologyError(f"{path}: cannot read graph: {exc}") from None
    raise TopologyError(f"{path}: unknown topology format {suffix!r} (use .yaml, .json, .graphml or .gml)")


def _from_generated(spec: str, match: re.Match) -> Topology:
    kind, a, b = match.group(1), int(match.group(2)), match.group(3)
    if kind == "grid" and b is None:
        raise TopologyError(f"{spec}: grid needs rows and columns, e.g. grid:3x3")
    if a < 2 and kind != "grid" or a > MAX_NODES:
        raise TopologyError(f"{spec}: size must be between 2 and {MAX_NODES}")
    if kind == "grid" and not (1 <= a and 1 <= int(b) and 2 <= a * int(b) <= MAX_NODES):
        raise TopologyError(f"{spec}: a grid needs 2 to {MAX_NODES} nodes")
    graph = {"line": lambda: nx.path_graph(a), "ring": lambda: nx.cycle_graph(a),
             "star": lambda: nx.star_graph(a - 1), "grid": lambda: nx.grid_2d_graph(a, int(b))}[kind]()
    names = {n: (f"n{n[0]}_{n[1]}" if isinstance(n, tuple) else f"n{n}") for n in graph.nodes}
    graph = nx.relabel_nodes(graph, names)
    return _build(spec, spec.replace(":", "-"), graph, {}, {}, {})


def _from_yaml(source: str, text: str) -> Topology:
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise TopologyError(f"{source}: expected a mapping with 'nodes' and 'links'")
    unknown = set(data) - {"name", "description", "sources", "defaults", "processing", "nodes", "links",
                           "pool_capacity_bits", "time_scale", "saes", "routing", "deployment"}
    if unknown:
        raise TopologyError(f"{source}: unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise TopologyError(f"{source}: 'nodes' must be a non-empty list")
    graph = nx.Graph()
    for entry in nodes:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            raise TopologyError(f"{source}: node names must be strings, got {name!r}")
        if name in graph:
            raise TopologyError(f"{source}: duplicate node {name!r}")
        graph.add_node(name)
    links = data.get("links") or []
    if not isinstance(links, list):
        raise TopologyError(f"{source}: 'links' must be a list")
    for index, entry in enumerate(links):
        if not isinstance(entry, dict) or "source" not in entry or "target" not in entry:
            raise TopologyError(f"{source}: link {index} needs 'source' and 'target'")
        u, v = entry["source"], entry["target"]
        for end in (u, v):
            if end not in graph:
                raise TopologyError(f"{source}: link {index} names unknown node {end!r}")
        if graph.has_edge(u, v):
            raise TopologyError(f"{source}: duplicate link {u}-{v}")
        if u == v:
            raise TopologyError(f"{source}: self-loop at node {u!r}")
        graph.add_edge(u, v, **{k: val for k, val in entry.items() if k not in ("source", "target", "note")})
    extras = {k: data[k] for k in ("pool_capacity_bits", "time_scale", "saes", "routing", "deployment") if k in data}
    return _build(source, str(data.get("name") or pathlib.Path(source).stem), graph,
                  data.get("defaults") or {}, data.get("processing") or {}, extras)


def _from_graph(source: str, graph: nx.Graph, attrs: dict) -> Topology:
    """Node-link JSON, GraphML or GML: graph attributes may carry what a YAML file's top level
    does (``defaults``, ``processing``, ``saes``, ``routing`` as objects, or as JSON text where the
    format only has strings)."""
    if not isinstance(attrs, dict):
        raise TopologyError(f"{source}: graph attributes must be a mapping")
    if graph.is_directed() or graph.is_multigraph():
        graph = nx.Graph(graph)
    graph = nx.relabel_nodes(graph, {n: str(n) for n in graph.nodes})
    unknown = set(attrs) - {"name", "description", "sources", "defaults", "processing", "pool_capacity_bits",
                            "time_scale", "saes", "routing", "deployment", "node_default",
                            "edge_default"}  # GraphML's own
    if unknown:
        raise TopologyError(f"{source}: unknown graph attribute(s): {', '.join(sorted(map(str, unknown)))}")
    structured = {key: _json_or_value(source, key, attrs[key])
                  for key in ("defaults", "processing", "saes", "routing", "deployment") if key in attrs}
    defaults = structured.get("defaults") or {}
    processing = structured.get("processing") or {}
    for key, value in (("defaults", defaults), ("processing", processing)):
        if not isinstance(value, dict):
            raise TopologyError(f"{source}: '{key}' must be a mapping")
    extras = {k: attrs[k] for k in ("pool_capacity_bits", "time_scale") if k in attrs}
    extras.update({k: structured[k] for k in ("saes", "routing", "deployment") if k in structured})
    for _u, _v, data in graph.edges(data=True):
        for key in [k for k in data if k in ("id", "key", "label", "note", "link")]:
            del data[key]
    return _build(source, str(attrs.get("name") or pathlib.Path(source).stem), graph, defaults, processing, extras)


def _json_or_value(source: str, key: str, value: Any) -> Any:
    if not isinstance(value, str) or key == "routing" and not value.lstrip().startswith(("{", "[")):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise TopologyError(f"{source}: graph attribute '{key}' is not valid JSON") from None


def _build(source: str, name: str, graph: nx.Graph, defaults: dict, processing: dict, extras: dict) -> Topology:
    if graph.number_of_nodes() == 0:
        raise TopologyError(f"{source}: no nodes")
    if graph.number_of_nodes() > MAX_NODES:
        raise TopologyError(f"{source}: {graph.number_of_nodes()} nodes; at most {MAX_NODES}")
    for key, value in (("defaults", defaults), ("processing", processing)):
        if not isinstance(value, dict):
            raise TopologyError(f"{source}: '{key}' must be a mapping")
    for node in graph.nodes:
        if not NAME.match(node):
            raise TopologyError(f"{source}: node name {node!r} must be 1-64 letters, digits, '_', '.' or '-', "
                                "starting with a letter or digit")
    if nx.number_of_selfloops(graph):
        raise TopologyError(f"{source}: self-loop at node {next(nx.selfloop_edges(graph))[0]!r}")
    try:
        base = link_params_from_mapping({**EMULATION_LINK_DEFAULTS, **defaults})
    except ParameterError as exc:
        raise TopologyError(f"{source}: defaults: {exc}") from None
    links = []
    for u, v, data in graph.edges(data=True):
        transmitter, receiver = sorted((u, v))
        try:
            classical = _classical(data)
            reconciler = _reconciler(data.get("reconciler"))
            params = link_params_from_mapping({k: val for k, val in data.items()
                                               if k not in CLASSICAL_KEYS and k != "reconciler"}, base=base)
        except ParameterError as exc:
            raise TopologyError(f"{source}: link {u}-{v}: {exc}") from None
        link = Link(link_id=f"{transmitter}~{receiver}", transmitter=transmitter, receiver=receiver, params=params,
                    classical=classical, reconciler=reconciler)
        graph.edges[u, v].clear()
        graph.edges[u, v]["link"] = link
        graph.edges[u, v]["length_km"] = params.length_km
        links.append(link)
    try:
        proc = ProcessingParams(**{**EMULATION_PROCESSING, **processing})
    except (TypeError, ParameterError) as exc:
        raise TopologyError(f"{source}: processing: {exc}") from None
    capacity = extras.get("pool_capacity_bits", 8_000_000)
    time_scale = extras.get("time_scale", 0.0)
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity <= 0:
        raise TopologyError(f"{source}: pool_capacity_bits must be a positive integer")
    if not isinstance(time_scale, (int, float)) or isinstance(time_scale, bool) or time_scale < 0:
        raise TopologyError(f"{source}: time_scale must be a non-negative number")
    try:
        routing = StrategySpec.parse(extras.get("routing", StrategySpec().name))
    except QkdnetError as exc:
        raise TopologyError(f"{source}: routing: {exc}") from None
    return Topology(name=name, source=source, graph=graph, links=tuple(links), processing=proc,
                    pool_capacity_bits=capacity, time_scale=float(time_scale),
                    saes=_saes(source, extras.get("saes"), graph), routing=routing,
                    deployment=_deployment(source, extras.get("deployment"), graph))


def _reconciler(value: Any) -> str | None:
    if value is None:
        return None
    if value not in RECONCILERS:
        raise ParameterError(f"reconciler must be one of {', '.join(RECONCILERS)}, got {value!r}")
    return str(value)


def _classical(data: dict) -> ClassicalChannel:
    values = {}
    for key, field in CLASSICAL_KEYS.items():
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ParameterError(f"{key} must be a non-negative number, got {value!r}")
            if key == "classical_loss_ratio" and value > 1:
                raise ParameterError(f"{key} must be at most 1, got {value!r}")
            values[field] = float(value)
    return ClassicalChannel(**values)


def _deployment(source: str, entries: Any, graph: nx.Graph) -> dict[str, str]:
    """Where nodes started elsewhere listen (``deployment: {n0: "10.0.0.1:50051", ...}``): all or
    none of the topology's nodes, each at a ``host:port`` the controller can dial."""
    if entries is None:
        return {}
    if not isinstance(entries, dict) or not entries:
        raise TopologyError(f"{source}: 'deployment' must map every node to its address (host:port)")
    unknown = [str(n) for n in entries if n not in graph]
    if unknown:
        raise TopologyError(f"{source}: deployment names unknown node {unknown[0]!r}")
    missing = [n for n in graph.nodes if n not in entries]
    if missing:
        raise TopologyError(f"{source}: deployment does not say where node {missing[0]!r} runs")
    deployment = {}
    for node, address in entries.items():
        try:
            host, port = split_host_port(str(address), f"node {node}'s address")
        except QkdnetError as exc:
            raise TopologyError(f"{source}: deployment: {exc}") from None
        if not host or host in WILDCARD_HOSTS or port == 0:
            raise TopologyError(f"{source}: deployment: node {node}'s address {address!r} is not one to dial")
        deployment[str(node)] = join_host_port(host, port)
    return deployment


def _saes(source: str, entries: Any, graph: nx.Graph) -> dict[str, str]:
    """Declared SAEs (``- {id: sae-1, node: A}``); by default one ``sae-<node>`` per node."""
    if entries is None:
        return {f"sae-{node}": node for node in graph.nodes}
    if not isinstance(entries, list):
        raise TopologyError(f"{source}: 'saes' must be a list of {{id, node}} entries")
    saes: dict[str, str] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) - {"id", "node", "note"} or not {"id", "node"} <= set(entry):
            raise TopologyError(f"{source}: SAE {index} needs exactly 'id' and 'node'")
        sae, node = entry["id"], entry["node"]
        if not isinstance(sae, str) or not NAME.match(sae):
            raise TopologyError(f"{source}: SAE ID {sae!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if node not in graph:
            raise TopologyError(f"{source}: SAE {sae!r} attaches to unknown node {node!r}")
        if sae in saes or sae in graph:
            raise TopologyError(f"{source}: SAE ID {sae!r} is declared twice or is also a node name")
        saes[sae] = node
    return saes

