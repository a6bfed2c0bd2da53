"""A node's link ends: for each neighbour its settings, key pool, BB84 runtime and peer client.

Layer: node domain (no grpc). ``LinkSet`` is the one owner of the links: looked up by peer or by
link ID, both give the same ``LinkEnd``, whose runtime a reset replaces in place. A link taken
out of service (a fibre cut) is marked on its end, once; relays over it and frames for it are
refused from then on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from qkdnet.node.errors import NotFound, RelayError
from qkdnet.node.keystore.link_pool import LinkKeyPool
from qkdnet.node.link_runtime import LinkPeer, LinkRuntime
from qkdnet.node.relay.engine import RelayPeer
from qkdnet.node.settings import LinkSettings
from qkdnet.node.status import LinkStatus


class Peer(LinkPeer, RelayPeer, Protocol):
    """A neighbour as the node reaches it (the RPC layer supplies one per neighbour)."""

    async def close(self) -> None: ...


@dataclass
class LinkEnd:
    settings: LinkSettings
    pool: LinkKeyPool
    runtime: LinkRuntime
    peer: Peer
    cut: bool = False  # taken out of service: no generation, no relays

    def status(self) -> LinkStatus:
        return self.runtime.status(in_service=not self.cut)


class LinkSet:
    def __init__(self, node: str) -> None:
        self._node = node
        self._by_peer: dict[str, LinkEnd] = {}
        self._peer_of_link: dict[str, str] = {}

    def add(self, end: LinkEnd) -> None:
        self._by_peer[end.settings.peer] = end
        self._peer_of_link[end.settings.link_id] = end.settings.peer

    def __iter__(self) -> Iterator[LinkEnd]:
        return iter(self._by_peer.values())

    def __len__(self) -> int:
        return len(self._by_peer)

    def by_peer(self, peer: str) -> LinkEnd:
        end = self._by_peer.get(peer)
        if end is None:
            raise NotFound(f"node {self._node} has no link to {peer!r}")
        return end

    def by_id(self, link_id: str) -> LinkEnd:
        peer = self._peer_of_link.get(link_id)
        if peer is None:
            raise NotFound(f"node {self._node} has no link {link_id!r}")
        return self._by_peer[peer]

    # -- what the relay engine sees (``node.relay.engine.RelayLinks``) ----------------------
    def pool_in_service(self, peer: str) -> LinkKeyPool:
        """The pool shared with ``peer``; a relay error if there is no such link or it is cut."""
        end = self._by_peer.get(peer)
        if end is None:
            raise RelayError(f"node {self._node} has no link to {peer}")
        if end.cut:
            raise RelayError(f"{self._node}->{peer}: link out of service", (self._node, peer))
        return end.pool

    def neighbour(self, peer: str) -> RelayPeer:
        """The peer of a link, whether or not the link is in service (aborts cross cut links)."""
        end = self._by_peer.get(peer)
        if end is None:
            raise RelayError(f"node {self._node} has no link to {peer}")
        return end.peer
