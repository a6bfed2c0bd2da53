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

from node.errors import InvalidRequest, QkdnetError
from node.keystore.store import NodeStore
from node.rpc.errors import NodeErrorInterceptor
from node.rpc.peer_client import CHANNEL_OPTIONS, GrpcPeer
from node.rpc.servicers import ControlServicer, LinkServicer, RelayServicer
from node.settings import NodeSettings
from node.trusted_node import TrustedNode
from qkdnet_proto.v1 import node_pb2_grpc as rpc

if TYPE_CHECKING:
    from node.key_service import KeyService
    from node.kme.api import KmeServer

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
        from node.key_service import KeyService
        from node.kme.api import server_ssl_context, start_kme

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


async def serve(name: str, data_dir: pathlib.Path, host: str = "127.0.0.1", port: int = 0) -> None:
    stop = asyncio.Event()
    store = NodeStore.open(data_dir / "keys.db")
    node = TrustedNode(name, GrpcPeer, store)
    kme = KmeHolder(node)
    server = grpc.aio.server(options=CHANNEL_OPTIONS, interceptors=[NodeErrorInterceptor()])
    rpc.add_LinkServicer_to_server(LinkServicer(node), server)
    rpc.add_RelayServicer_to_server(RelayServicer(node.relay), server)
    rpc.add_ControlServicer_to_server(ControlServicer(node, stop, kme), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
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

    parser = argparse.ArgumentParser(prog="python -m node", description="Run one qkdnet trusted node.")
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--data-dir", type=pathlib.Path,
                        help="durable key store directory (default: a temporary one, removed at exit)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {args.name} %(levelname)s %(message)s")
    die_with_parent()
    data_dir = args.data_dir or pathlib.Path(tempfile.mkdtemp(prefix=f"qkdnet-{args.name}-"))
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        asyncio.run(serve(args.name, data_dir, args.host, args.port))
    except KeyboardInterrupt:
        pass
    except QkdnetError as exc:  # e.g. a store whose audit log does not verify: one line, no start
        print(f"node {args.name}: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0
