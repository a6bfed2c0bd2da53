"""Every input is validated: whatever a topology file, a generator spec or an experiment file
holds, loading it gives a topology (or config) or one ``QkdnetError``, never another exception.

Hypothesis draws structured nonsense shaped like the real files (the known keys with values of
any type) and plain nonsense; a fixed seed and example budget keep the run reproducible.
"""

import json
import pathlib
import tempfile

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qkdnet.node.errors import QkdnetError
from qkdnet.orchestrator.experiment.config import load_config
from qkdnet.orchestrator.topology import Topology, load

SCALARS = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=12)
NODE_NAMES = st.sampled_from(["A", "B", "C", ".", "..", "-x", "a/b", "", "n0"]) | st.text(max_size=6)
LINK = st.fixed_dictionaries({"source": NODE_NAMES, "target": NODE_NAMES},
                             optional={"length_km": SCALARS, "attenuation_db_per_km": SCALARS, "pulse_rate_hz": SCALARS,
                                       "detector_efficiency": SCALARS, "nonsense": VALUES})
TOPOLOGY = st.fixed_dictionaries({}, optional={
    "name": VALUES, "nodes": st.lists(NODE_NAMES, max_size=5) | VALUES, "links": st.lists(LINK, max_size=5) | VALUES,
    "defaults": st.dictionaries(st.sampled_from(["preset", "length_km", "mu_signal", "p_z_alice", "x"]), SCALARS)
    | VALUES,
    "processing": st.dictionaries(st.sampled_from(["block_detections", "epsilon_sec", "cascade_passes", "y"]), SCALARS)
    | VALUES,
    "pool_capacity_bits": SCALARS, "time_scale": SCALARS, "saes": VALUES, "routing": VALUES, "surprise": VALUES})
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _load_text(text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / f"topology{suffix}"
        path.write_text(text)
        try:
            topology = load(str(path))
        except QkdnetError as error:
            assert "\n" not in str(error)
        else:
            assert isinstance(topology, Topology) and topology.nodes


@FUZZ
@given(TOPOLOGY)
def test_yaml_topologies_load_or_fail_in_one_line(data):
    _load_text(yaml.safe_dump(data), ".yaml")


@FUZZ
@given(st.fixed_dictionaries({"nodes": st.lists(st.fixed_dictionaries({"id": NODE_NAMES}), max_size=4) | VALUES,
                              "links": st.lists(LINK, max_size=4) | VALUES},
                             optional={"graph": VALUES, "directed": VALUES, "multigraph": VALUES}) | VALUES)
def test_json_topologies_load_or_fail_in_one_line(data):
    _load_text(json.dumps(data), ".json")


@FUZZ
@given(st.binary(max_size=200).map(lambda b: b.decode("latin-1")), st.sampled_from([".yaml", ".json", ".graphml",
                                                                                    ".gml"]))
def test_garbage_files_fail_in_one_line(text, suffix):
    _load_text(text, suffix)


@FUZZ
@given(st.sampled_from(["line", "ring", "star", "grid", "mesh"]), st.integers(-5, 5000), st.integers(-5, 5000))
def test_generator_specs_load_or_fail_in_one_line(kind, a, b):
    for spec in (f"{kind}:{a}", f"{kind}:{a}x{b}"):
        try:
            topology = load(spec)
        except QkdnetError:
            continue
        assert 2 <= len(topology.nodes) <= 1000


EXPERIMENT = st.fixed_dictionaries({"topology": st.sampled_from(["line:3", "ring:4"]) | VALUES}, optional={
    "name": VALUES, "duration_s": SCALARS, "warmup_s": SCALARS, "time_scale": SCALARS, "poll_s": SCALARS,
    "seeds": VALUES, "repetitions": SCALARS, "request_timeout_s": SCALARS, "retries": SCALARS,
    "strategies": st.lists(st.sampled_from(["fewest_hops", "multipath", "dijkstra"]) | VALUES, max_size=3) | VALUES,
    "demand": st.fixed_dictionaries({"poisson": st.lists(st.fixed_dictionaries({
        "source": NODE_NAMES, "destination": NODE_NAMES, "rate_per_s": SCALARS}), max_size=3)}) | VALUES,
    "events": st.lists(st.fixed_dictionaries({"at_s": SCALARS, "cut": VALUES}), max_size=2) | VALUES,
    "link_changes": VALUES})


@FUZZ
@given(EXPERIMENT)
def test_experiment_configs_load_or_fail_in_one_line(data):
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "experiment.yaml"
        path.write_text(yaml.safe_dump(data))
        try:
            load_config(path)
        except QkdnetError as error:
            assert "\n" not in str(error)
