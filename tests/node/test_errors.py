"""One error hierarchy, one table of status codes, and the same class back on the client side."""

import pytest

from qkdnet.node import errors
from qkdnet.node.errors import (
    STATUS,
    BadLinkKey,
    Conflict,
    DuplicateKey,
    InvalidRequest,
    KeyNotAvailable,
    LinkKeyShortage,
    NodeError,
    NoKeyPath,
    NotFound,
    QkdnetError,
    RelayError,
    StoreFailure,
    StoreFull,
    Unauthenticated,
    Unavailable,
    error_class,
    status_of,
)
from qkdnet.orchestrator.errors import NodeFailure, TopologyError


@pytest.mark.parametrize("error, grpc_code, http", [
    (InvalidRequest("x"), "INVALID_ARGUMENT", 400),
    (BadLinkKey("x"), "INVALID_ARGUMENT", 400),
    (KeyNotAvailable("x"), "NOT_FOUND", 400),
    (DuplicateKey("x"), "FAILED_PRECONDITION", 400),
    (RelayError("x"), "UNAVAILABLE", 503),
    (StoreFull("x"), "UNAVAILABLE", 503),
    (StoreFailure("x"), "UNAVAILABLE", 503),
    (LinkKeyShortage("x"), "UNAVAILABLE", 503),
    (NoKeyPath("x"), "UNAVAILABLE", 503),
    (Unauthenticated("x"), "UNAUTHENTICATED", 401),
    (NodeError("x"), "INTERNAL", 500),
])
def test_each_error_has_one_status(error, grpc_code, http):
    assert (status_of(error).grpc_code, status_of(error).http_status) == (grpc_code, http)


def test_a_class_name_or_a_bare_code_rebuilds_the_error():
    assert error_class("RelayError") is RelayError
    assert error_class("NoSuchThing", "NOT_FOUND") is NotFound
    assert error_class("", "FAILED_PRECONDITION") is Conflict
    assert error_class("", "UNKNOWN") is NodeError
    assert all(issubclass(kind, tuple(STATUS)) for kind in (Unavailable, InvalidRequest))


def test_every_error_is_a_qkdnet_error_the_cli_prints_as_one_line():
    for cls in (NodeError, NodeFailure, TopologyError, *vars(errors).values()):
        if isinstance(cls, type) and issubclass(cls, Exception) and cls is not Exception:
            assert issubclass(cls, QkdnetError), cls
