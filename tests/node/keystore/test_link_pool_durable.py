"""Durable link pools: saved and restored through the key store, and reconciled after a restart."""

import numpy as np

from qkdnet.node.keystore.link_pool import LinkKeyPool
from qkdnet.node.keystore.store import NodeStore, open_tables


def _pair(blocks=3, size=2000, seed=1):
    rng = np.random.default_rng(seed)
    a, b = LinkKeyPool("a", 10**6), LinkKeyPool("b", 10**6)
    for frame in range(blocks):
        key = rng.integers(0, 2, size, dtype=np.uint8)
        a.add_block(frame, key)
        b.add_block(frame, key)
    return a, b


def _balanced(pool):
    return pool.generated_bits == pool.level_bits + pool.consumed_bits + pool.discarded_bits == (
        pool.recount_level_bits() + pool.consumed_bits + pool.discarded_bits)


def test_a_pool_survives_the_store(tmp_path):
    a, _ = _pair()
    a.allocate(256)
    a.discard(256, "relay failed")
    tables = open_tables(tmp_path / "k.db")
    tables.links.save_pool("A~B", *a.snapshot_changes())
    assert a.snapshot_changes() is None  # nothing new since
    a.allocate(128)
    tables.links.save_pool("A~B", *a.snapshot_changes())
    tables.close()

    restored = LinkKeyPool("a", 10**6)
    restored.restore(*open_tables(tmp_path / "k.db").links.load_pool("A~B"))
    assert {k: v.tolist() for k, v in restored.inventory().items()} == {k: v.tolist() for k, v in a.inventory().items()}
    assert restored.counters() == a.counters() and _balanced(restored)
    # allocation continues where it stopped: never the same bits twice
    assert restored.allocate(64)[0] == a.allocate(64)[0]


def test_reconciliation_keeps_only_bits_both_ends_hold():
    a, b = _pair()
    sent = [a.allocate(256) for _ in range(3)]
    for link_key_id, _ in sent[:2]:
        b.take_by_id(link_key_id)  # the third never arrived: a used it, b still holds it
    b.add_block(99, np.ones(1000, np.uint8))

    b.reconcile(a.inventory(), "restart")
    a.reconcile(b.inventory(), "restart")
    assert {k: v.tolist() for k, v in a.inventory().items()} == {k: v.tolist() for k, v in b.inventory().items()}
    assert a.level_bits == b.level_bits and _balanced(a) and _balanced(b)
    assert (99 not in {f for _, f in b.inventory()}) and b.discard_reasons["restart"] >= 1000 + 256
    # after reconciling, what a sends b can take, and the bits agree
    link_key_id, bits = a.allocate(512)
    assert np.array_equal(b.take_by_id(link_key_id), bits)


async def test_a_restart_never_reallocates_a_pad_that_may_have_left(tmp_path):
    from qkdnet.node.pool_keeper import LEASED, PoolKeeper

    store = NodeStore.open(tmp_path / "k.db")
    keeper = PoolKeeper(store.links)
    pool, _ = _pair(blocks=2, size=200_000)
    assert not await keeper.open("B", "A~B", pool)
    await keeper.persist("B")  # the blocks reach the store
    sent = [pool.allocate(256)[0] for _ in range(10)]
    await keeper.lease("B", sent)  # before the pads leave; no full flush after this
    last_end = max(link_key.end for link_key in sent)
    await store.close()  # the process dies here: the used masks on disk predate the sends

    store = NodeStore.open(tmp_path / "k.db")
    restored = LinkKeyPool("a", 10**6)
    assert await PoolKeeper(store.links).open("B", "A~B", restored)
    next_id, _ = restored.allocate(256)
    assert next_id.start >= last_end  # never the same bits again
    assert restored.discard_reasons[LEASED] > 0 and _balanced(restored)
    await store.close()
