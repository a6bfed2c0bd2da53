"""The running network: one process per trusted node, driven over the Control service.

Layer: control plane only. It launches ``python -m node`` per node on free loopback ports,
waits for each to report ready and pass its gRPC health check, configures the links (roles
from the topology, a bootstrap authentication secret per link that QKD key replaces), orders
relays along routes and collects status. It never receives key material: relays return key
IDs, listings return digests. Every process it starts is ended by ``stop``; nodes also die with
the orchestrator (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import grpc
import networkx as nx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from qkdnet_proto.v1 import node_pb2 as pb
from qkdnet_proto.v1 import node_pb2_grpc as rpc

from node.rpc.streams import StreamBroken, StreamMux
from node.settings import params_to_json, processing_to_json
from orchestrator import certs as pki
from orchestrator.errors import NodeFailure, QkdnetError
from orchestrator.launcher import NodeProcess, default_launcher
from orchestrator.routing import key_path
from orchestrator.topology import Topology

Progress = Callable[[str], None]
BOOTSTRAP_SECRET_BYTES = 4096


@dataclass
class NodeHandle:
    name: str
    process: NodeProcess
    address: str = ""
    kme_url: str = ""
    channel: grpc.aio.Channel | None = None
    control: rpc.ControlStub | None = None
    relays: StreamMux | None = None  # relay orders multiplexed on one stream
    failure: str = ""
    stderr_tail: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RelayReport:
    source: str
    destination: str
    path: list[str]
    key_ids: list[str]
    latencies_s: list[float]
    link_bits_consumed: int
    error: str = ""
    paths: list[list[str]] = field(default_factory=list)  # all routes; more than one: XOR shares


class Network:
    def __init__(self, topology: Topology, time_scale: float | None = None, seed: int | None = None,
                 log_level: str = "WARNING", data_dir: pathlib.Path | None = None, kme: bool = True,
                 certs: pki.CertPaths | None = None) -> None:
        """data_dir holds each node's key store (nodes/<name>) and the development PKI (certs/);
        without one a temporary directory is used and removed by ``stop``. ``certs``: an existing
        PKI (``certs.load``) instead of a fresh one."""
        self.topology = topology
        self.time_scale = topology.time_scale if time_scale is None else time_scale
        self.seed = seed if seed is not None else secrets.randbits(32)
        self.log_level = log_level
        self.nodes: dict[str, NodeHandle] = {}
        self._watchers: list[asyncio.Task] = []
        self._temporary = tempfile.TemporaryDirectory(prefix="qkdnet-") if data_dir is None else None
        self.data_dir = pathlib.Path(self._temporary.name) if self._temporary else data_dir
        self.kme = kme
        self.certs: pki.CertPaths | None = certs
        self._configs: dict[str, pb.NodeConfig] = {}
        self._launcher = default_launcher()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, progress: Progress | None = None, timeout_s: float = 120.0) -> None:
        started = time.monotonic()
        try:
            await asyncio.wait_for(self._launch_all(progress), timeout_s)
            await asyncio.wait_for(self._configure_all(), timeout_s)
        except BaseException:
            await self.stop()
            raise
        if progress:
            progress(f"{len(self.nodes)} nodes up and configured in {time.monotonic() - started:.1f} s")

    async def _launch_all(self, progress: Progress | None) -> None:
        if self.kme and self.certs is None:
            self.certs = await asyncio.to_thread(pki.create, self.topology, self.data_dir / "certs")
        for name in self.topology.nodes:
            self.nodes[name] = NodeHandle(name, await self._spawn(name))
        pending = list(self.nodes.values())
        done = 0
        for handle in pending:
            await self._await_ready(handle)
            done += 1
            if progress and (done % 10 == 0 or done == len(pending)):
                progress(f"nodes ready: {done}/{len(pending)}")
        await asyncio.gather(*(self._healthy(h) for h in pending))

    async def _spawn(self, name: str, port: int = 0) -> NodeProcess:
        return await self._launcher.spawn(["--name", name, "--log-level", self.log_level, "--port", str(port),
                                           "--data-dir", str(self.data_dir / "nodes" / name)])

    async def _await_ready(self, handle: NodeHandle) -> None:
        line = await handle.process.stdout.readline()
        if not line:
            err = (await handle.process.stderr.read()).decode(errors="replace").strip().splitlines()
            raise NodeFailure(f"node {handle.name} exited before it was ready: {err[-1] if err else 'no output'}")
        handle.address = json.loads(line)["address"]
        handle.channel = grpc.aio.insecure_channel(handle.address)
        handle.control = rpc.ControlStub(handle.channel)
        handle.relays = StreamMux(handle.control.RelayStream, pb.RelayRequests)
        self._watchers.append(asyncio.create_task(self._watch(handle)))

    async def _healthy(self, handle: NodeHandle) -> None:
        stub = health_pb2_grpc.HealthStub(handle.channel)
        for _ in range(200):
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.05)
        raise NodeFailure(f"node {handle.name} never became healthy")

    async def _watch(self, handle: NodeHandle) -> None:
        async for raw in handle.process.stderr:
            handle.stderr_tail = (handle.stderr_tail + [raw.decode(errors="replace").rstrip()])[-5:]
        code = await handle.process.wait()
        if not handle.failure:
            handle.failure = f"exited with code {code}" + (f": {handle.stderr_tail[-1]}" if handle.stderr_tail else "")

    def _link_config(self, link, me: str, secret: bytes, index: int) -> pb.LinkConfig:
        topo = self.topology
        peer, role = (link.receiver, "transmitter") if me == link.transmitter else (link.transmitter, "receiver")
        return pb.LinkConfig(
            link_id=link.link_id, peer=peer, peer_address=self.nodes[peer].address, role=role,
            params_json=params_to_json(link.params), processing_json=processing_to_json(topo.processing),
            bootstrap_secret=secret, pool_capacity_bits=topo.pool_capacity_bits,
            seed=(self.seed * 1_000_003 + index) % (1 << 63))

    def _node_config(self, name: str) -> pb.NodeConfig:
        config = pb.NodeConfig(name=name, time_scale=self.time_scale, sae_nodes=self.topology.saes)
        graph = self.topology.graph
        for destination, path in nx.single_source_shortest_path(graph, name).items():
            if destination != name:
                config.routes.append(pb.Route(path=path))
        if self.certs is not None:
            cert, key = self.certs.kme[name]
            config.kme.CopyFrom(pb.KmeConfig(host="127.0.0.1", port=0, cert_file=str(cert), key_file=str(key),
                                             ca_file=str(self.certs.ca_file), key_ttl_s=3600.0))
        return config

    async def _configure_all(self) -> None:
        configs = {name: self._node_config(name) for name in self.nodes}
        for index, link in enumerate(self.topology.links):
            secret = secrets.token_bytes(BOOTSTRAP_SECRET_BYTES)  # the installer's pre-shared secret
            for me in (link.transmitter, link.receiver):
                configs[me].links.append(self._link_config(link, me, secret, index))
        self._configs = configs
        # Receivers first, so a transmitter's first frame finds its peer configured.
        receivers_only = [n for n in self.nodes if all(l.role == "receiver" for l in configs[n].links)]
        others = [n for n in self.nodes if n not in receivers_only]
        for group in (receivers_only, others):
            await asyncio.gather(*(self._configure(n, configs[n]) for n in group))

    async def _configure(self, name: str, config: pb.NodeConfig) -> None:
        reply = await self.nodes[name].control.Configure(config, timeout=30)
        self.nodes[name].kme_url = reply.message

    async def stop(self) -> None:
        """Ask every node to shut down, then make sure each process is gone."""
        async def shutdown(handle: NodeHandle) -> None:
            if handle.process.returncode is None and handle.control is not None:
                try:
                    await handle.control.Shutdown(pb.ShutdownRequest(), timeout=2)
                except grpc.aio.AioRpcError:
                    pass
            try:
                await asyncio.wait_for(handle.process.wait(), 5)
            except asyncio.TimeoutError:
                handle.process.kill()
                await handle.process.wait()
            if handle.relays is not None:
                await handle.relays.close()
            if handle.channel is not None:
                await handle.channel.close()
        await asyncio.gather(*(shutdown(h) for h in self.nodes.values()), return_exceptions=True)
        for task in self._watchers:
            task.cancel()
        self._watchers.clear()
        await self._launcher.close()
        if self._temporary is not None:
            self._temporary.cleanup()

    async def restart_node(self, name: str) -> None:
        """Relaunch a node on its old ports from its durable key store.

        Its link pools were in memory, so each neighbour discards its side of the shared link
        key (accounted) and both ends start the link afresh with a new bootstrap secret.
        """
        old = self.nodes[name]
        if old.process.returncode is None:
            old.process.kill()
            await old.process.wait()
        for closer in (old.relays, old.channel):
            if closer is not None:
                await closer.close()
        handle = NodeHandle(name, await self._spawn(name, int(old.address.rsplit(":", 1)[1])))
        self.nodes[name] = handle
        await self._await_ready(handle)
        await self._healthy(handle)
        config = pb.NodeConfig()
        config.CopyFrom(self._configs[name])
        if old.kme_url:
            config.kme.port = int(old.kme_url.rsplit(":", 1)[1])
        resets_first, resets_after = [], []
        for link_config in config.links:
            link_config.bootstrap_secret = secrets.token_bytes(BOOTSTRAP_SECRET_BYTES)
            link = self.topology.link_between(name, link_config.peer)
            peer_config = self._link_config(link, link_config.peer, link_config.bootstrap_secret, 0)
            peer_config.seed = secrets.randbits(63)
            link_config.seed = peer_config.seed
            # The receiving end must be ready before the transmitting end sends its first frame.
            group = resets_first if link_config.role == "transmitter" else resets_after
            group.append((link_config.peer, peer_config))
        self._configs[name] = config
        await asyncio.gather(*(self.nodes[peer].control.ResetLink(c, timeout=30) for peer, c in resets_first))
        await self._configure(name, config)
        await asyncio.gather(*(self.nodes[peer].control.ResetLink(c, timeout=30) for peer, c in resets_after))

    def kill_all(self) -> None:
        for handle in self.nodes.values():
            if handle.process.returncode is None:
                handle.process.kill()

    # -- observation -----------------------------------------------------------------------
    def failures(self) -> dict[str, str]:
        return {n: h.failure for n, h in self.nodes.items() if h.failure}

    async def status(self) -> dict[str, pb.NodeStatus]:
        async def one(handle: NodeHandle):
            if handle.failure:
                return handle.name, None
            try:
                return handle.name, await handle.control.Status(pb.StatusRequest(), timeout=10)
            except grpc.aio.AioRpcError as exc:
                return handle.name, None if handle.failure else _raise(NodeFailure(
                    f"node {handle.name} did not answer status: {exc.code().name}"))
        return dict(await asyncio.gather(*(one(h) for h in self.nodes.values())))

    async def list_keys(self, node: str, peer: str = "") -> list[pb.KeyEntry]:
        reply = await self.nodes[node].control.ListKeys(pb.ListKeysRequest(peer=peer), timeout=10)
        return list(reply.keys)

    async def wait_for_link_key(self, min_bits: int, timeout_s: float, progress: Progress | None = None) -> None:
        """Until every link pool holds min_bits (or time runs out)."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            status = await self.status()
            levels = [l.pool_bits for s in status.values() if s is not None for l in s.links
                      if l.role == "transmitter"]
            ready = sum(level >= min_bits for level in levels)
            line = f"link key: {ready}/{len(levels)} links hold >= {min_bits} bits"
            if progress and line != last:
                progress(line)
                last = line
            if levels and ready == len(levels):
                return
            await asyncio.sleep(0.25)
        raise QkdnetError(f"links did not generate {min_bits} bits of key within {timeout_s:.0f} s")

    # -- relay ----------------------------------------------------------------------------
    def route(self, source: str, destination: str) -> list[str]:
        alive = self.topology.graph.subgraph([n for n in self.nodes if not self.nodes[n].failure])
        return key_path(alive, source, destination)

    async def relay(self, source: str, destination: str, count: int = 1, key_bits: int = 256,
                    timeout_s: float = 30.0, paths: list[list[str]] | None = None) -> RelayReport:
        """Order a relay; without ``paths`` it goes over the fewest-hops route among live nodes."""
        paths = paths or [self.route(source, destination)]
        handle = self.nodes[source]
        request = pb.RelayRequest(path=paths[0], count=count, key_bits=key_bits, timeout_s=timeout_s)
        if len(paths) > 1:
            request.paths.extend(pb.Route(path=p) for p in paths)
        if handle.failure or handle.relays is None:
            return RelayReport(source, destination, paths[0], [], [], 0, f"{source}: node is down", paths)
        try:
            reply = await handle.relays.call(request, timeout_s + 5)
        except (StreamBroken, asyncio.TimeoutError) as exc:
            return RelayReport(source, destination, paths[0], [], [], 0, f"{source}: {exc or 'no answer in time'}",
                               paths)
        return RelayReport(source, destination, paths[0], list(reply.key_ids), list(reply.latencies_s),
                           reply.link_bits_consumed, reply.error, paths)

    async def cut_link(self, u: str, v: str) -> None:
        """A fibre cut: both ends stop the link and refuse relays over it; pools are kept."""
        self.topology.link_between(u, v)  # raises TopologyError for a link that does not exist
        for me, peer in ((u, v), (v, u)):
            handle = self.nodes[me]
            if not handle.failure:
                await handle.control.SetLinkState(pb.LinkStateRequest(peer=peer, up=False), timeout=10)

    async def revoke(self, node: str, key_ids: list[str], reason: str = "") -> None:
        """Withdraw undelivered end-to-end keys at one node (all or nothing)."""
        try:
            await self.nodes[node].control.RevokeKeys(pb.RevokeRequest(key_ids=key_ids, reason=reason), timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise QkdnetError(f"{node}: {exc.details()}") from None
            raise NodeFailure(f"node {node} did not answer: {exc.code().name}") from None

    async def exposure(self, node: str) -> pb.ExposureList:
        """What ``node`` decrypted as an intermediate (key IDs and share indices, never keys)."""
        return await self.nodes[node].control.ListExposure(pb.ExposureRequest(), timeout=10)


def _raise(exc: Exception):
    raise exc
