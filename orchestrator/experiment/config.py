"""Experiment configuration: a YAML file read into frozen dataclasses, with one-line errors.

Layer: orchestrator. Times in the file are emulated seconds (``duration_s``, ``warmup_s``,
``poll_s``, event ``at_s``, request ``rate_per_s``, ``clock_step_s``, ``hop_processing_s``);
``request_timeout_s`` is emulated seconds in virtual time (the default ``clock``) and wall
seconds in real time.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from dataclasses import dataclass
from typing import Any

import yaml

from qkdnet.node.impairment import Impairment
from qkdnet.node.routing import StrategySpec
from qkdnet.node.settings import CLOCK_MODES, ClockMode
from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.latency_model import HOP_PROCESSING_S
from qkdnet.orchestrator.topology import Topology, load


class ConfigError(QkdnetError):
    """The experiment file is invalid."""


@dataclass(frozen=True)
class PoissonDemand:
    source: str
    destination: str
    rate_per_s: float
    key_bits: int = 256


@dataclass(frozen=True)
class LinkEvent:
    """A fault at an emulated time: a cut, its repair, or an impairment of the quantum channel."""

    at_s: float
    kind: str  # cut, restore, impair, burst
    u: str  # a link's ends, or a burst's source and destination
    v: str
    impairment: Impairment | None = None  # for impair (``Impairment()``: healthy again)
    requests: int = 0  # for burst: this many requests at once (key exhaustion on purpose)
    key_bits: int = 256


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    topology: Topology
    duration_s: float
    time_scale: float
    strategies: tuple[StrategySpec, ...]
    demand: tuple[PoissonDemand, ...] = ()
    trace: pathlib.Path | None = None
    warmup_s: float = 0.0
    warmup_key_bits: int = 0  # and after warmup_s, until every link holds this much key
    poll_s: float = 5.0
    seeds: tuple[int, ...] = (1,)
    repetitions: int = 1
    request_timeout_s: float = 2.0
    retries: int = 1
    events: tuple[LinkEvent, ...] = ()
    clock: ClockMode = ClockMode.VIRTUAL
    # Virtual time: the clock advances at most this far at once; events and requests inside one
    # step are served at its end, in time order (``experiment.virtual_runner``).
    clock_step_s: float = 0.01
    hop_processing_s: float = HOP_PROCESSING_S  # virtual time: per hop, processing and queueing for key
    # Virtual time: how far ahead of the clock links may run (up to the next fault), while
    # their pools cannot fill; more lets them compute while requests are served.
    lookahead_s: float = 5.0


KNOWN = {"name", "description", "topology", "duration_s", "time_scale", "strategies", "demand", "warmup_s",
         "warmup_key_bits", "poll_s", "seeds", "repetitions", "request_timeout_s", "retries", "events", "link_changes",
         "clock", "clock_step_s", "hop_processing_s", "lookahead_s"}


def load_config(path: pathlib.Path) -> ExperimentConfig:
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot read: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    unknown = set(data) - KNOWN
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")

    def number(key: str, default: Any = None, positive: bool = True, kind: type = float) -> Any:
        value = data.get(key, default)
        if value is None:
            raise ConfigError(f"{where}: {key} is required")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                math.isfinite(value) and kind is int and value != int(value)):
            raise ConfigError(f"{where}: {key} must be a{'n integer' if kind is int else ' number'}, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {key} must be finite, got {value!r}")
        if value < 0 or (positive and value == 0):
            raise ConfigError(f"{where}: {key} must be {'positive' if positive else 'non-negative'}, got {value!r}")
        return kind(value)

    topology_spec = data.get("topology")
    if not isinstance(topology_spec, str):
        raise ConfigError(f"{where}: topology must name a file, a built-in topology or a spec like ring:6")
    relative = path.parent / topology_spec
    topology = load(str(relative) if relative.exists() else topology_spec)
    changes = data.get("link_changes") or {}
    if not isinstance(changes, dict):
        raise ConfigError(f"{where}: link_changes must map link parameter names to values")
    topology = topology.with_link_changes(changes)
    strategies = tuple(_strategy(where, entry) for entry in _list(where, data, "strategies"))
    demand, trace = _demand(where, path.parent, data.get("demand"), topology)
    clock = data.get("clock", ClockMode.VIRTUAL.value)
    if clock not in CLOCK_MODES:
        raise ConfigError(f"{where}: clock must be one of {', '.join(CLOCK_MODES)}, got {clock!r}")
    seeds = data.get("seeds", [1])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"{where}: seeds must be a non-empty list of non-negative integers")
    return ExperimentConfig(
        name=str(data.get("name", path.stem)), topology=topology, duration_s=number("duration_s"),
        time_scale=number("time_scale", topology.time_scale or 1.0), strategies=strategies, demand=demand,
        trace=trace, warmup_s=number("warmup_s", 0.0, positive=False),
        warmup_key_bits=number("warmup_key_bits", 0, positive=False, kind=int), poll_s=number("poll_s", 5.0),
        seeds=tuple(seeds), repetitions=number("repetitions", 1, kind=int),
        request_timeout_s=number("request_timeout_s", 2.0), retries=number("retries", 1, positive=False, kind=int),
        events=tuple(_event(where, e, topology) for e in data.get("events") or []), clock=ClockMode(clock),
        clock_step_s=number("clock_step_s", 0.01), hop_processing_s=number("hop_processing_s", HOP_PROCESSING_S, positive=False),
        lookahead_s=number("lookahead_s", 5.0))


def _list(where: str, data: dict, key: str) -> list:
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: {key} must be a non-empty list")
    return value


def _strategy(where: str, entry: Any) -> StrategySpec:
    try:
        return StrategySpec.parse(entry)
    except QkdnetError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _demand(where: str, base: pathlib.Path, demand: Any, topology: Topology):
    if not isinstance(demand, dict) or not ({"poisson", "trace"} & set(demand)):
        raise ConfigError(f"{where}: demand needs 'poisson' (a list of pairs with rates) or 'trace' (a CSV file)")
    if "trace" in demand:
        trace = base / str(demand["trace"])
        if not trace.exists():
            raise ConfigError(f"{where}: trace file {trace} does not exist")
        return (), trace
    flows = []
    for entry in demand["poisson"] or []:
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: each poisson demand is a mapping, got {entry!r}")
        src, dst = (_known_node(where, entry.get(end), topology) for end in ("source", "destination"))
        if src == dst:
            raise ConfigError(f"{where}: demand {src}->{dst} has the same source and destination")
        rate, bits = entry.get("rate_per_s"), entry.get("key_bits", 256)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            raise ConfigError(f"{where}: demand {src}->{dst}: rate_per_s must be a positive number")
        if isinstance(bits, bool) or not isinstance(bits, int) or bits <= 0 or bits % 8:
            raise ConfigError(f"{where}: demand {src}->{dst}: key_bits must be a positive multiple of 8")
        flows.append(PoissonDemand(src, dst, float(rate), bits))
    if not flows:
        raise ConfigError(f"{where}: demand.poisson is empty")
    return tuple(flows), None


def _known_node(where: str, node: Any, topology: Topology) -> str:
    if not isinstance(node, str) or node not in topology.graph:
        raise ConfigError(f"{where}: demand names unknown node {node!r}")
    return node


EVENT_FORMS = ("{at_s: SECONDS, cut: [NODE, NODE]}, {at_s: SECONDS, restore: [NODE, NODE]}, "
               "{at_s: SECONDS, impair: [NODE, NODE], with: {FIELD: VALUE, ...}} or "
               "{at_s: SECONDS, burst: {source: NODE, destination: NODE, requests: N, key_bits: BITS}}")


def _event(where: str, event: Any, topology: Topology) -> LinkEvent:
    if isinstance(event, dict) and "burst" in event:
        return _burst(where, event, topology)
    kinds = [k for k in ("cut", "restore", "impair") if isinstance(event, dict) and k in event]
    allowed = {"at_s", *kinds, "with"} if kinds == ["impair"] else {"at_s", *kinds}
    if not (len(kinds) == 1 and set(event) <= allowed and "at_s" in event and isinstance(event[kinds[0]], list)
            and len(event[kinds[0]]) == 2 and all(isinstance(end, str) for end in event[kinds[0]])
            and isinstance(event["at_s"], (int, float)) and not isinstance(event["at_s"], bool)
            and math.isfinite(event["at_s"]) and event["at_s"] >= 0):
        raise ConfigError(f"{where}: an event is {EVENT_FORMS}; got {event!r}")
    kind = kinds[0]
    u, v = event[kind]
    if not topology.graph.has_edge(u, v):
        raise ConfigError(f"{where}: event {kind} names {u}-{v}, which is not a link")
    impairment = None
    if kind == "impair":
        fields = event.get("with") or {}
        if not isinstance(fields, dict) or set(fields) - IMPAIRMENT_FIELDS:
            raise ConfigError(f"{where}: an impairment has the fields {', '.join(sorted(IMPAIRMENT_FIELDS))}; "
                              f"got {fields!r}")
        try:
            impairment = Impairment(**fields)
        except (TypeError, QkdnetError) as exc:
            raise ConfigError(f"{where}: impairment of {u}-{v}: {exc}") from None
    return LinkEvent(float(event["at_s"]), kind, u, v, impairment)


def _burst(where: str, event: dict, topology: Topology) -> LinkEvent:
    burst = event["burst"]
    at_s = event.get("at_s")
    if not (set(event) == {"at_s", "burst"} and isinstance(burst, dict)
            and {"source", "destination", "requests"} <= set(burst) <= {"source", "destination", "requests", "key_bits"}
            and isinstance(at_s, (int, float)) and not isinstance(at_s, bool) and math.isfinite(at_s) and at_s >= 0):
        raise ConfigError(f"{where}: an event is {EVENT_FORMS}; got {event!r}")
    source = _known_node(where, burst["source"], topology)
    destination = _known_node(where, burst["destination"], topology)
    requests, key_bits = burst["requests"], burst.get("key_bits", 256)
    if not (isinstance(requests, int) and not isinstance(requests, bool) and 1 <= requests <= MAX_BURST_REQUESTS):
        raise ConfigError(f"{where}: a burst's requests must be an integer from 1 to {MAX_BURST_REQUESTS}")
    if not (isinstance(key_bits, int) and not isinstance(key_bits, bool) and key_bits > 0 and key_bits % 8 == 0):
        raise ConfigError(f"{where}: a burst's key_bits must be a positive multiple of 8")
    if source == destination:
        raise ConfigError(f"{where}: a burst needs two different nodes")
    return LinkEvent(float(at_s), "burst", source, destination, requests=requests, key_bits=key_bits)


MAX_BURST_REQUESTS = 100_000
IMPAIRMENT_FIELDS = {f.name for f in dataclasses.fields(Impairment)}
