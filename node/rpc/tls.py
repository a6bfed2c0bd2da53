"""Mutual TLS for the node's gRPC planes: credentials from one identity's files.

Layer: RPC adapter. Every node serves with its certificate and requires a client certificate
from the same CA; every client (a node to its neighbour, the orchestrator to a node) presents
its own and checks the server's against the name it expects (the node's name, which its
certificate carries as a DNS name), whatever address it dialled.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from qkdnet.node.errors import InvalidRequest


@dataclass(frozen=True)
class TlsIdentity:
    cert: bytes = field(repr=False)
    key: bytes = field(repr=False)
    ca: bytes = field(repr=False)

    @classmethod
    def load(cls, cert_file: pathlib.Path | str, key_file: pathlib.Path | str,
             ca_file: pathlib.Path | str) -> TlsIdentity:
        try:
            return cls(pathlib.Path(cert_file).read_bytes(), pathlib.Path(key_file).read_bytes(),
                       pathlib.Path(ca_file).read_bytes())
        except OSError as exc:
            raise InvalidRequest(f"{exc.filename}: cannot read ({exc.strerror})") from None


def server_credentials(identity: TlsIdentity) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(identity.key, identity.cert)], root_certificates=identity.ca,
                                       require_client_auth=True)


def secure_channel(address: str, identity: TlsIdentity, server_name: str,
                   options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A channel to ``address`` that accepts only a server certified as ``server_name``."""
    credentials = grpc.ssl_channel_credentials(root_certificates=identity.ca, private_key=identity.key,
                                               certificate_chain=identity.cert)
    return grpc.aio.secure_channel(address, credentials,
                                   options=[*options, ("grpc.ssl_target_name_override", server_name)])
