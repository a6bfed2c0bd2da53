"""Durable key store: lifecycle, all-or-nothing delivery, expiry, revocation, audit chain, reopen."""

import sqlite3
import uuid

import pytest

from qkdnet.node.errors import InvalidRequest, KeyNotAvailable, PermissionDenied, StoreError, StoreFailure, StoreFull
from qkdnet.node.keystore.app_store import NewKey
from qkdnet.node.keystore.lifecycle import KeyState, LifecycleError, check_transition
from qkdnet.node.keystore.store import NodeStore, open_tables


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
    with pytest.raises(PermissionDenied):
        store.deliver(ids, "destination", "sae1", "sae3")  # not the slave named at enc_keys
    with pytest.raises(KeyNotAvailable):
        store.deliver(ids, "destination", "sae0", "sae2")  # the slave, naming another master
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


def _files_holding(directory, secrets_):
    found = set()
    for path in directory.iterdir():
        if path.is_file():
            data = path.read_bytes()
            found |= {s for s in secrets_ if s in data}
    return found


async def test_destroyed_keys_are_in_no_file_the_node_keeps(tmp_path, eventually):
    """Issue 14: after delivery, expiry or revocation a key's bytes are in no file of the data
    directory, the write-ahead log included."""
    import os

    clock = Clock()
    store = NodeStore(open_tables(tmp_path / "k.db", clock=clock), checkpoint_every_s=0.05)
    keys = [NewKey(str(uuid.uuid4()), "B", os.urandom(32), "sae1", "sae2") for _ in range(6)]
    await store.keys.add(keys[:2], "destination", ttl_s=10)
    await store.keys.add(keys[2:], "destination")
    await store.keys.deliver([keys[2].key_id], "destination", "sae1", "sae2")
    await store.keys.revoke([keys[3].key_id], "test")
    clock.now += 11
    assert await store.keys.expire() == 2
    destroyed, held = {k.material for k in keys[:4]}, {k.material for k in keys[4:]}
    await eventually(lambda: not _files_holding(tmp_path, destroyed), 30, "destroyed keys gone from every file")
    assert _files_holding(tmp_path, held) == held  # still there, durably
    await store.close()


def test_destroyed_keys_are_gone_after_a_crash_and_restart(tmp_path):
    """A node killed right after delivering: at the next start the log is emptied before use."""
    import os
    import subprocess
    import sys

    material = os.urandom(32)
    script = (
        "import os, sys, uuid\n"
        "from node.keystore.app_store import NewKey\n"
        "from node.keystore.store import open_tables\n"
        f"t = open_tables({str(tmp_path / 'k.db')!r})\n"
        f"k = NewKey(str(uuid.uuid4()), 'B', bytes.fromhex({material.hex()!r}), 'sae1', 'sae2')\n"
        "t.keys.add([k], 'destination')\n"
        "t.keys.deliver([k.key_id], 'destination', 'sae1', 'sae2')\n"
        "os._exit(0)\n")  # no close, no checkpoint: as a SIGKILL leaves it
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert _files_holding(tmp_path, {material}) == {material}  # the log still has the delivered key
    NodeStore.open(tmp_path / "k.db")
    assert not _files_holding(tmp_path, {material})


def test_comparison_digests_are_salted_and_never_given_for_short_keys(tmp_path):
    store = open_tables(tmp_path / "k.db").keys
    long_key, short_key = NewKey(str(uuid.uuid4()), "B", bytes(range(32))), NewKey(str(uuid.uuid4()), "B", b"\x07")
    store.add([long_key, short_key], "source")
    first = {e.key_id: e.digest for e in store.listing("B", b"1" * 16)}
    second = {e.key_id: e.digest for e in store.listing("B", b"2" * 16)}
    assert first[long_key.key_id] and first[long_key.key_id] != second[long_key.key_id]
    assert first[short_key.key_id] == b"" == second[short_key.key_id]  # any digest would reveal 8 bits
    assert long_key.material not in first[long_key.key_id]
    with pytest.raises(InvalidRequest):
        store.listing("B", b"short")


def test_a_failed_commit_leaves_memory_and_disk_consistent(tmp_path):
    """Issue 14: a commit the database refuses (here: it may not grow, as on a full disk) is a
    StoreFailure; the audit chain verifies and the count of held keys matches the disk."""
    tables = open_tables(tmp_path / "k.db")
    store = tables.keys
    store.add(_keys(3), "destination")
    pages = tables.db.conn.execute("pragma page_count").fetchone()[0]
    tables.db.conn.execute(f"pragma max_page_count = {pages}")
    with pytest.raises(StoreFailure):
        for _ in range(200):  # until a page more is needed
            store.add(_keys(20), "destination")
    held = tables.db.conn.execute("select count(*) from app_keys where state = 'relayed'").fetchone()[0]
    assert store.room == store.max_keys - held and store.count_waiting() == held
    assert tables.audit.verify() is None
    tables.db.conn.execute(f"pragma max_page_count = {10 * pages + 1000}")
    store.add(_keys(2), "destination")  # the chain goes on where the disk says it ends
    assert tables.audit.verify() is None and store.count_waiting() == held + 2
