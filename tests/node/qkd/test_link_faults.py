"""Lost, repeated and late classical messages at every step of a block, in memory: the link
resynchronises and gives identical key again, and no authentication unit serves twice.
(The same over gRPC: tests/node/rpc/test_link_faults.py.)"""

import numpy as np
import pytest

from qkdnet.node.qkd.authentication import KeyUse
from qkdnet.node.qkd.link import InMemoryLink
from qkdnet.node.qkd.messages import MESSAGE_TYPES

STEPS = ["Detections", "SiftReply", "TestBits", "Reconcile", "ParityQuery", "ParityReply",
         "ReconciliationDone", "Amplify", "Confirm", "Finish"]


class Fault:
    """Acts on the first message of one type: loses it, delivers it twice, or holds it back
    until the next block (``late``)."""

    def __init__(self, kind: str, target: str) -> None:
        self.kind, self.target = kind, target
        self.fired = False
        self.late: list[tuple[str, bytes]] = []

    def __call__(self, sender: str, index: int, envelope: bytes):
        if self.fired or MESSAGE_TYPES[envelope[0]].__name__ != self.target:
            return envelope
        self.fired = True
        if self.kind == "lose":
            return []
        if self.kind == "repeat":
            return [envelope, envelope]
        self.late.append((sender, envelope))
        return []


def assert_no_unit_served_twice(ledger: list[KeyUse]) -> None:
    """Every unit tags at most once, only at the end it belongs to, and is checked at most once,
    by the other end, and only after it tagged."""
    tagged: set = set()
    checked: set = set()
    for use in ledger:
        if use.purpose == "tag":
            assert use.unit not in tagged and use.unit.sender == use.owner, use
            tagged.add(use.unit)
        else:
            assert use.unit not in checked and use.unit in tagged and use.unit.sender != use.owner, use
            checked.add(use.unit)


def _same_key(pair) -> bool:
    return bool(np.array_equal(pair.alice.key, pair.bob.key))


def _next_accepted(link: InMemoryLink, late=()):
    """The next block accepted at both ends. A block may still fail for the physics' own reasons
    (Cascade leaves an error about once in 20 small blocks); never for authentication."""
    for _ in range(3):
        pair = link.run_block(late=late)
        late = ()
        if pair.alice.accepted and pair.bob.accepted:
            return pair
        reasons = f"{pair.alice.abort_reason} {pair.bob.abort_reason}"
        assert "uthentication" not in reasons
        assert pair.alice.abort_reason != "peer stopped answering"  # Alice ended it, for a physical reason
    raise AssertionError("no block accepted in three")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lose", "repeat", "late"])
def test_the_link_recovers_from_a_fault_at_every_step(small_link, small_block, kind):
    ledger: list[KeyUse] = []
    link = InMemoryLink(small_link, small_block, seed=5, auth_ledger=ledger)
    outcomes = {}
    for step in STEPS:
        fault = Fault(kind, step)
        faulted = link.run_block(tamper=fault)
        assert fault.fired, step
        if faulted.alice.accepted and faulted.bob.accepted:
            assert _same_key(faulted), step
        outcomes[step] = (faulted.alice.accepted, faulted.bob.accepted)
        recovered = _next_accepted(link, fault.late)  # a late message arrives in the next block
        assert _same_key(recovered) and recovered.alice.net_key_bits > 0, step
    assert link.alice.auth_keys.inventory() == link.bob.auth_keys.inventory()
    assert_no_unit_served_twice(ledger)
    if kind == "repeat":  # a repeated tagged message is ignored; a repeated Cascade round is not
        assert outcomes["Detections"] == outcomes["Amplify"] == (True, True)
        assert outcomes["ParityQuery"] == (False, False)
    else:
        assert all(not bob for _, bob in outcomes.values())
        assert outcomes["Finish"] == (True, False)  # Alice's last word lost: her copy is settled later


def test_a_lost_reply_costs_one_resynchronisation(small_link, small_block):
    ledger: list[KeyUse] = []
    link = InMemoryLink(small_link, small_block, seed=5, auth_ledger=ledger)
    lost = link.run_block(tamper=Fault("lose", "TestBits"))
    assert not lost.alice.accepted and not lost.bob.accepted
    assert link.alice.auth_keys.inventory() != link.bob.auth_keys.inventory()  # Bob's pad went, Alice holds it
    again = _next_accepted(link)
    assert link.resyncs == 1 and _same_key(again)
    assert_no_unit_served_twice(ledger)
