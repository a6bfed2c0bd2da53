"""Key delivery to applications (SAEs): the domain behind the ETSI GS QKD 014 API.

Layer: node domain, no HTTP. A master SAE asks this KME for keys shared with a slave SAE; the
keys are drawn here and relayed to the slave's KME (over the route the orchestrator gave), which
stores them durably for the slave before the relay is acknowledged. Only then does the master
get them. A slave SAE later fetches them by key ID at its own KME, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from dataclasses import dataclass

from node.keystore.app_store import KeyNotAvailable, NewKey, StoreError
from node.settings import KmeSettings
from node.trusted_node import RelayError, TrustedNode

RELAY_TIMEOUT_S = 10.0
EXPIRY_SWEEP_S = 5.0


class KeyRequestError(Exception):
    """The request is wrong (HTTP 400): unknown SAE, sizes out of range, a key not the caller's."""


class KeyServiceUnavailable(Exception):
    """The request is fine but cannot be served now (HTTP 503): no route, no link key, store full."""


@dataclass(frozen=True)
class PairStatus:
    source_kme: str
    target_kme: str
    stored_key_count: int


class KeyService:
    def __init__(self, node: TrustedNode, kme: KmeSettings) -> None:
        self.node = node
        self.kme = kme
        self._sweeper: asyncio.Task | None = None

    @property
    def kme_id(self) -> str:
        return self.node.name

    def local_saes(self) -> set[str]:
        return {sae for sae, node in self._sae_nodes().items() if node == self.node.name}

    def knows(self, sae: str) -> bool:
        return sae in self._sae_nodes()

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_expired())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    def status(self, master_sae: str, slave_sae: str) -> PairStatus:
        """``stored_key_count``: keys of the default size the first-hop link pool can pad now."""
        target = self._kme_of(slave_sae)
        if target == self.node.name:
            available = self.kme.max_key_per_request
        else:
            pool = self.node.pools.get(self._route(target)[1])
            available = pool.sendable_bits // self.kme.default_key_size if pool else 0
        return PairStatus(self.node.name, target, min(available, self.kme.max_keys))

    async def request_keys(self, master_sae: str, slave_sae: str, number: int, size_bits: int) -> list[tuple[str, bytes]]:
        target = self._kme_of(slave_sae)
        if target == self.node.name:  # both SAEs on this KME: no relay needed
            keys = [NewKey(str(uuid.uuid4()), self.node.name, secrets.token_bytes(size_bits // 8), master_sae, slave_sae)
                    for _ in range(number)]
            await self._store(self.node.store.store.add, keys, "destination", self.kme.key_ttl_s or None)
            return [(k.key_id, k.material) for k in keys]
        path = self._route(target)
        try:
            outcome = await self.node.relay(list(path), number, size_bits, RELAY_TIMEOUT_S, master_sae, slave_sae)
        except RelayError as exc:
            raise KeyServiceUnavailable(f"keys could not be relayed to {target}: {exc}") from None
        return outcome.keys

    async def fetch_keys(self, master_sae: str, slave_sae: str, key_ids: list[str]) -> list[tuple[str, bytes]]:
        try:
            return await self.node.store.run(self.node.store.store.deliver, key_ids, "destination", master_sae,
                                             slave_sae)
        except KeyNotAvailable as exc:
            raise KeyRequestError(str(exc)) from None

    # -- internals ----------------------------------------------------------------------
    async def _store(self, fn, *args) -> None:
        try:
            await self.node.store.run(fn, *args)
        except StoreError as exc:
            raise KeyServiceUnavailable(str(exc)) from None

    def _sae_nodes(self) -> dict[str, str]:
        settings = self.node.settings
        return settings.sae_nodes if settings else {}

    def _kme_of(self, sae: str) -> str:
        node = self._sae_nodes().get(sae)
        if node is None:
            raise KeyRequestError(f"unknown SAE {sae!r}")
        return node

    def _route(self, target: str) -> tuple[str, ...]:
        path = self.node.settings.routes.get(target) if self.node.settings else None
        if not path:
            raise KeyServiceUnavailable(f"no route from {self.node.name} to KME {target}")
        return path

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_S)
            await self.node.store.run(self.node.store.store.expire)
