import pytest

from qkdnet.node.endpoint import Endpoint, dns_label, join_host_port, split_host_port
from qkdnet.node.errors import InvalidRequest


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:0", ("127.0.0.1", 0)),
    ("0.0.0.0:50051", ("0.0.0.0", 50051)),
    ("n3:50051", ("n3", 50051)),
    ("[::]:8443", ("::", 8443)),
    ("[fd00::1]:1", ("fd00::1", 1)),
])
def test_host_and_port(text, expected):
    assert split_host_port(text, "x") == expected
    assert split_host_port(join_host_port(*expected), "x") == expected


@pytest.mark.parametrize("text,message", [
    ("n3", "expected host:port"), ("n3:http", "port must be a number"), ("n3:70000", "port must be a number"),
    ("fd00::1:5", "IPv6 address in brackets"), ("[fd00::1", r"expected \[address\]:port"),
])
def test_bad_addresses_are_one_line(text, message):
    with pytest.raises(InvalidRequest, match=message):
        split_host_port(text, "gRPC listen address")


def test_advertised_address():
    assert Endpoint.parse("127.0.0.1:0", None, "gRPC").advertised(4321) == "127.0.0.1:4321"
    assert Endpoint.parse("0.0.0.0:50051", "n3", "gRPC").advertised(50051) == "n3:50051"
    assert Endpoint.parse("0.0.0.0:0", "gw.example:443", "gRPC").advertised(5555) == "gw.example:443"  # NAT
    wildcard = Endpoint.parse("0.0.0.0:1", None, "gRPC")
    assert wildcard.advertise_host not in ("0.0.0.0", "")  # this machine's host name
    with pytest.raises(InvalidRequest, match="name a host others can dial"):
        Endpoint.parse("0.0.0.0:1", "0.0.0.0", "gRPC")


def test_dns_labels():
    assert dns_label("A") == "a" and dns_label("node_7.west") == "node-7-west"
    assert dns_label("7up") is None and dns_label("x" * 64) is None
