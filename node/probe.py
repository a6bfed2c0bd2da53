"""A health probe for a node in a container or pod: exit 0 when its gRPC health service says
SERVING, 1 otherwise.

It speaks mutual TLS with the node's own identity (a node may ask its own health; see
``node.identity``), so the probe needs no credential the node does not already hold. Compose
health checks and Kubernetes readiness and liveness probes run it inside the node's container
(``python -m qkdnet.node.probe --identity-dir DIR --name NODE``).
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from qkdnet.node.errors import QkdnetError
from qkdnet.node.rpc.tls import TlsIdentity, secure_channel

PROBE_TIMEOUT_S = 5.0


async def probe(address: str, name: str, identity: TlsIdentity, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """The node's health status name (SERVING, NOT_SERVING, ...), or the RPC's error code name."""
    async with secure_channel(address, identity, name) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qkdnet.node.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("address", nargs="?", default="127.0.0.1:50051", help="the node's gRPC address")
    parser.add_argument("--name", required=True, help="the node's name (its certificate must say so)")
    parser.add_argument("--identity-dir", type=pathlib.Path, required=True, help="node.pem, node.key and ca.pem")
    args = parser.parse_args(argv)
    try:
        identity = TlsIdentity.load(args.identity_dir / "node.pem", args.identity_dir / "node.key",
                                    args.identity_dir / "ca.pem")
    except QkdnetError as exc:
        print(f"probe: {exc}", file=sys.stderr)
        return 2
    status = asyncio.run(probe(args.address, args.name, identity))
    print(f"{args.name} at {args.address}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
