"""The node process: a grpc.aio server around one TrustedNode, with health and clean shutdown.

A node runs anywhere on its own: it is given its name, where to listen and what address to
advertise (for its gRPC server and its ETSI 014 KME), its data directory and its identity
(certificate, key and CA files, or a directory holding them, e.g. a mounted secret). Nothing it
is told later over Control names a file. It binds 127.0.0.1 on free ports unless told otherwise,
prints one JSON ready line with its advertised address on stdout, and stops on SIGTERM/SIGINT or
Control.Shutdown (and, if its launcher asks with ``--die-with-parent``, when its parent dies).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import dataclasses
import json
import logging
import os
import pathlib
import shutil
import signal
import ssl
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from qkdnet.node.endpoint import WILDCARD_HOSTS, Endpoint, join_host_port
from qkdnet.node.errors import InvalidRequest, QkdnetError
from qkdnet.node.keystore.store import NodeStore
from qkdnet.node.rpc.errors import NodeInterceptor
from qkdnet.node.rpc.peer_client import CHANNEL_OPTIONS, GrpcPeer
from qkdnet.node.rpc.servicers import ControlServicer, LinkServicer, RelayServicer
from qkdnet.node.rpc.tls import TlsIdentity, server_credentials
from qkdnet.node.settings import NodeSettings
from qkdnet.node.trusted_node import TrustedNode
from qkdnet.node.web.metrics_endpoint import start_metrics
from qkdnet.node.web.server import server_ssl_context
from qkdnet_proto.v1 import node_pb2_grpc as rpc

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from qkdnet.node.key_service import KeyService
    from qkdnet.node.kme.api import KmeServer

log = logging.getLogger("node")


def enter_netns(name: str) -> None:
    """Move this (still single-threaded) process into the network namespace ``name`` (made by
    ``ip netns add``), before any socket or thread exists: everything it opens lives there."""
    try:
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    except OSError as exc:
        raise InvalidRequest(f"network namespace {name!r}: {exc.strerror}") from None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise InvalidRequest(f"network namespace {name!r}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


CLONE_NEWNET = 0x40000000


def die_with_parent() -> None:
    """Linux: SIGTERM this process when the parent (the orchestrator) dies, however it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


IDENTITY_FILES = {"cert": "node.pem", "key": "node.key", "ca": "ca.pem", "kme_cert": "kme.pem",
                  "kme_key": "kme.key"}  # in an --identity-dir (the layout of `qkdnet export`'s secrets)


class KmeHolder:
    """Starts the node's ETSI GS QKD 014 endpoint once its configuration asks for one, on the
    node's own KME address and with the node's own KME certificate."""

    def __init__(self, node: TrustedNode, endpoint: Endpoint, files: tuple[pathlib.Path, ...] | None) -> None:
        """``files``: the KME's certificate, key and the CA that signs SAE certificates."""
        self.node = node
        self.endpoint = endpoint
        self.files = files
        self.url = ""
        self._server: KmeServer | None = None
        self._service: KeyService | None = None

    async def start(self, settings: NodeSettings) -> None:
        if settings.kme is None:
            return
        if self.files is None:
            raise InvalidRequest(f"node {self.node.name} was started without a KME identity "
                                 "(--kme-cert and --kme-key, or kme.pem and kme.key in --identity-dir)")
        from qkdnet.node.key_service import KeyService
        from qkdnet.node.kme.api import start_kme

        service = KeyService.of(self.node, settings.kme)
        where = self.endpoint
        try:
            context = server_ssl_context(*map(str, self.files))
            self._server = await start_kme(service, where.listen_host, where.listen_port, context,
                                           where.advertise_host, where.advertise_port)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidRequest(f"KME endpoint {where.listen_host}:{where.listen_port}: {exc}") from None
        self._service = service
        self.url = self._server.url
        service.start()

    def metric_families(self) -> Iterator[Metric]:
        """The KME's request counts and durations, once it serves."""
        if self._server is not None:
            yield from self._server.api.requests.collect()
            yield from self._server.api.request_seconds.collect()

    async def stop(self) -> None:
        if self._service is not None:
            await self._service.stop()
        if self._server is not None:
            await self._server.close()


LOCAL = Endpoint("127.0.0.1", 0, "127.0.0.1")


async def serve(name: str, data_dir: pathlib.Path, grpc_endpoint: Endpoint = LOCAL, identity: TlsIdentity | None = None,
                kme_endpoint: Endpoint = LOCAL, kme_files: tuple[pathlib.Path, ...] | None = None,
                metrics_endpoint: Endpoint | None = LOCAL) -> None:
    """``identity``: the node's certificate, key and CA (mutual TLS on every call, each caller
    authorised); None only for a development node started with ``--insecure``. ``kme_files``:
    its KME's certificate, key and CA (None: no KME can be configured), which also serve
    /metrics at ``metrics_endpoint`` (None: no metrics; a secure node without KME files has none)."""
    stop = asyncio.Event()
    store = NodeStore.open(data_dir / "keys.db")

    def peer(peer_name: str, address: str) -> GrpcPeer:
        return GrpcPeer(peer_name, address, identity)

    node = TrustedNode(name, peer, store)
    kme = KmeHolder(node, kme_endpoint, kme_files)
    policy = NodeInterceptor(node.neighbours if identity is not None else None, name)
    server = grpc.aio.server(options=CHANNEL_OPTIONS, interceptors=[policy])
    rpc.add_LinkServicer_to_server(LinkServicer(node), server)
    rpc.add_RelayServicer_to_server(RelayServicer(node.relay), server)
    rpc.add_ControlServicer_to_server(ControlServicer(node, stop, kme), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = join_host_port(grpc_endpoint.listen_host, grpc_endpoint.listen_port)
    bound = (server.add_secure_port(address, server_credentials(identity)) if identity is not None
             else server.add_insecure_port(address))
    if bound == 0:
        raise InvalidRequest(f"cannot listen on {address} (in use, or not an address of this host)")
    await server.start()
    metrics = None
    if metrics_endpoint is not None and (identity is None or kme_files is not None):
        where = metrics_endpoint
        try:
            context = None if identity is None else server_ssl_context(*map(str, kme_files or ()))
            metrics = await start_metrics(node, kme.metric_families, where.listen_host, where.listen_port, context,
                                          where.advertise_host, where.advertise_port)
        except (OSError, ssl.SSLError) as exc:
            await server.stop(grace=0)
            raise InvalidRequest(f"metrics endpoint {where.listen_host}:{where.listen_port}: {exc}") from None
    node.metrics_url = f"{metrics.url}/metrics" if metrics is not None else ""
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"event": "ready", "name": name, "address": grpc_endpoint.advertised(bound),
                      "listen": join_host_port(grpc_endpoint.listen_host, bound), "metrics": node.metrics_url}),
          flush=True)
    await stop.wait()
    await health_servicer.enter_graceful_shutdown()
    if metrics is not None:
        await metrics.close()
    await kme.stop()
    await node.close()
    await server.stop(grace=0.5)
    await store.close()


def _beside(grpc_endpoint: Endpoint, endpoint: Endpoint, advertised: str | None) -> Endpoint:
    """An HTTP endpoint on the gRPC server's host (or a wildcard) advertises that host too."""
    if not advertised and endpoint.listen_host in (grpc_endpoint.listen_host, *WILDCARD_HOSTS):
        return dataclasses.replace(endpoint, advertise_host=grpc_endpoint.advertise_host)
    return endpoint


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # a user's mistake: one line, exit 2, no usage dump
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(prog="qkdnet node", description="Run one qkdnet trusted node.")
    parser.add_argument("--name", required=True, help="the node's name in the topology (its certificate's name)")
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="where the gRPC server listens (0.0.0.0 allowed; port 0 picks a free one)")
    parser.add_argument("--advertise", metavar="HOST[:PORT]",
                        help="the address neighbours and the controller dial (default: the listen address; "
                             "this machine's host name for a wildcard one)")
    parser.add_argument("--kme-listen", metavar="HOST:PORT",
                        help="where the ETSI GS QKD 014 API listens, once configured (default: the --listen "
                             "host, a free port)")
    parser.add_argument("--kme-advertise", metavar="HOST[:PORT]", help="the KME's host (and port) in its URL")
    parser.add_argument("--metrics-listen", metavar="HOST:PORT",
                        help="where Prometheus scrapes /metrics over mutual TLS with the KME certificate "
                             "(default: the --listen host, a free port)")
    parser.add_argument("--metrics-advertise", metavar="HOST[:PORT]", help="the metrics endpoint's host (and port) "
                                                                           "in its URL")
    parser.add_argument("--no-metrics", action="store_true", help="serve no /metrics endpoint")
    parser.add_argument("--data-dir", type=pathlib.Path,
                        help="durable key store directory (default: a temporary one, removed at exit)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--identity-dir", type=pathlib.Path, metavar="DIR",
                        help="a directory (e.g. a mounted secret) with " + ", ".join(IDENTITY_FILES.values()))
    parser.add_argument("--cert", type=pathlib.Path, help="the node's certificate (PEM; common name = --name)")
    parser.add_argument("--key", type=pathlib.Path, help="its private key")
    parser.add_argument("--ca", type=pathlib.Path, help="the network's CA: every caller must present a certificate "
                                                         "it issued")
    parser.add_argument("--kme-cert", type=pathlib.Path, help="the KME's server certificate (PEM)")
    parser.add_argument("--kme-key", type=pathlib.Path, help="its private key")
    parser.add_argument("--insecure", action="store_true",
                        help="no TLS and no authorisation (development only; anyone local may call anything)")
    parser.add_argument("--netns", metavar="NAME", help="run in this network namespace (root; `ip netns add`)")
    parser.add_argument("--die-with-parent", action="store_true",
                        help="stop when the process that started this one dies (what a local launcher wants)")
    args = parser.parse_args(argv)
    if args.identity_dir is not None:
        for option, file_name in IDENTITY_FILES.items():
            path = args.identity_dir / file_name
            if getattr(args, option) is None and (path.exists() or option in ("cert", "key", "ca")):
                setattr(args, option, path)
    given = [args.cert, args.key, args.ca]
    if args.insecure == any(given) or (not args.insecure and not all(given)):
        parser.error("give --identity-dir, or --cert, --key and --ca (mutual TLS), or --insecure")
    if (args.kme_cert is None) != (args.kme_key is None):
        parser.error("give both --kme-cert and --kme-key, or neither")
    try:
        grpc_endpoint = Endpoint.parse(args.listen, args.advertise, "gRPC")
        kme_listen = args.kme_listen or f"{args.listen.rsplit(':', 1)[0]}:0"
        kme_endpoint = _beside(grpc_endpoint, Endpoint.parse(kme_listen, args.kme_advertise, "KME"), args.kme_advertise)
        metrics_listen = args.metrics_listen or f"{args.listen.rsplit(':', 1)[0]}:0"
        metrics_endpoint = None if args.no_metrics else _beside(
            grpc_endpoint, Endpoint.parse(metrics_listen, args.metrics_advertise, "metrics"), args.metrics_advertise)
        identity = None if args.insecure else TlsIdentity.load(args.cert, args.key, args.ca)
        kme_files = None if args.kme_cert is None or args.ca is None else (args.kme_cert, args.kme_key, args.ca)
        for path in kme_files or ():
            if not path.is_file():
                raise InvalidRequest(f"{path}: no such file")
    except QkdnetError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {args.name} %(levelname)s %(message)s")
    if args.die_with_parent:
        die_with_parent()
    if args.netns:
        try:
            enter_netns(args.netns)
        except QkdnetError as exc:
            print(f"node {args.name}: {exc}", file=sys.stderr)
            return 1
    data_dir = args.data_dir or pathlib.Path(tempfile.mkdtemp(prefix=f"qkdnet-{args.name}-"))
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        asyncio.run(serve(args.name, data_dir, grpc_endpoint, identity, kme_endpoint, kme_files, metrics_endpoint))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"node {args.name}: {exc.filename or data_dir}: {exc.strerror}", file=sys.stderr)
        return 1
    except QkdnetError as exc:  # e.g. a store whose audit log does not verify: one line, no start
        print(f"node {args.name}: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0
