"""Live state from node status: what routing may use."""

import dataclasses

from qkdnet.node.routing import LiveState, RouteRequest
from qkdnet.node.status import LinkStatus, NodeStatus
from qkdnet.orchestrator.topology import load


def _link(**fields) -> LinkStatus:
    base = dict(link_id="", peer="", role="", state="running", length_km=0.0, blocks_accepted=0, blocks_aborted=0,
                last_abort_reason="", qber=0.0, sifted_bits=0, generated_bits=0, pool_bits=0, consumed_bits=0,
                discarded_bits=0, emulated_seconds=0.0, sifted_bits_per_s=0.0, secret_bits_per_s=0.0, auth_bits=0,
                sendable_bits=0)
    return LinkStatus(**{**base, **fields})


def _status(levels: dict, states: dict | None = None, qber: float = 0.01, dead: tuple = ()) -> dict:
    states = states or {}
    links: dict[str, list[LinkStatus]] = {n: [] for n in ("n0", "n1", "n2", "n3")}
    for (u, v), level in levels.items():
        for me, peer, role in ((u, v, "transmitter"), (v, u, "receiver")):
            links[me].append(_link(peer=peer, role=role, pool_bits=2 * level, sendable_bits=level, qber=qber,
                                   blocks_aborted=1, state=states.get((u, v), "running"), secret_bits_per_s=100.0))
    nodes = {n: NodeStatus(n, tuple(l), 0, 0, 0, 0) for n, l in links.items()}
    return {n: (None if n in dead else s) for n, s in nodes.items()}


RING = {("n0", "n1"): 5000, ("n1", "n2"): 5000, ("n2", "n3"): 5000, ("n3", "n0"): 100}


def test_usable_graph_drops_exhausted_cut_aborted_links_and_dead_nodes():
    live = LiveState.of(load("ring:4"))
    live.update(_status(RING, {("n1", "n2"): "cut"}))
    graph = live.usable_graph(RouteRequest("n0", "n2", 256))
    assert set(graph.edges) == {("n0", "n1"), ("n1", "n0"), ("n2", "n3"), ("n3", "n2")}

    live.update(_status(RING, qber=0.2))
    assert live.usable_graph(RouteRequest("n0", "n2", 64)).number_of_edges() == 0  # every link aborted

    live.update(_status(RING, dead=("n3",)))
    graph = live.usable_graph(RouteRequest("n0", "n2", 64))
    assert "n3" not in graph and graph.number_of_edges() == 4


def test_each_direction_is_usable_only_while_its_sender_holds_key():
    status = _status(RING)
    n0 = status["n0"]  # n0 has spent its half of n0-n1; n1 still holds its own
    status["n0"] = dataclasses.replace(n0, links=tuple(dataclasses.replace(l, sendable_bits=0) if l.peer == "n1" else l
                                                       for l in n0.links))
    live = LiveState.of(load("ring:4"))
    live.update(status)
    graph = live.usable_graph(RouteRequest("n0", "n2", 256))
    assert not graph.has_edge("n0", "n1") and graph.has_edge("n1", "n0")
    assert graph["n1"]["n0"]["pool_bits"] == 5000


def test_reserve_holds_back_key_until_the_next_poll():
    live = LiveState.of(load("ring:4"))
    live.update(_status(RING))
    live.reserve([["n0", "n1", "n2"]], 4900)
    graph = live.usable_graph(RouteRequest("n0", "n2", 256))
    assert not graph.has_edge("n0", "n1") and graph.has_edge("n1", "n0")  # only the direction used
    assert graph.has_edge("n2", "n3")
    live.update(_status(RING))
    assert live.usable_graph(RouteRequest("n0", "n2", 256)).has_edge("n0", "n1")
