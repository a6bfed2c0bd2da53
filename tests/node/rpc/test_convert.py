"""Conversions between protobuf and domain types: every field crosses, both ways."""

import dataclasses

import numpy as np
import pytest

from qkdnet.node.errors import InvalidRequest, RelayError
from qkdnet.node.keystore.link_pool import LinkKeyId
from qkdnet.node.relay.result import RelayFailure, RelayItem, RelayResult
from qkdnet.node.routing import LinkState, RoutingState
from qkdnet.node.rpc import convert
from qkdnet.node.settings import KmeSettings, NodeSettings
from qkdnet.node.status import LinkStatus, NodeStatus
from qkdnet_proto.v1 import node_pb2 as pb
from tests.node.inprocess import link_pair


def test_link_status_has_exactly_the_proto_fields():
    assert [f.name for f in dataclasses.fields(LinkStatus)] == [f.name for f in pb.LinkStatus.DESCRIPTOR.fields]


def test_status_round_trip():
    link = LinkStatus(**{f.name: (1.5 if f.type == "float" else 7 if f.type == "int" else "x")
                         for f in dataclasses.fields(LinkStatus)})
    status = NodeStatus("A", (link,), 3, 4, 5, 6, "https://kme")
    assert convert.status_from_pb(convert.status_to_pb(status)) == status


def test_settings_round_trip_with_kme_defaults_owned_by_kme_settings():
    tx, _ = link_pair("A", "B")
    routing = RoutingState("widest_path", {"metric": "pool_bits"}, ("A", "B"),
                           (LinkState("A", "B", 25.0, 1000, pool_bits=10, sendable_bits={"A": 4, "B": 6}),), 0.09)
    settings = NodeSettings("A", (tx,), 0.5, {"sae-a": "A"}, routing, KmeSettings(max_keys=7))
    assert convert.settings_from_pb(convert.settings_to_pb(settings)) == settings
    assert convert.kme_from_pb(pb.KmeConfig(key_ttl_s=0.0)) == KmeSettings(key_ttl_s=0.0)  # 0 means never
    assert convert.kme_from_pb(pb.KmeConfig()) == KmeSettings()  # no file names: the node has its own


def test_bad_configuration_is_an_invalid_request():
    tx, _ = link_pair("A", "B")
    message = convert.link_settings_to_pb(tx)
    message.role = "spectator"
    with pytest.raises(InvalidRequest, match="role"):
        convert.link_settings_from_pb(message)
    message = convert.link_settings_to_pb(tx)
    message.params_json = '{"length_km": -1}'
    with pytest.raises(InvalidRequest, match="A~B"):
        convert.link_settings_from_pb(message)
    with pytest.raises(InvalidRequest, match="JSON"):
        convert.routing_from_pb(pb.RoutingState(strategy_options_json="{"))


def test_relay_items_results_and_failures_round_trip():
    items = [RelayItem("k1", b"\x01" * 32, LinkKeyId(9, "a", 256, 256), "sae-1", "sae-2", 1, 2)]
    assert convert.items_from_pb(convert.items_to_pb(items)) == items
    ok = RelayResult("A", "C", (("A", "B", "C"),), ("k1", "k2"), 0.25, 1024)
    assert convert.result_from_pb(convert.result_to_pb(ok)) == ok
    failed = RelayResult.failed("A", "C", [["A", "B", "C"]], RelayError("B->C: no link key", ("B", "C")))
    back = convert.result_from_pb(convert.result_to_pb(failed))
    assert back == failed and back.failure == RelayFailure("RelayError", "B->C: no link key", ("B", "C"))
    error = back.failure.to_error()
    assert isinstance(error, RelayError) and error.failed_hop == ("B", "C")


def test_pool_inventories_round_trip():
    inventory = {("a", 3): np.array([True, False, True]), ("b", 4): np.ones(17, bool)}
    back = convert.inventory_from_pb(convert.inventory_to_pb("A~B", inventory))
    assert back.keys() == inventory.keys() and all(np.array_equal(back[k], v) for k, v in inventory.items())
