"""The ``qkdnet up`` supervisor: a detached process that keeps a Network running for the CLI.

Layer: control plane. ``qkdnet up`` starts ``python -m orchestrator.supervisor`` in its own
session; it brings the nodes up (they die with it), writes ``network.json`` into the state
directory and answers ``status``, ``relay``, ``keys`` and ``down`` requests on the Unix socket
``control.sock`` there: one JSON object per line in, one per line out. Key material never
passes here; ``keys`` lists IDs and SHA-256 digests.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import pathlib
import shutil
import signal
import sys
import time

from orchestrator import certs as pki
from orchestrator.errors import QkdnetError
from orchestrator.network import Network
from orchestrator.router import Router
from orchestrator.routing import RouteRequest, make_strategy
from orchestrator.run import link_summaries
from orchestrator.state import StateDir
from orchestrator.topology import Topology, load


class Supervisor:
    def __init__(self, network: Network, topology: Topology, state: StateDir) -> None:
        self.network = network
        self.topology = topology
        self.state = state
        self.stopping = asyncio.Event()

    async def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "status":
            return await self.status()
        if op == "relay":
            return await self.relay(request)
        if op == "keys":
            node, peer = str(request.get("node", "")), str(request.get("peer", ""))
            self._known(node)
            keys = await self.network.list_keys(node, peer)
            return {"ok": True, "keys": [{"key_id": k.key_id, "peer": k.peer, "bits": k.bits,
                                          "sha256": k.digest.hex()} for k in keys]}
        if op == "revoke":
            node, key_ids = str(request.get("node", "")), request.get("key_ids")
            self._known(node)
            if not isinstance(key_ids, list) or not key_ids or not all(isinstance(k, str) for k in key_ids):
                raise QkdnetError("key_ids must be a non-empty list of key IDs")
            await self.network.revoke(node, key_ids, str(request.get("reason", "")))
            return {"ok": True, "revoked": key_ids}
        if op == "down":
            self.stopping.set()
            return {"ok": True}
        raise QkdnetError(f"unknown request {op!r}")

    async def status(self) -> dict:
        status = await self.network.status()
        return {"ok": True, "topology": self.topology.name, "pid": os.getpid(),
                "nodes": {name: {"address": h.address, "kme": h.kme_url, "alive": not h.failure, "failure": h.failure}
                          for name, h in self.network.nodes.items()},
                "links": [dataclasses.asdict(l) for l in link_summaries(self.topology, status)]}

    async def relay(self, request: dict) -> dict:
        source, destination = str(request.get("source", "")), str(request.get("destination", ""))
        self._known(source)
        self._known(destination)
        count, key_bits = request.get("count", 1), request.get("key_bits", 256)
        if not isinstance(count, int) or not 1 <= count <= 100_000:
            raise QkdnetError("count must be an integer from 1 to 100000")
        if not isinstance(key_bits, int) or key_bits <= 0 or key_bits % 8:
            raise QkdnetError("key_bits must be a positive multiple of 8")
        timeout_s = float(request.get("timeout_s", 30.0))
        strategy = request.get("strategy") or "fewest_hops"
        router = Router(self.network, make_strategy(str(strategy), **(request.get("strategy_options") or {})),
                        need_key=False)
        started = time.perf_counter()
        await router.refresh()
        routed = await router.relay(RouteRequest(source, destination, key_bits, count), timeout_s)
        if routed.outcome == "blocked":  # no route at all for this request: the request is at fault
            raise QkdnetError(routed.error)
        consumed = sum(len(p) - 1 for p in routed.paths) * count * key_bits if routed.outcome == "delivered" else 0
        return {"ok": routed.outcome == "delivered", "error": routed.error, "path": (routed.paths or [[]])[0],
                "paths": routed.paths, "attempts": routed.attempts, "key_ids": routed.key_ids,
                "latency_ms": round(1000 * (time.perf_counter() - started), 3), "link_bits_consumed": consumed}

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
                    reply = await self.handle(request)
                except json.JSONDecodeError:
                    reply = {"ok": False, "error": "request is not valid JSON"}
                except QkdnetError as exc:  # the request itself is wrong (NoKeyPath included)
                    reply = {"ok": False, "error": str(exc), "invalid": True}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def supervise(topology: Topology, state: StateDir, time_scale: float | None, seed: int | None,
                    certs_dir: pathlib.Path | None = None) -> int:
    shutil.rmtree(state.path / "nodes", ignore_errors=True)  # a new network starts with empty key stores
    try:
        certs = pki.load(topology, certs_dir) if certs_dir else None
    except QkdnetError as exc:
        _announce({"event": "failed", "error": str(exc)})
        return 2
    network = Network(topology, time_scale=time_scale, seed=seed, data_dir=state.path, certs=certs)
    try:
        await network.start()
    except Exception as exc:  # reported to `qkdnet up`, which prints it as one line
        _announce({"event": "failed", "error": str(exc) or type(exc).__name__})
        return 1
    supervisor = Supervisor(network, topology, state)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, supervisor.stopping.set)
    server = await asyncio.start_unix_server(supervisor.serve_client, path=str(state.socket_path))
    try:
        nodes = {name: {"grpc": h.address, "kme": h.kme_url} for name, h in network.nodes.items()}
        certs_dir = str(certs_dir or state.path / "certs")
        state.write({"pid": os.getpid(), "topology": topology.name, "source": topology.source,
                     "socket": str(state.socket_path), "started_at": time.time(), "nodes": nodes,
                     "certs_dir": certs_dir})
        _announce({"event": "ready", "pid": os.getpid(), "nodes": nodes, "certs_dir": certs_dir})
        _detach_output(state.log_path)
        await supervisor.stopping.wait()
    finally:
        server.close()
        await network.stop()
        state.clear()
    return 0


def _announce(event: dict) -> None:
    print(json.dumps(event), flush=True)


def _detach_output(log_path: pathlib.Path) -> None:
    """After the ready line nobody reads our stdout: send both streams to the log file."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.supervisor")
    parser.add_argument("topology")
    parser.add_argument("--state-dir", type=pathlib.Path, required=True)
    parser.add_argument("--time-scale", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--certs", type=pathlib.Path, help="an existing PKI from `qkdnet certs`")
    args = parser.parse_args(argv)
    try:
        topology = load(args.topology)
    except QkdnetError as exc:
        _announce({"event": "failed", "error": str(exc)})
        return 2
    return asyncio.run(supervise(topology, StateDir(args.state_dir), args.time_scale, args.seed, args.certs))


if __name__ == "__main__":
    sys.exit(main())
