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
