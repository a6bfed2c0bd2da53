"""The source refuses a relay its key store could not record, before any link key is spent."""

import pytest

from node.keystore.app_store import AsyncKeyStore, KeyStore
from node.trusted_node import RelayError, TrustedNode


async def test_a_full_store_refuses_before_touching_any_link(tmp_path):
    store = AsyncKeyStore(KeyStore(tmp_path / "k.db", max_keys=2))
    node = TrustedNode("A", lambda address: None, store)  # no links at all: a pad draw would fail differently
    try:
        with pytest.raises(RelayError, match="key store full"):
            await node.relay(["A", "B"], 3, 256, 1.0)
    finally:
        await store.close()
