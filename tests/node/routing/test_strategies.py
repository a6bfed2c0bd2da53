"""Routing strategies on small graphs whose answers are known."""

import networkx as nx
import pytest

from qkdnet.node.errors import NoKeyPath, QkdnetError
from qkdnet.node.routing import RouteRequest, make_strategy


def _diamond() -> nx.Graph:
    """s-a-t is 2 hops of long fibre with a drained pool; s-b-c-t is 3 hops, short and full."""
    g = nx.Graph()
    cap = 1000
    g.add_edge("s", "a", length_km=50, pool_bits=100, pool_capacity_bits=cap)
    g.add_edge("a", "t", length_km=50, pool_bits=900, pool_capacity_bits=cap)
    g.add_edge("s", "b", length_km=5, pool_bits=800, pool_capacity_bits=cap)
    g.add_edge("b", "c", length_km=5, pool_bits=700, pool_capacity_bits=cap)
    g.add_edge("c", "t", length_km=5, pool_bits=600, pool_capacity_bits=cap)
    return g


REQ = RouteRequest("s", "t", 64)


def test_fewest_hops_takes_two_hops():
    assert make_strategy("fewest_hops").routes(_diamond(), REQ) == [["s", "a", "t"]]


def test_shortest_fibre_takes_fifteen_km():
    assert make_strategy("shortest_fibre").routes(_diamond(), REQ) == [["s", "b", "c", "t"]]


def test_widest_path_maximises_the_bottleneck_pool():
    # bottlenecks: s-a-t 100, s-b-c-t 600
    assert make_strategy("widest_path").routes(_diamond(), REQ) == [["s", "b", "c", "t"]]


def test_widest_path_by_rate_prefers_fewest_hops_among_equally_wide():
    g = nx.path_graph(["s", "x", "t"])
    g.add_edge("s", "t")
    nx.set_edge_attributes(g, 10.0, "secret_bits_per_s")
    assert make_strategy("widest_path", metric="secret_bits_per_s").routes(g, REQ) == [["s", "t"]]


def test_load_balancing_sums_scarcity_over_the_path():
    # costs: s-a-t 10 + 1.11 = 11.1; s-b-c-t 1.25 + 1.43 + 1.67 = 4.35
    assert make_strategy("load_balancing").routes(_diamond(), REQ) == [["s", "b", "c", "t"]]
    full = _diamond()
    nx.set_edge_attributes(full, 1000, "pool_bits")
    assert make_strategy("load_balancing").routes(full, REQ) == [["s", "a", "t"]]


def test_multipath_returns_node_disjoint_paths_shortest_first():
    paths = make_strategy("multipath", k=2).routes(_diamond(), REQ)
    assert paths == [["s", "a", "t"], ["s", "b", "c", "t"]]
    inner = [n for p in paths for n in p[1:-1]]
    assert len(inner) == len(set(inner))


def test_multipath_needs_k_disjoint_paths():
    with pytest.raises(NoKeyPath, match="only 2 node-disjoint"):
        make_strategy("multipath", k=3).routes(_diamond(), REQ)
    line = nx.path_graph(["s", "m", "t"])
    with pytest.raises(NoKeyPath, match="only 1"):
        make_strategy("multipath").routes(line, REQ)


@pytest.mark.parametrize("name", ["fewest_hops", "shortest_fibre", "widest_path", "load_balancing", "multipath"])
def test_every_strategy_reports_unroutable_requests(name):
    g = nx.Graph()
    g.add_nodes_from(["s", "t"])
    with pytest.raises(NoKeyPath):
        make_strategy(name).routes(g, REQ)
    with pytest.raises(NoKeyPath, match="unknown or down"):
        make_strategy(name).routes(g, RouteRequest("s", "zz"))


def test_unknown_strategy_and_bad_options_are_one_line_errors():
    with pytest.raises(QkdnetError, match="unknown routing strategy 'dijkstra'"):
        make_strategy("dijkstra")
    with pytest.raises(QkdnetError, match="k must be an integer >= 2"):
        make_strategy("multipath", k=1)
    with pytest.raises(QkdnetError, match="metric"):
        make_strategy("widest_path", metric="colour")
