import pytest

from qkdnet.orchestrator.errors import TopologyError
from qkdnet.orchestrator.topology import load


def _write(tmp_path, text, name="t.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name", ["default", "secoqc_vienna_2008", "tokyo_qkd_2010"])
def test_shipped_topologies_load(name):
    topo = load(name)
    assert topo.links and all(l.params.length_km > 0 for l in topo.links)


def test_secoqc_matches_published_facts():
    topo = load("secoqc_vienna_2008")
    lengths = [l.params.length_km for l in topo.links]
    assert len(topo.nodes) == 6 and len(lengths) == 8
    assert min(lengths) == 6 and max(lengths) == 83 and sum(lengths) == pytest.approx(200, abs=5)


@pytest.mark.parametrize("spec,nodes,links", [("line:5", 5, 4), ("ring:6", 6, 6), ("star:4", 4, 3), ("grid:3x3", 9, 12)])
def test_generated_topologies(spec, nodes, links):
    topo = load(spec)
    assert len(topo.nodes) == nodes and len(topo.links) == links


def test_roles_are_deterministic():
    topo = load("line:3")
    assert [(l.transmitter, l.receiver) for l in topo.links] == [("n0", "n1"), ("n1", "n2")]


@pytest.mark.parametrize("text,message", [
    ("nodes: [A, B]\nlinks:\n  - {source: A, target: B, length_km: -3}\n", "length_km"),
    ("nodes: [A, B]\nlinks:\n  - {source: A, target: A}\n", "self-loop"),
    ("nodes: [A, A]\n", "duplicate node"),
    ("nodes: [A, B]\nlinks:\n  - {source: A, target: C}\n", "unknown node"),
    ("nodes: [A, B]\nlinks:\n  - {source: A, target: B, length_km: ten}\n", "must be a number"),
    ("nodes: [A, B]\nlinks:\n  - {source: A, target: B, colour: red}\n", "unknown link parameter"),
    ("nodes: [A\n", "not valid YAML"),
    ("nodes: [A, B]\ndeployment: {A: 'h:1'}\n", "does not say where node 'B' runs"),
    ("nodes: [A, B]\ndeployment: {A: 'h:1', B: 'h:2', C: 'h:3'}\n", "unknown node 'C'"),
    ("nodes: [A, B]\ndeployment: {A: 'h:1', B: 'h'}\n", "expected host:port"),
    ("nodes: [A, B]\ndeployment: {A: 'h:1', B: '0.0.0.0:5'}\n", "not one to dial"),
    ("nodes: [A, B]\ndeployment: {A: 'h:1', B: 'h:99999'}\n", "port must be a number"),
    ("nodes: [A, B]\ndeployment: [A, B]\n", "must map every node"),
    ("nodes: [A, B]\nlinks:\n  - {source: A, target: B, reconciler: turbo}\n", "reconciler must be one of"),
    ("nodes: [A, B]\nprocessing: {reconciler: turbo}\n", "reconciler must be one of"),
    ("nodes: [A, B]\nprocessing: {blocks_in_flight: 0}\n", "blocks_in_flight must be a whole number from 1 to 16"),
    ("nodes: [A, B]\nprocessing: {blocks_in_flight: 1.5}\n", "blocks_in_flight must be a whole number"),
])
def test_invalid_topologies_name_file_and_problem(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(TopologyError) as info:
        load(path)
    assert path in str(info.value) and message in str(info.value) and "\n" not in str(info.value)


def test_a_link_may_choose_its_own_reconciler(tmp_path):
    path = _write(tmp_path, "nodes: [A, B, C]\nprocessing: {reconciler: cascade}\n"
                            "links: [{source: A, target: B, reconciler: ldpc}, {source: B, target: C}]\n")
    topology = load(path)
    ab, bc = topology.link_between("A", "B"), topology.link_between("B", "C")
    assert topology.link_processing(ab).reconciler == "ldpc"
    assert topology.link_processing(bc).reconciler == "cascade"
    assert topology.link_processing(ab).block_detections == topology.processing.block_detections


def test_a_deployment_section_places_every_node(tmp_path):
    path = _write(tmp_path, "nodes: [A, B]\nlinks: [{source: A, target: B}]\n"
                            "deployment: {A: '10.0.0.1:50051', B: '[fd00::2]:50051'}\n")
    assert load(path).deployment == {"A": "10.0.0.1:50051", "B": "[fd00::2]:50051"}
    assert load("line:2").deployment == {}  # no section: the controller starts the nodes itself


def test_node_link_json_and_graphml(tmp_path):
    import json

    import networkx as nx
    graph = nx.path_graph(["X", "Y", "Z"])
    nx.set_edge_attributes(graph, 7.5, "length_km")
    json_path = tmp_path / "g.json"
    json_path.write_text(json.dumps(nx.node_link_data(graph, edges="links")))
    assert [l.params.length_km for l in load(str(json_path)).links] == [7.5, 7.5]
    graphml = tmp_path / "g.graphml"
    nx.write_graphml(graph, graphml)
    assert len(load(str(graphml)).links) == 2
    gml = tmp_path / "g.gml"
    nx.write_gml(graph, gml)
    assert len(load(str(gml)).links) == 2
