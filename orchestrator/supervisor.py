"""The ``qkdnet up`` supervisor: a detached process that keeps a Network running for the CLI.

Layer: control plane. ``qkdnet up`` starts ``python -m qkdnet.orchestrator.supervisor`` in its own
session; it brings the nodes up (they die with it), writes ``network.json`` into the state
directory and answers ``status``, ``relay``, ``keys``, ``revoke`` and ``down`` requests on the
Unix socket ``control.sock`` there: one JSON object per line in, one per line out (the client
is ``orchestrator.supervisor_client``). Key material never passes here; ``keys`` lists IDs and
salted digests.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import pathlib
import shutil
import signal
import sys
import time
from typing import Any

from qkdnet.node.impairment import Impairment
from qkdnet.node.relay.result import RelayResult
from qkdnet.node.routing import DEFAULT_STRATEGY, RouteRequest, StrategySpec
from qkdnet.node.settings import CLOCK_MODES, ClockMode
from qkdnet.orchestrator import certs as pki
from qkdnet.orchestrator import prometheus_config
from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.live_view.model import ViewModel
from qkdnet.orchestrator.live_view.network_metrics import NetworkMetrics
from qkdnet.orchestrator.live_view.server import new_token, start_view
from qkdnet.orchestrator.network import Network, comparison_salt
from qkdnet.orchestrator.router import Router
from qkdnet.orchestrator.state import StateDir
from qkdnet.orchestrator.summary import (
    NetworkStatus,
    NodeEndpoint,
    key_entry_to_json,
    link_summaries,
)
from qkdnet.orchestrator.topology import Topology, load

IMPAIRMENT_FIELDS = {f.name for f in dataclasses.fields(Impairment)}
UP_CLOCK_STEP_S = 0.05  # virtual time: how far the running network's clock moves at a time
log = logging.getLogger(__name__)
VIEW_POLL_S = 2.0  # how often the live view samples the network


class Supervisor:
    def __init__(self, network: Network, topology: Topology, state: StateDir) -> None:
        self.network = network
        self.topology = topology
        self.state = state
        self.stopping = asyncio.Event()
        self.view = ViewModel(topology)  # what the live network view shows
        self.metrics = NetworkMetrics(self.view)  # the network-level metrics beside it

    async def watch(self) -> None:
        """Sample the network for the live view, every VIEW_POLL_S, until stopped."""
        while True:
            await self.sample()
            await asyncio.sleep(VIEW_POLL_S)

    async def sample(self) -> None:
        """One sample for the live view (also at once after a fault, so the view shows it)."""
        try:
            status = await self.network.status()
        except QkdnetError:  # a node died mid-poll: the next round sees it as down
            return
        self.view.sample(status, self.network.cuts, [f.as_dict() for f in self.network.faults])

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request (see ``orchestrator.supervisor_client``); a wrong one raises ``QkdnetError``."""
        op = request.get("op")
        if op == "status":
            return {"status": (await self.status()).to_json()}
        if op == "relay":
            return {"result": (await self.relay(request)).to_json()}
        if op == "keys":
            node, peer = str(request.get("node", "")), str(request.get("peer", ""))
            self._known(node)
            salt = comparison_salt()  # one listing: its digests compare within it, with nothing else
            return {"keys": [key_entry_to_json(k) for k in await self.network.list_keys(node, peer, salt=salt)]}
        if op == "revoke":
            node, key_ids = str(request.get("node", "")), request.get("key_ids")
            self._known(node)
            if not isinstance(key_ids, list) or not key_ids or not all(isinstance(k, str) for k in key_ids):
                raise QkdnetError("key_ids must be a non-empty list of key IDs")
            await self.network.revoke(node, key_ids, str(request.get("reason", "")))
            return {"revoked": key_ids}
        if op == "fault":
            reply = await self.fault(request)
            await self.sample()
            return reply
        if op == "faults":
            return {"faults": [f.as_dict() for f in self.network.faults]}
        if op == "down":
            self.stopping.set()
            return {}
        raise QkdnetError(f"unknown request {op!r}")

    async def fault(self, request: dict[str, Any]) -> dict[str, Any]:
        """Inject a fault (or end one): cut, restore or impair a link; kill or restart a node."""
        kind = request.get("kind")
        if kind in ("kill", "restart"):
            node = str(request.get("node", ""))
            self._known(node)
            if kind == "kill":
                await self.network.kill_node(node)
                return {"fault": f"node {node} killed"}
            if self.network.nodes[node].local_process.returncode is None:
                raise QkdnetError(f"node {node} is running: kill it first")
            await self.network.restart_node(node)
            return {"fault": f"node {node} restarted from its key store"}
        link = request.get("link")
        if not (isinstance(link, list) and len(link) == 2 and all(isinstance(n, str) for n in link)):
            raise QkdnetError("a fault names its link as two node names")
        u, v = link
        self._known(u)
        self._known(v)
        if kind == "cut":
            await self.network.cut_link(u, v)
            return {"fault": f"link {u}-{v} cut"}
        if kind == "restore":
            await self.network.restore_link(u, v)
            return {"fault": f"link {u}-{v} restored"}
        if kind == "impair":
            given = request.get("impairment")
            if not isinstance(given, dict) or set(given) - IMPAIRMENT_FIELDS:
                raise QkdnetError(f"an impairment has the fields {', '.join(sorted(IMPAIRMENT_FIELDS))}")
            try:
                impairment = Impairment(**given)
            except TypeError as exc:
                raise QkdnetError(f"bad impairment: {exc}") from None
            return {"fault": f"link {u}-{v}: {await self.network.impair(u, v, impairment)}"}
        raise QkdnetError(f"unknown fault {kind!r}; choose cut, restore, impair, kill or restart")

    async def status(self) -> NetworkStatus:
        status = await self.network.status()
        nodes = {name: NodeEndpoint(h.address, h.kme_url, not h.failure, h.failure, h.metrics_url)
                 for name, h in self.network.nodes.items()}
        return NetworkStatus(self.topology.name, os.getpid(), nodes, link_summaries(self.topology, status),
                             [f.as_dict() for f in self.network.faults])

    async def relay(self, request: dict[str, Any]) -> RelayResult:
        source, destination = str(request.get("source", "")), str(request.get("destination", ""))
        self._known(source)
        self._known(destination)
        count, key_bits = request.get("count", 1), request.get("key_bits", 256)
        if not isinstance(count, int) or not 1 <= count <= 100_000:
            raise QkdnetError("count must be an integer from 1 to 100000")
        if not isinstance(key_bits, int) or key_bits <= 0 or key_bits % 8:
            raise QkdnetError("key_bits must be a positive multiple of 8")
        timeout_s = float(request.get("timeout_s", 30.0))
        strategy = StrategySpec.parse({"name": request.get("strategy") or DEFAULT_STRATEGY,
                                       **(request.get("strategy_options") or {})})
        router = Router(self.network, strategy.make(), need_key=False)
        await router.refresh()
        result = await router.relay(RouteRequest(source, destination, key_bits, count), timeout_s)
        self.view.record_relay(result)
        self.metrics.record(result)
        if result.outcome == "blocked" and result.failure:  # no route at all: the request is at fault
            raise QkdnetError(result.failure.message)
        return result

    def _known(self, node: str) -> None:
        if node not in self.network.nodes:
            raise QkdnetError(f"unknown node {node!r}")

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise QkdnetError("a request is a JSON object")
                    reply = {"ok": True, **await self.handle(request)}
                except json.JSONDecodeError:
                    reply = {"ok": False, "error": "request is not valid JSON"}
                except QkdnetError as exc:  # the request is wrong, or a node refused it (one line either way)
                    reply = {"ok": False, "error": str(exc)}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def supervise(topology: Topology, state: StateDir, time_scale: float | None, seed: int | None,
                    certs_dir: pathlib.Path | None = None, isolation: str = "process",
                    clock: ClockMode = ClockMode.REALTIME) -> int:
    shutil.rmtree(state.path / "nodes", ignore_errors=True)  # a new network starts with empty key stores
    try:
        certs = pki.load_for(topology, certs_dir) if certs_dir else None
        network = Network(topology, time_scale=time_scale, seed=seed, data_dir=state.path, certs=certs,
                          isolation=isolation, clock=clock)
    except QkdnetError as exc:
        _announce({"event": "failed", "error": str(exc)})
        return 2
    try:  # progress lines go to `qkdnet up`, which draws them until the ready line
        await network.start(lambda message: _announce({"event": "progress", "message": message}))
    except Exception as exc:  # reported to `qkdnet up`, which prints it as one line
        _announce({"event": "failed", "error": str(exc) or type(exc).__name__})
        return 1
    supervisor = Supervisor(network, topology, state)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, supervisor.stopping.set)
    server = await asyncio.start_unix_server(supervisor.serve_client, path=str(state.socket_path))
    token = new_token()
    view_server = await start_view(supervisor.view, token, supervisor.metrics)
    watcher = asyncio.create_task(supervisor.watch(), name="live-view")
    ticking = asyncio.create_task(_tick(network), name="virtual-clock") if clock is ClockMode.VIRTUAL else None
    try:
        nodes = {name: {"grpc": h.address, "kme": h.kme_url, "metrics": h.metrics_url}
                 for name, h in network.nodes.items()}
        pki_dir = str(certs_dir or state.path / "certs")
        prometheus_config.write(state.path / "prometheus.yml", network, network_metrics=(view_server.url, token))
        view_url = f"{view_server.url}/?token={token}"
        state.write({"pid": os.getpid(), "topology": topology.name, "source": topology.source,
                     "socket": str(state.socket_path), "started_at": time.time(), "nodes": nodes,
                     "certs_dir": pki_dir, "view": view_url})
        _announce({"event": "ready", "pid": os.getpid(), "nodes": nodes, "certs_dir": pki_dir, "view": view_url})
        _detach_output(state.log_path)
        await supervisor.stopping.wait()
    finally:
        for task in (watcher, ticking):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await view_server.close()
        server.close()
        await network.stop()
        state.clear()
    return 0


async def _tick(network: Network) -> None:
    """Virtual time while the network is up: the clock moves on in steps as soon as every link has
    produced its key up to it, so applications meet pools that hold what the physics made by the
    network's emulated time, however fast the host runs (there is no demand to wait for here)."""
    now_s = 0.0
    while True:
        try:
            await network.advance_clock(now_s)
        except QkdnetError as exc:  # a node down: the clock waits for it to come back
            log.warning("virtual clock held at %.3f s: %s", now_s, exc)
            await asyncio.sleep(1.0)
            continue
        now_s = round(now_s + UP_CLOCK_STEP_S, 9)


def _announce(event: dict) -> None:
    print(json.dumps(event), flush=True)


def _detach_output(log_path: pathlib.Path) -> None:
    """After the ready line nobody reads our stdout: send both streams to the log file."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qkdnet.orchestrator.supervisor")
    parser.add_argument("topology")
    parser.add_argument("--state-dir", type=pathlib.Path, required=True)
    parser.add_argument("--time-scale", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--certs", type=pathlib.Path, help="an existing PKI from `qkdnet certs`")
    parser.add_argument("--isolation", choices=["process", "netns"], default="process")
    parser.add_argument("--clock", choices=CLOCK_MODES, default=ClockMode.REALTIME.value)
    args = parser.parse_args(argv)
    try:
        topology = load(args.topology)
    except QkdnetError as exc:
        _announce({"event": "failed", "error": str(exc)})
        return 2
    return asyncio.run(supervise(topology, StateDir(args.state_dir), args.time_scale, args.seed, args.certs,
                                 args.isolation, ClockMode(args.clock)))


if __name__ == "__main__":
    sys.exit(main())
