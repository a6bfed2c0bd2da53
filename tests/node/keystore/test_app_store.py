"""Durable key store: lifecycle, all-or-nothing delivery, expiry, revocation, audit chain, reopen."""

import sqlite3
import uuid

import pytest

from node.errors import KeyNotAvailable, StoreError, StoreFull
from node.keystore.app_store import NewKey
from node.keystore.lifecycle import KeyState, LifecycleError, check_transition
from node.keystore.store import NodeStore, open_tables


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _keys(n, master="sae1", slave="sae2"):
    return [NewKey(str(uuid.uuid4()), "B", bytes([i + 1]) * 32, master, slave) for i in range(n)]


def test_delivery_is_once_all_or_nothing_and_only_to_the_named_saes(tmp_path):
    tables = open_tables(tmp_path / "k.db")
    store = tables.keys
    keys = _keys(3)
    store.add(keys, "destination")
    ids = [k.key_id for k in keys]
    with pytest.raises(KeyNotAvailable):
        store.deliver(ids, "destination", "sae1", "sae3")  # not the slave named at enc_keys
    with pytest.raises(KeyNotAvailable):
        store.deliver(ids[:2] + [str(uuid.uuid4())], "destination", "sae1", "sae2")
    assert store.count_waiting() == 3  # nothing changed by the refused requests
    got = store.deliver(ids[:2], "destination", "sae1", "sae2")
    assert got == [(k.key_id, k.material) for k in keys[:2]]
    with pytest.raises(KeyNotAvailable):
        store.deliver(ids[:1], "destination", "sae1", "sae2")  # a repeated dec_keys
    assert store.count_waiting() == 1
    rows = {r.key_id: r for r in store.records()}
    assert rows[ids[0]].state == "destroyed" and rows[ids[2]].state == "relayed"
    material = tables.db.conn.execute("select material from app_keys where key_id = ?", (ids[0],)).fetchone()[0]
    assert material is None


def test_expiry_and_revocation_withdraw_keys(tmp_path):
    clock = Clock()
    tables = open_tables(tmp_path / "k.db", clock=clock)
    store = tables.keys
    keys = _keys(3)
    store.add(keys[:2], "destination", ttl_s=60)
    store.add(keys[2:], "destination")
    clock.now += 61
    assert store.expire() == 2
    with pytest.raises(KeyNotAvailable):
        store.deliver([keys[0].key_id], "destination", "sae1", "sae2")
    store.revoke([keys[2].key_id], "operator request")
    with pytest.raises(KeyNotAvailable):
        store.deliver([keys[2].key_id], "destination", "sae1", "sae2")
    with pytest.raises(LifecycleError):
        store.revoke([keys[2].key_id], "again")
    events = [e["event"] for e in tables.audit.entries() if e["key_id"] == keys[0].key_id]
    assert events == ["relayed", "expired", "destroyed"]


def test_lifecycle_refuses_revival():
    with pytest.raises(LifecycleError):
        check_transition("k", KeyState.DESTROYED, KeyState.RELAYED)
    with pytest.raises(LifecycleError):
        check_transition("k", KeyState.DELIVERED, KeyState.RELAYED)


def test_maximum_key_count_and_duplicate_ids(tmp_path):
    tables = open_tables(tmp_path / "k.db", max_keys=4)
    store = tables.keys
    keys = _keys(4)
    store.add(keys[:3], "destination")
    with pytest.raises(StoreFull):
        store.add(_keys(2), "destination")
    with pytest.raises(StoreError):
        store.add([keys[0]], "destination")
    assert store.count_waiting() == 3
    # Delivered and revoked keys free their places; the count survives a failed group and a reopen.
    store.deliver([keys[0].key_id], "destination", "sae1", "sae2")
    store.revoke([keys[1].key_id], "test")
    results = tables.db.group([(store.add, (_keys(2), "destination")), (store.add, (_keys(2), "destination"))])
    assert [ok for ok, _ in results] == [True, False]
    tables.close()
    store = open_tables(tmp_path / "k.db", max_keys=4).keys
    store.add(_keys(1), "destination")
    with pytest.raises(StoreFull):
        store.add(_keys(1), "destination")
    assert store.count_waiting() == 4


def test_audit_chain_verifies_and_detects_a_modified_entry(tmp_path):
    path = tmp_path / "k.db"
    tables = open_tables(path)
    store = tables.keys
    keys = _keys(3)
    store.add_delivered(keys[:1])
    store.add(keys[1:], "destination")
    store.deliver([keys[1].key_id], "destination", "sae1", "sae2")
    assert tables.audit.verify() is None
    entries = tables.audit.entries()
    assert [e["event"] for e in entries[:4]] == ["generated", "relayed", "delivered", "destroyed"]
    assert all(k.material.hex() not in str(entries) for k in keys)  # never key material
    tables.close()
    db = sqlite3.connect(path)
    db.execute("update audit set detail = '{\"SAE\":\"mallory\"}' where seq = 3")
    db.commit()
    db.close()
    assert open_tables(path).audit.verify() == 3


def test_keys_survive_reopening(tmp_path):
    path = tmp_path / "k.db"
    tables = open_tables(path)
    keys = _keys(2)
    tables.keys.add(keys, "destination")
    tables.close()
    reopened = open_tables(path)
    assert reopened.keys.deliver([keys[1].key_id], "destination", "sae1", "sae2") == [
        (keys[1].key_id, keys[1].material)]
    reopened.keys.add(_keys(1), "destination")
    assert reopened.audit.verify() is None


async def test_concurrent_calls_share_a_commit_and_fail_alone(tmp_path):
    import asyncio

    store = NodeStore.open(tmp_path / "k.db")
    ids = [str(uuid.uuid4()) for _ in range(50)]
    calls = [store.keys.add([NewKey(i, "B", bytes(32))], "destination") for i in ids]
    calls.append(store.keys.add([NewKey(ids[0], "B", bytes(32))], "destination"))  # a duplicate
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[:-1] == [None] * 50 and isinstance(results[-1], StoreError)
    assert await store.keys.count_waiting() == 50
    assert await store.keys.verify_audit() is None  # the failed call left no audit entry
    await store.close()
    reopened = open_tables(tmp_path / "k.db")
    assert {r.key_id for r in reopened.keys.records()} == set(ids) and reopened.audit.verify() is None


def test_the_source_of_a_delivered_key_never_writes_its_material(tmp_path):
    path = tmp_path / "k.db"
    tables = open_tables(path)
    store = tables.keys
    keys = _keys(2)
    store.add_delivered(keys)
    assert {r.state for r in store.records()} == {"destroyed"} and store.count_waiting() == 0
    raw = (tmp_path / "k.db-wal").read_bytes()  # the log, before the checkpoint at close
    tables.close()
    raw += path.read_bytes()
    assert all(k.material not in raw for k in keys)


def test_relays_in_flight_until_committed_or_withdrawn(tmp_path):
    source_tables, destination_tables = open_tables(tmp_path / "a.db"), open_tables(tmp_path / "c.db")
    source, destination = source_tables.keys, destination_tables.keys
    outbox = source_tables.outbox
    committed, arrived, lost = _keys(2), _keys(2), _keys(2)
    for batch in (committed, arrived, lost):
        outbox.open([k.key_id for k in batch], [["A", "B", "C"]])
    source.add(committed, "source")  # the commit settles its outbox entries in the same transaction
    assert outbox.unsettled() == [([k.key_id for k in arrived + lost], [["A", "B", "C"]])]
    assert outbox.unsettled_among([committed[0].key_id, lost[0].key_id]) == [lost[0].key_id]

    foreign = NewKey(str(uuid.uuid4()), "D", bytes(32), "sae1", "sae2")  # another source's key (ours: B)
    destination.add(arrived + [foreign], "destination")
    withdrawn = destination.withdraw_arrivals([k.key_id for k in arrived + lost] + [foreign.key_id], "B", "test")
    assert withdrawn == 2 and destination.count_waiting() == 1
    with pytest.raises(StoreError):  # a late relay of an aborted key is refused
        destination.add(lost[:1], "destination")
    with pytest.raises(KeyNotAvailable):
        destination.deliver([arrived[0].key_id], "destination", "sae1", "sae2")
    assert destination.withdraw_arrivals([arrived[0].key_id], "B", "again") == 0  # repeating it is harmless
    states = {r.key_id: r.state for r in destination.records()}
    assert states[foreign.key_id] == "relayed" and {states[k.key_id] for k in arrived + lost} == {"destroyed"}

    outbox.close([k.key_id for k in arrived + lost], "test")
    assert outbox.unsettled() == []
    assert source_tables.audit.verify() is None and destination_tables.audit.verify() is None


async def test_the_log_is_checkpointed_off_the_commit_path(tmp_path, eventually):
    """Commits never checkpoint (that would stall the calls queued behind them); the store's
    own checkpoint thread copies the log into the database while the store is open."""
    path = tmp_path / "k.db"
    tables = open_tables(path)
    store = NodeStore(tables, checkpoint_every_s=0.1)
    assert tables.db.conn.execute("pragma wal_autocheckpoint").fetchone()[0] == 0
    before = path.stat().st_size
    await store.keys.add([NewKey(str(uuid.uuid4()), "B", bytes(32), "sae1", "sae2") for _ in range(500)],
                         "destination")
    # the keys reach the database file, not just the log
    await eventually(lambda: path.stat().st_size > before, 30, "a checkpoint")
    await store.close()
    assert open_tables(path).keys.count_waiting() == 500
