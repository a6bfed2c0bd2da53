"""The running network: one process per trusted node, driven over the Control service.

Layer: control plane only. It launches a node process per topology node on free loopback
ports, waits for each to report ready and serve its health check, configures the links (roles
from the topology, a bootstrap authentication secret per link that QKD key replaces), orders
relays and collects status, each through the node's ``NodeClient``. With KMEs it also publishes
its live view of the network to every node, so that application key requests are routed by the
same strategy over the same state as its own relays (after a cut, at once). It never receives
key material: relays return key IDs, listings return digests. Use it as ``async with
Network(...) as network``; every process it starts is ended on leaving, and nodes also die with
the orchestrator (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import pathlib
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import networkx as nx
import numpy as np

from qkdnet.node.errors import NodeError, QkdnetError
from qkdnet.node.impairment import Impairment
from qkdnet.node.relay.result import RelayResult
from qkdnet.node.routing import LiveState, key_path
from qkdnet.node.rpc.tls import TlsIdentity
from qkdnet.node.settings import ClockMode, KmeSettings, LinkSettings, NodeSettings, Role
from qkdnet.node.status import ExposureReport, KeyEntry, NodeStatus
from qkdnet.orchestrator import certs as pki
from qkdnet.orchestrator.errors import NodeFailure
from qkdnet.orchestrator.launcher import NodeProcess, default_launcher
from qkdnet.orchestrator.netns import NetnsFabric
from qkdnet.orchestrator.node_client import NodeClient
from qkdnet.orchestrator.topology import Link, Topology

Progress = Callable[[str], None]


def comparison_salt() -> bytes:
    """A fresh salt for one comparison of two nodes' keys."""
    return secrets.token_bytes(16)
BOOTSTRAP_SECRET_BYTES = 4096
ROUTING_REFRESH_S = 2.0  # how often the live view is published to the nodes' KMEs
LINK_KEY_POLL_S = 0.25
ATTACH_TIMEOUT_S = 30.0  # how long an attached node may take to answer its health check
ATTACH_RETRY_S = 0.5
NETNS_GRPC_PORT = 50051
NETNS_KME_PORT = 8443


@dataclass(frozen=True)
class FaultRecord:
    """A fault a tester injected (or ended): when, what, where."""

    at: float  # Unix time
    kind: str  # cut, restore, impair, kill, restart
    link: str  # "u-v", or the node killed or restarted
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"at": self.at, "fault": self.kind, "link": self.link, "detail": self.detail}


@dataclass
class NodeHandle:
    name: str
    process: NodeProcess | None  # None: a node this controller attached to and did not start
    address: str = ""
    kme_url: str = ""
    metrics_url: str = ""  # https://host:port/metrics, for Prometheus
    client: NodeClient | None = None
    failure: str = ""
    configured: bool = False  # by this controller: an attached node is shut down at stop only then
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def local_process(self) -> NodeProcess:
        if self.process is None:
            raise NodeFailure(f"node {self.name} at {self.address} was not started by this controller")
        return self.process


def require_pki_for_placed_nodes(topology: Topology, certs: pki.CertPaths | None) -> None:
    """Nodes a deployment section places elsewhere hold their own identities: the controller
    needs the network's PKI to reach them (one line, before anything starts)."""
    if certs is None and topology.deployment:
        raise QkdnetError(f"{topology.source}: its nodes run elsewhere (deployment section): give their "
                          "PKI, --certs DIR (made by `qkdnet certs`)")


class Network:
    def __init__(self, topology: Topology, time_scale: float | None = None, seed: int | None = None,
                 log_level: str = "WARNING", data_dir: pathlib.Path | None = None, kme: bool = True,
                 certs: pki.CertPaths | None = None, attach_timeout_s: float = ATTACH_TIMEOUT_S,
                 isolation: str = "process", fresh_start: bool = False,
                 clock: ClockMode = ClockMode.REALTIME) -> None:
        """data_dir holds each node's key store (nodes/<name>) and the development PKI (certs/);
        without one a temporary directory is used and removed by ``stop``. ``certs``: an existing
        PKI (``certs.load``) instead of a fresh one. ``fresh_start``: every node destroys what its
        store kept from an earlier network before it is configured (attached nodes keep their
        stores across networks; nodes started here begin empty anyway). ``clock``: virtual time
        is advanced by this controller only (``advance_clock``); links wait for it."""
        self.topology = topology
        self.clock = clock
        self.time_scale = topology.time_scale if time_scale is None else time_scale
        self.seed = seed if seed is not None else secrets.randbits(32)
        self.log_level = log_level
        self.nodes: dict[str, NodeHandle] = {}
        self._tasks: list[asyncio.Task] = []
        self._publishing = asyncio.Lock()  # one view at a time: the last one sent is the newest
        self.cuts: set[frozenset[str]] = set()  # links cut and not restored
        self.faults: list[FaultRecord] = []  # every fault injected, in order, with its time
        self._temporary = tempfile.TemporaryDirectory(prefix="qkdnet-") if data_dir is None else None
        self.data_dir = pathlib.Path(self._temporary.name) if self._temporary else pathlib.Path(data_dir or ".")
        self.kme = kme
        self.certs: pki.CertPaths | None = certs
        self.live = LiveState.of(topology)  # what the nodes' KMEs route on
        self._settings: dict[str, NodeSettings] = {}
        self._renewals: dict[str, int] = {}  # link ID -> times the link was run afresh
        self._launcher = default_launcher()
        self._controller: TlsIdentity | None = None
        self.attach_timeout_s = attach_timeout_s
        self.fresh_start = fresh_start
        if isolation not in ("process", "netns"):
            raise QkdnetError(f"unknown isolation {isolation!r}; choose process or netns")
        if isolation == "netns" and topology.deployment:
            raise QkdnetError("--isolation netns starts the nodes itself: the topology's deployment section "
                              "places them elsewhere")
        self.fabric = NetnsFabric(topology) if isolation == "netns" else None

    async def __aenter__(self) -> Network:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.stop()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, progress: Progress | None = None, timeout_s: float = 120.0) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                await self._launch_all(progress)
            async with asyncio.timeout(timeout_s):
                await self._configure_all()
        except BaseException:
            await self.stop()
            raise
        if self.kme:
            self._tasks.append(asyncio.create_task(self._publish_routing_forever(), name="routing-publisher"))
        if progress:
            progress(f"{len(self.nodes)} nodes up and configured in {time.monotonic() - started:.1f} s")

    async def _launch_all(self, progress: Progress | None) -> None:
        require_pki_for_placed_nodes(self.topology, self.certs)
        if self.fabric is not None:  # checks root, ip and tc first: one line before anything is made
            await self.fabric.build()
        if self.certs is None:  # every channel is mutual TLS: the network always has its PKI
            addresses = ({n: self.fabric.management_address(n) for n in self.topology.nodes}
                         if self.fabric is not None else None)
            self.certs = await asyncio.to_thread(pki.create, self.topology, self.data_dir / "certs", addresses)
        cert, key = self.certs.controller
        self._controller = TlsIdentity.load(cert, key, self.certs.ca_file)
        if self.topology.deployment:
            await self._attach_all(progress)
            return
        for name in self.topology.nodes:
            self.nodes[name] = NodeHandle(name, await self._spawn(name))
        pending = list(self.nodes.values())
        for done, handle in enumerate(pending, 1):
            await self._await_ready(handle)
            if progress and (done % 10 == 0 or done == len(pending)):
                progress(f"nodes ready: {done}/{len(pending)}")
        await asyncio.gather(*(self._client(h).wait_serving() for h in pending))

    async def _attach_all(self, progress: Progress | None) -> None:
        """Nodes that run elsewhere (the topology's deployment section): reach each one at its
        address and make sure it is that node (its certificate) and healthy."""
        if self._controller is None:
            raise NodeFailure("the controller's identity is not loaded")
        for name in self.topology.nodes:
            address = self.topology.deployment[name]
            self.nodes[name] = NodeHandle(name, None, address, client=NodeClient(name, address, self._controller))

        async def reach(handle: NodeHandle) -> None:
            """Retried until the deadline: a node in a container may still be starting."""
            deadline = time.monotonic() + self.attach_timeout_s
            while True:
                try:
                    return await self._client(handle).wait_serving(max(0.1, deadline - time.monotonic()))
                except NodeFailure as exc:
                    if time.monotonic() >= deadline:
                        reason = str(exc).removeprefix(f"node {handle.name} ")
                        raise NodeFailure(f"node {handle.name} at {handle.address}: {reason}") from None
                await asyncio.sleep(ATTACH_RETRY_S)
        await asyncio.gather(*(reach(h) for h in self.nodes.values()))
        if progress:
            progress(f"attached to {len(self.nodes)} nodes")

    async def _spawn(self, name: str, port: int = 0, kme_port: int = 0) -> NodeProcess:
        """A local node process on loopback, given its identity files; it dies with us."""
        if self.certs is None:
            raise NodeFailure("the network's PKI is not there")
        cert, key = self.certs.node[name]
        kme_cert, kme_key = self.certs.kme[name]
        if self.fabric is not None:  # its own namespace: fixed ports on every interface, its management address
            where = ["--netns", self.fabric.namespace(name), "--listen", f"0.0.0.0:{NETNS_GRPC_PORT}", "--advertise",
                     self.fabric.management_address(name), "--kme-listen", f"0.0.0.0:{NETNS_KME_PORT}"]
        else:
            where = ["--listen", f"127.0.0.1:{port}", "--kme-listen", f"127.0.0.1:{kme_port}"]
        return await self._launcher.spawn([
            "--name", name, "--log-level", self.log_level, *where, "--data-dir", str(self.data_dir / "nodes" / name),
            "--cert", str(cert), "--key", str(key), "--ca", str(self.certs.ca_file), "--kme-cert", str(kme_cert),
            "--kme-key", str(kme_key), "--die-with-parent"])

    async def _await_ready(self, handle: NodeHandle) -> None:
        process = handle.local_process
        line = await process.stdout.readline()
        if not line:
            err = (await process.stderr.read()).decode(errors="replace").strip().splitlines()
            raise NodeFailure(f"node {handle.name} exited before it was ready: {err[-1] if err else 'no output'}")
        ready = json.loads(line)
        handle.address, handle.metrics_url = ready["address"], ready.get("metrics", "")
        if self._controller is None:
            raise NodeFailure("the controller's identity is not loaded")
        handle.client = NodeClient(handle.name, handle.address, self._controller)
        self._tasks.append(asyncio.create_task(self._watch(handle)))

    async def _watch(self, handle: NodeHandle) -> None:
        process = handle.local_process
        async for raw in process.stderr:
            handle.stderr_tail = (handle.stderr_tail + [raw.decode(errors="replace").rstrip()])[-5:]
        code = await process.wait()
        if not handle.failure:
            handle.failure = f"exited with code {code}" + (f": {handle.stderr_tail[-1]}" if handle.stderr_tail else "")

    def _client(self, handle: NodeHandle) -> NodeClient:
        if handle.client is None:
            raise NodeFailure(f"node {handle.name} is not running")
        return handle.client

    def client(self, node: str) -> NodeClient:
        """The Control client of a running node."""
        handle = self.nodes.get(node)
        if handle is None:
            raise QkdnetError(f"unknown node {node!r}")
        return self._client(handle)

    def _link_settings(self, link: Link, me: str, secret: bytes, seed: int) -> LinkSettings:
        role = Role.TRANSMITTER if me == link.transmitter else Role.RECEIVER
        peer = link.receiver if role is Role.TRANSMITTER else link.transmitter
        address = self.nodes[peer].address
        if self.fabric is not None:  # over the link's own interface
            address = f"{self.fabric.address_towards(me, peer)}:{NETNS_GRPC_PORT}"
        return LinkSettings(link_id=link.link_id, peer=peer, peer_address=address, role=role,
                            params=link.params, processing=self.topology.link_processing(link), bootstrap_secret=secret,
                            pool_capacity_bits=self.topology.pool_capacity_bits, seed=seed)

    def _next_link_seed(self, link_id: str) -> int:
        """The seed of a link run afresh (after a repair or a peer's restart): derived from the
        network's seed, the link and how many times it was renewed, so a run with a seed repeats."""
        self._renewals[link_id] = self._renewals.get(link_id, 0) + 1
        index = [l.link_id for l in self.topology.links].index(link_id)
        return int(np.random.SeedSequence([self.seed, index, self._renewals[link_id]]).generate_state(1, np.uint64)[0])

    def _node_settings(self, name: str, links: list[LinkSettings]) -> NodeSettings:
        kme = KmeSettings() if self.kme else None
        spec = self.topology.routing
        return NodeSettings(name=name, links=tuple(links), time_scale=self.time_scale, sae_nodes=self.topology.saes,
                            routing=self.live.routing_state(spec.name, spec.options), kme=kme,
                            fresh_start=self.fresh_start, clock=self.clock)

    async def _configure_all(self) -> None:
        links: dict[str, list[LinkSettings]] = {name: [] for name in self.nodes}
        seeds = np.random.SeedSequence(self.seed).spawn(len(self.topology.links))
        for link, seed_seq in zip(self.topology.links, seeds, strict=True):
            secret = secrets.token_bytes(BOOTSTRAP_SECRET_BYTES)  # the installer's pre-shared secret
            seed = int(seed_seq.generate_state(1, np.uint64)[0])
            for me in (link.transmitter, link.receiver):
                links[me].append(self._link_settings(link, me, secret, seed))
        self._settings = {name: self._node_settings(name, links[name]) for name in self.nodes}
        # Receivers first, so a transmitter's first frame finds its peer configured.
        receivers_only = [n for n in self.nodes if all(l.role is Role.RECEIVER for l in links[n])]
        others = [n for n in self.nodes if n not in receivers_only]
        for group in (receivers_only, others):
            await asyncio.gather(*(self._configure(n) for n in group))

    async def _configure(self, name: str) -> None:
        handle = self.nodes[name]
        handle.kme_url = await self._client(handle).configure(self._settings[name])
        handle.configured = True
        if not handle.metrics_url:  # a node this controller did not start says where in its status
            handle.metrics_url = (await self._client(handle).status()).metrics_url

    async def stop(self) -> None:
        """Ask every node to shut down, then make sure each process this controller started is
        gone. Attached nodes this controller configured are shut down too: whatever runs them
        (Compose, a StatefulSet) starts them again, unconfigured, on their durable key stores,
        for the next run; one it only reached is left alone."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

        async def shutdown(handle: NodeHandle) -> None:
            process = handle.process
            ours = handle.configured if process is None else process.returncode is None
            if ours and handle.client is not None:
                with contextlib.suppress(QkdnetError):
                    await handle.client.shutdown()
            if process is not None:
                try:
                    async with asyncio.timeout(5):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()
            if handle.client is not None:
                await handle.client.close()
        await asyncio.gather(*(shutdown(h) for h in self.nodes.values()), return_exceptions=True)
        await self._launcher.close()
        if self.fabric is not None:
            await self.fabric.destroy()
        if self._temporary is not None:
            self._temporary.cleanup()

    async def kill_node(self, name: str) -> None:
        """A node crash (SIGKILL): its links go down at its neighbours, routing avoids it."""
        process = self.nodes[name].local_process  # a node started elsewhere cannot be killed from here
        if process.returncode is not None:
            raise QkdnetError(f"node {name} is not running")
        process.kill()
        await process.wait()
        self.nodes[name].failure = "killed (a fault injected)"  # now, not when its watcher next runs
        self.faults.append(FaultRecord(time.time(), "kill", name))
        if self.kme:
            await self.publish_routing()

    async def restart_node(self, name: str) -> None:
        """Relaunch a node on its old ports from its durable key store.

        Each of its links runs afresh with a new bootstrap secret; the restarted node reloads its
        link pools from its store and reconciles each with the neighbour.
        """
        old = self.nodes[name]
        process = old.local_process
        if process.returncode is None:
            process.kill()
            await process.wait()
        if old.client is not None:
            await old.client.close()
        kme_port = int(old.kme_url.rsplit(":", 1)[1]) if old.kme_url else 0
        handle = NodeHandle(name, await self._spawn(name, int(old.address.rsplit(":", 1)[1]), kme_port))
        self.nodes[name] = handle
        await self._await_ready(handle)
        await self._client(handle).wait_serving()
        settings = self._settings[name]
        resets_first: list[tuple[str, LinkSettings]] = []
        resets_after: list[tuple[str, LinkSettings]] = []
        mine: list[LinkSettings] = []
        for link in settings.links:
            secret, seed = secrets.token_bytes(BOOTSTRAP_SECRET_BYTES), self._next_link_seed(link.link_id)
            mine.append(dataclasses.replace(link, bootstrap_secret=secret, seed=seed))
            peer_link = self._link_settings(self.topology.link_between(name, link.peer), link.peer, secret, seed)
            # The receiving end must be ready before the transmitting end sends its first frame.
            (resets_first if link.role is Role.TRANSMITTER else resets_after).append((link.peer, peer_link))
        # A restart resumes from the node's store: never a fresh start, whatever the network began with.
        self._settings[name] = dataclasses.replace(settings, links=tuple(mine), fresh_start=False)
        await asyncio.gather(*(self.client(peer).reset_link(c) for peer, c in resets_first))
        await self._configure(name)
        await asyncio.gather(*(self.client(peer).reset_link(c) for peer, c in resets_after))
        self.faults.append(FaultRecord(time.time(), "restart", name))
        if self.kme:  # the KMEs learn at once that the node is back, not at the next periodic view
            await self.publish_routing()

    # -- observation -----------------------------------------------------------------------
    def failures(self) -> dict[str, str]:
        return {n: h.failure for n, h in self.nodes.items() if h.failure}

    async def status(self) -> dict[str, NodeStatus | None]:
        """Every node's status; None for a node that has failed."""
        async def one(handle: NodeHandle) -> tuple[str, NodeStatus | None]:
            if handle.failure:
                return handle.name, None
            try:
                return handle.name, await self._client(handle).status()
            except NodeFailure:
                if handle.failure:  # it died while we asked
                    return handle.name, None
                raise
        return dict(await asyncio.gather(*(one(h) for h in self.nodes.values())))

    async def advance_clock(self, to_s: float, horizon_s: float = 0.0) -> dict[str, NodeStatus | None]:
        """Virtual time: advance every node's clock to ``to_s``; each node's status once all its
        links settled there (None for a node that has failed). Events up to ``to_s`` may be
        served after this returns, and not before. A node's status is exact for the links it
        transmits on; a receiving end may answer before its transmitter finished a block ending
        by ``to_s`` (it records the block before that transmitter can finish it, so a status
        asked after this returns is exact for every link). ``horizon_s``: this controller will put
        no fault on any link before it, so links may run ahead to it (``node.virtual_clock``)."""
        async def one(handle: NodeHandle) -> tuple[str, NodeStatus | None]:
            if handle.failure:
                return handle.name, None
            try:
                return handle.name, await self._client(handle).advance_clock(to_s, horizon_s)
            except NodeFailure:
                if handle.failure:
                    return handle.name, None
                raise
        return dict(await asyncio.gather(*(one(h) for h in self.nodes.values())))

    async def list_keys(self, node: str, peer: str = "", *, salt: bytes) -> list[KeyEntry]:
        """``node``'s keys (shared with ``peer``, or all) with digests salted for one comparison:
        list both ends with the same fresh salt (``comparison_salt()``)."""
        return await self.client(node).list_keys(peer, salt)

    async def exposure(self, node: str) -> ExposureReport:
        """What ``node`` decrypted as an intermediate (key IDs and share indices, never keys)."""
        return await self.client(node).exposure()

    async def wait_for_link_key(self, min_bits: int, timeout_s: float, progress: Progress | None = None) -> None:
        """Until every link pool holds min_bits (or time runs out)."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            status = await self.status()
            levels = [l.pool_bits for s in status.values() if s is not None for l in s.links
                      if l.role == Role.TRANSMITTER]
            ready = sum(level >= min_bits for level in levels)
            line = f"link key: {ready}/{len(levels)} links hold >= {min_bits} bits"
            if progress and line != last:
                progress(line)
                last = line
            if levels and ready == len(levels):
                return
            await asyncio.sleep(LINK_KEY_POLL_S)  # pools grow block by block: poll their level
        raise QkdnetError(f"links did not generate {min_bits} bits of key within {timeout_s:.0f} s")

    # -- relay and routing ------------------------------------------------------------------
    def route(self, source: str, destination: str) -> list[str]:
        failed = [n for n in self.nodes if self.nodes[n].failure]
        # Cut or down, or aborting its blocks for their QBER when last seen (an eavesdropper).
        cut = [tuple(pair) for pair, link in self.live.links.items() if not link.up or link.aborted]
        return key_path(nx.restricted_view(self.topology.graph, failed, cut), source, destination)  # a view, no copy

    async def relay(self, source: str, destination: str, count: int = 1, key_bits: int = 256,
                    timeout_s: float = 30.0, paths: Sequence[Sequence[str]] | None = None) -> RelayResult:
        """Order a relay; without ``paths`` it goes over the fewest-hops route among live nodes and
        links that are neither cut nor aborting for their QBER."""
        paths = paths or [self.route(source, destination)]
        handle = self.nodes[source]
        if handle.failure or handle.client is None:
            return RelayResult.failed(source, destination, paths, NodeFailure(f"{source}: node is down"))
        return await handle.client.relay(paths, count, key_bits, timeout_s)

    async def cut_link(self, u: str, v: str) -> None:
        """A fibre cut: both ends stop the link and refuse relays over it; pools are kept."""
        self.topology.link_between(u, v)  # raises TopologyError for a link that does not exist
        self.cuts.add(frozenset((u, v)))
        self.faults.append(FaultRecord(time.time(), "cut", f"{u}-{v}"))
        if self.fabric is not None:
            await self.fabric.set_link(u, v, up=False)
        for me, peer in ((u, v), (v, u)):
            handle = self.nodes[me]
            if not handle.failure:
                await self._client(handle).set_link_down(peer)
        self.live.mark_down(u, v)
        if self.kme:  # status taken now already reports the cut, so no stale view can follow this one
            await self.publish_routing()

    async def restore_link(self, u: str, v: str) -> None:
        """The cut is repaired: the link runs afresh (a new bootstrap secret, as an installer would
        give) on the pools both ends kept, and relays may use it again."""
        link = self.topology.link_between(u, v)
        if frozenset((u, v)) not in self.cuts:
            raise QkdnetError(f"link {u}-{v} is not cut: nothing to restore")
        down = [n for n in (u, v) if self.nodes[n].failure]
        if down:
            raise QkdnetError(f"link {u}-{v} cannot be restored while {down[0]} is down")
        if self.fabric is not None:
            await self.fabric.set_link(u, v, up=True)
        secret, seed = secrets.token_bytes(BOOTSTRAP_SECRET_BYTES), self._next_link_seed(link.link_id)
        ends = {me: self._link_settings(link, me, secret, seed) for me in (link.receiver, link.transmitter)}
        for me, settings in ends.items():  # the receiver first: it must be ready for the first frame
            await self.client(me).restore_link(settings)
            mine = self._settings[me]
            self._settings[me] = dataclasses.replace(mine, links=tuple(
                settings if s.link_id == settings.link_id else s for s in mine.links))
        self.cuts.discard(frozenset((u, v)))
        self.faults.append(FaultRecord(time.time(), "restore", f"{u}-{v}"))
        if self.kme:
            await self.publish_routing()
        else:
            self.live.update(await self.status())

    async def impair(self, u: str, v: str, impairment: Impairment) -> str:
        """Switch a fault on the quantum channel of link u-v on (``Impairment()`` switches it
        off); its transmitter applies it from the next block. Returns what is in force."""
        link = self.topology.link_between(u, v)
        if self.nodes[link.transmitter].failure:
            raise QkdnetError(f"link {u}-{v}: its transmitter {link.transmitter} is down")
        described = await self.client(link.transmitter).set_impairment(link.receiver, impairment)
        self.faults.append(FaultRecord(time.time(), "impair", f"{u}-{v}", described))
        return described

    async def revoke(self, node: str, key_ids: list[str], reason: str = "") -> None:
        """Withdraw undelivered end-to-end keys at one node (all or nothing)."""
        await self.client(node).revoke(key_ids, reason)

    async def publish_routing(self) -> None:
        """Send every live node the current view (refreshed from their status first).

        Publications are serialised, status and sending together, so a view built from status
        taken before an event (a restart, a cut) can never be sent after the event's own view.
        """
        async with self._publishing:
            self.live.update(await self.status())
            spec = self.topology.routing
            state = self.live.routing_state(spec.name, spec.options)
            live = [h for h in self.nodes.values() if not h.failure and h.client is not None]
            results = await asyncio.gather(*(self._client(h).set_routing(state) for h in live),
                                           return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, (NodeError, NodeFailure)):
                raise result

    async def _publish_routing_forever(self) -> None:
        while True:
            await asyncio.sleep(ROUTING_REFRESH_S)
            try:
                await self.publish_routing()
            except QkdnetError:  # a node died mid-poll: the next round sees it as down
                continue
