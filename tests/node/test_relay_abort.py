"""Presumed abort: keys whose relay the source did not commit end up held nowhere.

Three trusted nodes A - B - C in one process, each with its own durable key store; neighbours
call each other's node methods directly (the gRPC layer is tested elsewhere), with delays where
a test needs a slow hop.
"""

import asyncio

import numpy as np
import pytest

from node.keystore.app_store import AsyncKeyStore, KeyStore, StoreError
from node.keystore.link_pool import LinkKeyPool
from node.trusted_node import RelayError, TrustedNode


class Direct:
    """A neighbour reached by calling its node; optional delays before a forward or an abort."""

    def __init__(self, nodes, name):
        self.nodes, self.name = nodes, name
        self.forward_delay_s = self.abort_delay_s = 0.0

    async def forward(self, path, hop, items):
        await asyncio.sleep(self.forward_delay_s)
        await self.nodes[self.name].forward(path, hop, items)

    async def abort(self, path, hop, key_ids):
        await asyncio.sleep(self.abort_delay_s)
        await self.nodes[self.name].abort(path, hop, key_ids)

    async def close(self):
        pass


async def _node(nodes, name, tmp_path):
    store = AsyncKeyStore(KeyStore(tmp_path / f"{name}.db"))
    nodes[name] = node = TrustedNode(name, lambda address: None, store)
    return node


async def _wire(nodes, links):
    rng = np.random.default_rng(7)
    for u, v in links:
        bits = rng.integers(0, 2, 50_000, dtype=np.uint8)
        for here, there, half in ((u, v, "a"), (v, u, "b")):
            pool = LinkKeyPool(half, 10**7)
            pool.add_block(1, bits)
            await nodes[here].keeper.open(there, f"{u}-{v}", pool)
            nodes[here].pools[there] = pool
            nodes[here].peers[there] = Direct(nodes, there)


async def _line(tmp_path):
    nodes = {}
    for name in "ABC":
        await _node(nodes, name, tmp_path)
    await _wire(nodes, [("A", "B"), ("B", "C")])
    return nodes


async def _close(nodes):
    for node in nodes.values():
        await node.outbox.close()
        await node.store.close()


async def _eventually(predicate, timeout_s=10.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def _states(node):
    return {r.key_id: r.state for r in node.store.store.records()}


async def test_a_committed_relay_leaves_nothing_in_flight(tmp_path):
    nodes = await _line(tmp_path)
    try:
        outcome = await nodes["A"].relay(["A", "B", "C"], 3, 256, 5.0)
        assert nodes["A"].store.store.unsettled_relays() == []
        assert set(_states(nodes["C"])) == set(outcome.key_ids)
        assert set(_states(nodes["C"]).values()) == {"relayed"}
    finally:
        await _close(nodes)


@pytest.mark.parametrize("late", ["relay", "abort"])
async def test_a_timed_out_relay_is_withdrawn_at_the_destination(tmp_path, late):
    """The source gives up while the keys are still on their way. Whichever reaches C first,
    the late relay or the abort, C ends without the keys, and A's outbox is settled."""
    nodes = await _line(tmp_path)
    try:
        hop = nodes["B"].peers["C"]
        hop.forward_delay_s = 0.5
        if late == "abort":  # the keys are committed at C before the abort arrives
            nodes["A"].peers["B"].abort_delay_s = 1.0
        with pytest.raises(RelayError, match="no answer in time"):
            await nodes["A"].relay(["A", "B", "C"], 2, 256, 0.2)

        async def settled():
            return (not nodes["A"].store.store.unsettled_relays() and len(_states(nodes["C"])) == 2
                    and nodes["A"].outbox.unsettled == 0)
        await _eventually(settled)
        await asyncio.sleep(0.6)  # let the late relay arrive, if it has not yet
        assert set(_states(nodes["C"]).values()) == {"destroyed"}
        assert nodes["C"].store.store.count_waiting() == 0
        events = [e["event"] for e in nodes["C"].store.store.audit_entries()]
        assert events.count("revoked") == 2 and (events.count("relayed") == 2) == (late == "abort")
        assert all(n.store.store.verify_audit() is None for n in nodes.values())
        # C refused the late relay (or revoked it), and every bit of the B-C link is accounted.
        for pool in (nodes["B"].pools["C"], nodes["C"].pools["B"]):
            assert pool.generated_bits == pool.recount_level_bits() + pool.consumed_bits + pool.discarded_bits
    finally:
        await _close(nodes)


async def test_a_source_that_crashed_before_its_commit_aborts_after_restart(tmp_path):
    """The store state a SIGKILL leaves between C's commit and A's: A's outbox holds the IDs,
    A holds no key, C holds the keys. A's restart from its store withdraws them at C."""
    nodes = await _line(tmp_path)
    try:
        def crash(*args):
            raise StoreError("killed")
        nodes["A"].store.store.add = crash  # the commit never happens ...
        nodes["A"].outbox.abandon = lambda *args: None  # ... and the process is gone: no abort either
        with pytest.raises(RelayError):
            await nodes["A"].relay(["A", "B", "C"], 4, 256, 5.0)
        assert set(_states(nodes["C"]).values()) == {"relayed"} and len(_states(nodes["C"])) == 4
        assert _states(nodes["A"]) == {}
        await nodes["A"].store.close()

        restarted = await _node(nodes, "A", tmp_path)  # same data directory
        await _wire_restarted(nodes)
        assert len(restarted.store.store.unsettled_relays()) == 1
        await restarted.outbox.resume()

        async def withdrawn():
            return nodes["C"].store.store.count_waiting() == 0 and not restarted.store.store.unsettled_relays()
        await _eventually(withdrawn)
        assert set(_states(nodes["C"]).values()) == {"destroyed"}
        revoked = [e for e in restarted.store.store.audit_entries() if e["event"] == "revoked"]
        assert len(revoked) == 4 and all(e["detail"]["role"] == "source" for e in revoked)
    finally:
        await _close(nodes)


async def _wire_restarted(nodes):
    nodes["A"].peers["B"] = Direct(nodes, "B")


async def test_a_relay_that_never_left_needs_no_abort(tmp_path):
    """No link key for the first hop: nothing left A, so A records nothing and aborts nothing."""
    nodes = await _line(tmp_path)
    try:
        with pytest.raises(RelayError, match="A->B"):
            await nodes["A"].relay(["A", "B", "C"], 1000, 256, 0.2)  # more than the A-B pool holds
        assert nodes["A"].outbox.unsettled == 0 and nodes["A"].store.store.unsettled_relays() == []
        assert _states(nodes["C"]) == {} and nodes["C"].store.store.audit_entries() == []
    finally:
        await _close(nodes)
