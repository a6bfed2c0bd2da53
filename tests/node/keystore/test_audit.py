"""The audit log is tamper-evident: an edited entry, a re-chained log, a cut tail and a forged
anchor are each detected, by the node at start and by ``qkdnet audit verify``."""

import hashlib
import json
import sqlite3
import subprocess
import sys
import uuid

import pytest

from qkdnet.node.errors import StoreFailure
from qkdnet.node.keystore.app_store import NewKey
from qkdnet.node.keystore.audit import anchor_path, key_path, verify_file
from qkdnet.node.keystore.store import NodeStore, open_tables


def _store_with_history(path, keys=4):
    tables = open_tables(path)
    batch = [NewKey(str(uuid.uuid4()), "B", bytes([i + 1]) * 32, "sae1", "sae2") for i in range(keys)]
    tables.keys.add(batch, "destination")
    tables.keys.deliver([batch[0].key_id], "destination", "sae1", "sae2")
    tables.close()  # anchors the head
    return path


def _rewrite(path, sql, *args):
    db = sqlite3.connect(path)
    db.execute(sql, args)
    db.commit()
    db.close()


def test_an_intact_log_verifies_and_is_keyed_outside_the_database(tmp_path):
    path = _store_with_history(tmp_path / "k.db")
    count, problem = verify_file(path)
    assert count == 6 and problem is None  # four arrivals, one delivery and its destruction
    assert key_path(path).stat().st_mode & 0o777 == 0o600
    assert key_path(path).read_bytes() not in path.read_bytes()


def test_an_edited_entry_is_detected(tmp_path):
    path = _store_with_history(tmp_path / "k.db")
    _rewrite(path, "update audit set detail = ? where seq = 5", '{"SAE":"mallory"}')
    assert verify_file(path)[1].seq == 5


def test_a_re_chained_log_is_detected(tmp_path):
    """Whoever edits entry 3 and recomputes every later hash without the node's key is caught."""
    path = _store_with_history(tmp_path / "k.db")
    db = sqlite3.connect(path)
    rows = db.execute("select seq, at, event, key_id, detail from audit where seq >= 3 order by seq").fetchall()
    prev = db.execute("select hash from audit where seq = 2").fetchone()[0]
    for seq, at, event, key_id, detail in rows:
        if seq == 3:
            detail = '{"SAE":"mallory"}'
        body = json.dumps([prev, seq, repr(at), event, key_id, detail], separators=(",", ":"))
        digest = hashlib.sha256(body.encode()).hexdigest()
        db.execute("update audit set detail = ?, prev = ?, hash = ? where seq = ?", (detail, prev, digest, seq))
        prev = digest
    db.commit()
    db.close()
    assert verify_file(path)[1].seq == 3


def test_a_cut_tail_and_a_forged_anchor_are_detected(tmp_path):
    path = _store_with_history(tmp_path / "k.db")
    _rewrite(path, "delete from audit where seq >= 5")
    problem = verify_file(path)[1]
    assert problem.seq == 5 and "anchor names 6" in problem.what
    anchor = anchor_path(path)
    anchor.write_text(anchor.read_text().replace("6 ", "4 ", 1))
    assert "not signed" in verify_file(path)[1].what


def test_a_node_never_opens_a_tampered_log(tmp_path):
    path = _store_with_history(tmp_path / "k.db")
    _rewrite(path, "delete from audit where seq = 6")
    with pytest.raises(StoreFailure, match="audit entry 6"):
        NodeStore.open(path)


async def test_the_head_is_anchored_after_commits_and_at_close(tmp_path, eventually):
    store = NodeStore.open(tmp_path / "k.db")
    await store.keys.add([NewKey(str(uuid.uuid4()), "B", bytes(32), "sae1", "sae2")], "destination")
    await eventually(lambda: anchor_path(tmp_path / "k.db").exists(), 10, "an anchor")
    await store.close()
    assert anchor_path(tmp_path / "k.db").read_text().startswith("1 ")


def test_qkdnet_audit_verify(tmp_path):
    state = tmp_path / "state"
    path = _store_with_history(_node_dir(state, "A") / "keys.db")

    def audit(*args):
        return subprocess.run([sys.executable, "-m", "qkdnet.orchestrator", "audit", "verify", *args, "--state-dir",
                               str(state)], capture_output=True, text=True, timeout=60)
    result = audit("A")
    assert result.returncode == 0 and "6 entries, intact" in result.stdout
    _rewrite(path, "update audit set event = 'delivered' where seq = 2")
    result = audit("A")
    assert result.returncode == 1 and "audit entry 2" in result.stdout
    result = audit("Z")
    assert result.returncode == 2 and "no key store for node 'Z'" in result.stderr


def _node_dir(state, name):
    directory = state / "nodes" / name
    directory.mkdir(parents=True)
    return directory
