"""Relay engines of a few nodes in one process, wired through their constructor seams.

Each node gets a real durable store and pool keeper; its links are in-memory pools filled with
the same random block at both ends, and its neighbours are reached by calling their engines
directly (the gRPC layer is tested elsewhere). ``Direct`` peers can hold a call at a gate, so a
test decides the order of events instead of racing timers.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from qkdnet.node.errors import RelayError
from qkdnet.node.keystore.link_pool import LinkKeyPool
from qkdnet.node.keystore.store import NodeStore
from qkdnet.node.pool_keeper import PoolKeeper
from qkdnet.node.relay.engine import RelayEngine

BLOCK_BITS = 50_000


class Gate:
    """A call held until ``open()``; ``entered`` is set once a call is waiting at it."""

    def __init__(self, is_open: bool = True) -> None:
        self._open = asyncio.Event()
        self.entered = asyncio.Event()
        if is_open:
            self._open.set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def passage(self) -> None:
        self.entered.set()
        await self._open.wait()


class Direct:
    """A neighbour reached by calling its engine; forwards and aborts pass their gates first."""

    def __init__(self, engines: dict[str, RelayEngine], name: str) -> None:
        self.engines, self.name = engines, name
        self.forward_gate, self.abort_gate = Gate(), Gate()
        self.forwards_done = 0

    async def forward(self, path, hop, items):
        await self.forward_gate.passage()
        try:
            await self.engines[self.name].forward(path, hop, items)
        finally:
            self.forwards_done += 1

    async def abort(self, path, hop, key_ids):
        await self.abort_gate.passage()
        await self.engines[self.name].abort(path, hop, key_ids)

    async def close(self):
        pass


class Links:
    """The engine's view of a node's links (as ``node.links.LinkSet`` gives it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pools: dict[str, LinkKeyPool] = {}
        self.peers: dict[str, Direct] = {}
        self.cut: set[str] = set()

    def pool_in_service(self, peer: str) -> LinkKeyPool:
        if peer not in self.pools:
            raise RelayError(f"node {self.name} has no link to {peer}")
        if peer in self.cut:
            raise RelayError(f"{self.name}->{peer}: link out of service", (self.name, peer))
        return self.pools[peer]

    def neighbour(self, peer: str) -> Direct:
        if peer not in self.peers:
            raise RelayError(f"node {self.name} has no link to {peer}")
        return self.peers[peer]


class Line:
    """Nodes with stores under ``directory`` and engines wired along ``links``."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self.engines: dict[str, RelayEngine] = {}
        self.stores: dict[str, NodeStore] = {}
        self.links: dict[str, Links] = {}
        self.keepers: dict[str, PoolKeeper] = {}
        self.full: set[str] = set()  # for stand-in stores that simulate a full disk

    def node(self, name: str, wrap: Callable[[NodeStore], Any] | None = None) -> RelayEngine:
        """A node (again, after a restart: same store directory, fresh engine). ``wrap`` gives
        the engine a stand-in for its store (say, one whose commit never happens)."""
        real = NodeStore.open(self.directory / f"{name}.db")
        self.stores[name] = real
        self.keepers[name] = PoolKeeper(real.links)
        self.links.setdefault(name, Links(name))
        engine = RelayEngine(name, self.links[name], self.keepers[name], wrap(real) if wrap else real)
        self.engines[name] = engine
        return engine

    async def wire(self, pairs: list[tuple[str, str]], seed: int = 7, block_bits: int = BLOCK_BITS) -> None:
        rng = np.random.default_rng(seed)
        for u, v in pairs:
            bits = rng.integers(0, 2, block_bits, dtype=np.uint8)
            for here, there, half in ((u, v, "a"), (v, u, "b")):
                pool = LinkKeyPool(half, 10**7)
                pool.add_block(1, bits)
                await self.keepers[here].open(there, f"{u}-{v}", pool)
                self.links[here].pools[there] = pool
                self.links[here].peers[there] = Direct(self.engines, there)

    def peer(self, here: str, there: str) -> Direct:
        return self.links[here].peers[there]

    def pool(self, here: str, there: str) -> LinkKeyPool:
        return self.links[here].pools[there]

    async def states(self, name: str) -> dict[str, str]:
        return {r.key_id: r.state for r in await self.stores[name].keys.records()}

    async def close(self) -> None:
        for name, engine in self.engines.items():
            await engine.close()
            await self.stores[name].close()


async def line_abc(directory: pathlib.Path) -> Line:
    line = Line(directory)
    for name in "ABC":
        line.node(name)
    await line.wire([("A", "B"), ("B", "C")])
    return line
