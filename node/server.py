"""The node process: a grpc.aio server around one TrustedNode, with health and clean shutdown.

It binds 127.0.0.1 on a free port unless told otherwise, prints one JSON ready line with its
address on stdout, and stops on SIGTERM/SIGINT, on Control.Shutdown, or when its parent dies.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import pathlib
import shutil
import signal
import ssl
import sys
import tempfile
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from qkdnet.node.errors import InvalidRequest, QkdnetError
from qkdnet.node.keystore.store import NodeStore
from qkdnet.node.rpc.errors import NodeInterceptor
from qkdnet.node.rpc.peer_client import CHANNEL_OPTIONS, GrpcPeer
from qkdnet.node.rpc.servicers import ControlServicer, LinkServicer, RelayServicer
from qkdnet.node.rpc.tls import TlsIdentity, server_credentials
from qkdnet.node.settings import NodeSettings
from qkdnet.node.trusted_node import TrustedNode
from qkdnet_proto.v1 import node_pb2_grpc as rpc

if TYPE_CHECKING:
    from qkdnet.node.key_service import KeyService
    from qkdnet.node.kme.api import KmeServer

log = logging.getLogger("node")


def die_with_parent() -> None:
    """Linux: SIGTERM this process when the parent (the orchestrator) dies, however it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class KmeHolder:
    """Starts the node's ETSI GS QKD 014 endpoint once its configuration names one."""

    def __init__(self, node: TrustedNode) -> None:
        self.node = node
        self.url = ""
        self._server: KmeServer | None = None
        self._service: KeyService | None = None

    async def start(self, settings: NodeSettings) -> None:
        if settings.kme is None:
            return
        # Deferred: aiohttp is only needed with a KME.
        from qkdnet.node.key_service import KeyService
        from qkdnet.node.kme.api import server_ssl_context, start_kme

        k = settings.kme
        service = KeyService.of(self.node, k)
        try:
            context = server_ssl_context(k.cert_file, k.key_file, k.ca_file)
            self._server = await start_kme(service, k.host, k.port, context)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidRequest(f"KME endpoint {k.host}:{k.port}: {exc}") from None
        self._service = service
        self.url = self._server.url
        service.start()

    async def stop(self) -> None:
        if self._service is not None:
            await self._service.stop()
        if self._server is not None:
            await self._server.close()


async def serve(name: str, data_dir: pathlib.Path, host: str = "127.0.0.1", port: int = 0,
                identity: TlsIdentity | None = None) -> None:
    """``identity``: the node's certificate, key and CA (mutual TLS on every call, each caller
    authorised); None only for a development node started with ``--insecure``."""
    stop = asyncio.Event()
    store = NodeStore.open(data_dir / "keys.db")

    def peer(peer_name: str, address: str) -> GrpcPeer:
        return GrpcPeer(peer_name, address, identity)

    node = TrustedNode(name, peer, store)
    kme = KmeHolder(node)
    policy = NodeInterceptor(node.neighbours if identity is not None else None)
    server = grpc.aio.server(options=CHANNEL_OPTIONS, interceptors=[policy])
    rpc.add_LinkServicer_to_server(LinkServicer(node), server)
    rpc.add_RelayServicer_to_server(RelayServicer(node.relay), server)
    rpc.add_ControlServicer_to_server(ControlServicer(node, stop, kme), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"{host}:{port}"
    bound = (server.add_secure_port(address, server_credentials(identity)) if identity is not None
             else server.add_insecure_port(address))
    if bound == 0:
        raise SystemExit(f"node {name}: cannot bind {host}:{port}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"event": "ready", "name": name, "address": f"{host}:{bound}"}), flush=True)
    await stop.wait()
    await health_servicer.enter_graceful_shutdown()
    await kme.stop()
    await node.close()
    await server.stop(grace=0.5)
    await store.close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m qkdnet.node", description="Run one qkdnet trusted node.")
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--data-dir", type=pathlib.Path,
                        help="durable key store directory (default: a temporary one, removed at exit)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--cert", type=pathlib.Path, help="the node's certificate (PEM; common name = --name)")
    parser.add_argument("--key", type=pathlib.Path, help="its private key")
    parser.add_argument("--ca", type=pathlib.Path, help="the network's CA: every caller must present a certificate "
                                                         "it issued")
    parser.add_argument("--insecure", action="store_true",
                        help="no TLS and no authorisation (development only; anyone local may call anything)")
    args = parser.parse_args(argv)
    given = [args.cert, args.key, args.ca]
    if args.insecure == any(given) or (not args.insecure and not all(given)):
        parser.error("give --cert, --key and --ca (mutual TLS), or --insecure")
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {args.name} %(levelname)s %(message)s")
    die_with_parent()
    data_dir = args.data_dir or pathlib.Path(tempfile.mkdtemp(prefix=f"qkdnet-{args.name}-"))
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        identity = None if args.insecure else TlsIdentity.load(args.cert, args.key, args.ca)
        asyncio.run(serve(args.name, data_dir, args.host, args.port, identity))
    except KeyboardInterrupt:
        pass
    except QkdnetError as exc:  # e.g. a store whose audit log does not verify: one line, no start
        print(f"node {args.name}: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0
