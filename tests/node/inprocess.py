"""Trusted nodes in one process: each reaches its neighbours by calling their methods directly.

What the RPC layer does between processes (tested in tests/node/rpc), done by plain calls, so a
test can run real link engines, key pools and relays without sockets.
"""

from __future__ import annotations

import pathlib
import secrets

from qkdnet.node.keystore.store import NodeStore
from qkdnet.node.qkd.params import STANDARD, ProcessingParams
from qkdnet.node.routing import LinkState, RoutingState
from qkdnet.node.settings import ClockMode, LinkSettings, NodeSettings, Role
from qkdnet.node.trusted_node import TrustedNode

# Small blocks that still give key (as tests/node/qkd/conftest.py): a block takes a few seconds.
LINK = STANDARD.with_changes(p_z_alice=0.5, p_z_bob=0.5, length_km=25.0)
BLOCK = ProcessingParams(block_detections=200_000)


class InProcessPeer:
    """A neighbour node reached by calling it (``node.links.Peer``)."""

    def __init__(self, nodes: dict[str, TrustedNode], name: str) -> None:
        self.nodes, self.name = nodes, name

    async def deliver_frame(self, frame):
        return await self.nodes[self.name].on_frame(frame), False

    async def exchange(self, link_id, frame_id, envelopes):
        return await self.nodes[self.name].on_exchange(link_id, frame_id, envelopes)

    async def reconcile(self, link_id, inventory):
        return await self.nodes[self.name].on_reconcile(link_id, inventory)

    async def resync(self, request):
        return await self.nodes[self.name].on_resync(request)

    async def forward(self, path, hop, items):
        await self.nodes[self.name].relay.forward(path, hop, items)

    async def abort(self, path, hop, key_ids):
        await self.nodes[self.name].relay.abort(path, hop, key_ids)

    async def close(self):
        pass


def link_pair(u: str, v: str, capacity_bits: int = 10**7, seed: int = 1) -> tuple[LinkSettings, LinkSettings]:
    """Both ends of link u~v; u (the smaller name) transmits, as the orchestrator assigns it."""
    secret = secrets.token_bytes(4096)
    common = dict(link_id=f"{u}~{v}", params=LINK, processing=BLOCK, bootstrap_secret=secret,
                  pool_capacity_bits=capacity_bits, seed=seed)
    return (LinkSettings(peer=v, peer_address=f"inproc:{v}", role=Role.TRANSMITTER, **common),
            LinkSettings(peer=u, peer_address=f"inproc:{u}", role=Role.RECEIVER, **common))


def nodes_in(directory: pathlib.Path, names: str) -> dict[str, TrustedNode]:
    nodes: dict[str, TrustedNode] = {}
    for name in names:
        nodes[name] = TrustedNode(name, lambda peer, address: InProcessPeer(nodes, peer),
                                  NodeStore.open(directory / f"{name}.db"))
    return nodes


async def configure_line(nodes: dict[str, TrustedNode], capacity_bits: int = 10**7, time_scale: float = 0.0,
                         fresh_start: bool = False, clock: ClockMode = ClockMode.REALTIME) -> None:
    """Link consecutive names; receivers are configured first, as the orchestrator does."""
    names = list(nodes)
    links: dict[str, list[LinkSettings]] = {n: [] for n in names}
    for u, v in zip(names, names[1:], strict=False):
        tx, rx = link_pair(u, v, capacity_bits)
        links[u].append(tx)
        links[v].append(rx)
    routing = RoutingState(alive=tuple(names), links=tuple(
        LinkState(u, v, LINK.length_km, capacity_bits) for u, v in zip(names, names[1:], strict=False)))
    for name in reversed(names):
        await nodes[name].configure(NodeSettings(name=name, links=tuple(links[name]), time_scale=time_scale,
                                                 fresh_start=fresh_start, clock=clock,
                                                 routing=routing))


async def close_all(nodes: dict[str, TrustedNode]) -> None:
    for node in nodes.values():
        await node.close()
        await node.store.close()
