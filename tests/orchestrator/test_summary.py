"""Link summaries (status, the run summary): every link, whichever end is down. The plain route
Network.route: it avoids links aborting for their QBER."""

from qkdnet.node.status import NodeStatus
from qkdnet.orchestrator.summary import link_summaries
from qkdnet.orchestrator.topology import load
from tests.orchestrator.test_supervisor import _link


def test_a_link_whose_transmitter_is_down_is_listed_down_as_its_receiver_sees_it():
    topology = load("line:2")
    transmitter, receiver = topology.links[0].transmitter, topology.links[0].receiver
    both = {transmitter: NodeStatus(transmitter, (_link(receiver, "transmitter"),), 0, 0, 0, 0),
            receiver: NodeStatus(receiver, (_link(transmitter, "receiver"),), 0, 0, 0, 0)}
    [up] = link_summaries(topology, both)
    assert up.state == "running" and up.link == f"{transmitter}-{receiver}"

    [down] = link_summaries(topology, {**both, transmitter: None})
    assert down.state == "down" and down.link == up.link and down.pool_bits == 3000
    [down] = link_summaries(topology, {**both, receiver: None})
    assert down.state == "down"
    assert link_summaries(topology, {transmitter: None, receiver: None}) == []


def test_the_plain_route_avoids_a_link_last_seen_aborting_for_its_qber():
    from qkdnet.orchestrator.network import Network

    network = Network(load("ring:4"))
    assert network.route("n0", "n1") == ["n0", "n1"]
    network.live.links[frozenset(("n0", "n1"))].aborted = True
    assert network.route("n0", "n1") == ["n0", "n3", "n2", "n1"]


def test_a_link_that_could_not_keep_up_with_its_clock_is_a_warning_naming_the_worst():
    import dataclasses

    from qkdnet.orchestrator.formatting import clock_warnings

    topology = load("line:3")
    status = {name: NodeStatus(name, tuple(_link(peer, "transmitter" if name < peer else "receiver")
                                           for peer in topology.graph.neighbors(name)), 0, 0, 0, 0)
              for name in topology.nodes}
    links = link_summaries(topology, status)
    assert clock_warnings(links) == []  # no clock (time scale 0): nothing to say
    slow = [dataclasses.replace(l, clock_ratio=r) for l, r in zip(links, (0.23, 0.6), strict=True)]
    [line] = clock_warnings(slow)
    assert "2 link(s)" in line and f"{links[0].link} made key for 23 %" in line
    assert clock_warnings([dataclasses.replace(l, clock_ratio=1.0) for l in links]) == []
