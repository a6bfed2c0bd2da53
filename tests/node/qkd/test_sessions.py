"""The two halves of a block as message-driven state machines: a whole block in lockstep, and
every way a block ends early ends it on both sides with a reason and nothing kept."""

import numpy as np

from qkdnet.node.qkd.cascade import SHUFFLE_REUSE_BLOCKS
from qkdnet.node.qkd.channel import transmit
from qkdnet.node.qkd.link import make_endpoints, pulses_for_detections
from qkdnet.node.qkd.messages import Finish, message_type
from qkdnet.node.qkd.params import ProcessingParams
from qkdnet.node.qkd.sessions import WAITS_FOR_EARLIER_BLOCKS, AliceSession, BobSession


def _sessions(small_link, small_block, seed=5):
    alice_ep, bob_ep, nature = make_endpoints(small_link, small_block, seed)
    n_pulses = pulses_for_detections(small_link, small_block.block_detections)
    alice_rec, bob_rec, _ = transmit(small_link, n_pulses, nature)
    return AliceSession(alice_ep, 1, alice_rec, block_index=0), BobSession(bob_ep, 1, bob_rec), bob_ep


def _run(alice, bob):
    """Exchange envelopes until both sides stop answering; returns the number of round trips."""
    to_alice, rounds = bob.begin(), 0
    while to_alice:
        to_bob = [e for envelope in to_alice for e in alice.handle(envelope)]
        to_alice = [e for envelope in to_bob for e in bob.handle(envelope)]
        rounds += 1
    return rounds


def test_a_block_ends_accepted_with_the_same_key_on_both_sides(small_link, small_block):
    alice, bob, _ = _sessions(small_link, small_block)
    rounds = _run(alice, bob)
    assert alice.done and bob.done and rounds > 3
    assert alice.result.accepted and bob.result.accepted
    assert np.array_equal(alice.result.key, bob.result.key) and alice.result.key.size > 0
    assert alice.result.leak_ec_bits == bob.result.leak_ec_bits > 0


def test_an_unexpected_message_aborts_both_sides(small_link, small_block):
    alice, bob, bob_ep = _sessions(small_link, small_block)
    bob.auth.new_hash_key()  # as Bob's begin() does
    envelope = bob.auth.seal(Finish(frame_id=1, accepted=True))  # Bob's first message: authentic, out of order
    answer = alice.handle(envelope)
    assert alice.done and not alice.result.accepted
    assert "unexpected Finish, waiting for Detections" in alice.result.abort_reason
    assert alice.result.key.size == 0
    bob.handle(answer[0])  # Alice's authenticated Abort ends Bob's block too
    assert bob.done and bob.result.abort_reason.startswith("peer aborted")


def test_a_forged_message_fails_authentication(small_link, small_block):
    alice, bob, _ = _sessions(small_link, small_block)
    (detections,) = bob.begin()
    forged = detections[:-1] + bytes([detections[-1] ^ 1])  # one bit of the tag flipped
    alice.handle(forged)
    assert alice.done and not alice.result.accepted and "AuthenticationError" in alice.result.abort_reason


def test_abandon_ends_an_unanswered_block_and_later_envelopes_are_ignored(small_link, small_block):
    alice, bob, _ = _sessions(small_link, small_block)
    first = bob.begin()
    alice.abandon("peer stopped answering")
    assert alice.done and alice.result.abort_reason == "peer stopped answering"
    assert alice.handle(first[0]) == []
    alice.abandon("again")  # the first reason stands
    assert alice.result.abort_reason == "peer stopped answering"


def test_alice_keeps_a_cascade_seed_for_a_run_of_blocks_then_draws_another(small_link):
    alice, _, _ = make_endpoints(small_link, ProcessingParams(), seed=3)
    seeds = [alice.cascade_seed(block) for block in range(2 * SHUFFLE_REUSE_BLOCKS)]
    assert len(set(seeds[:SHUFFLE_REUSE_BLOCKS])) == 1 and len(set(seeds[SHUFFLE_REUSE_BLOCKS:])) == 1
    assert seeds[0] != seeds[-1]
    # By the block's place, not by the order of the calls: blocks side by side get the same seeds.
    assert [alice.cascade_seed(block) for block in reversed(range(2 * SHUFFLE_REUSE_BLOCKS))] == seeds[::-1]


def test_two_blocks_of_one_link_interleaved_step_by_step_both_end_accepted_and_no_unit_serves_twice(
        small_link, small_block):
    """Blocks of one link may run side by side (``blocks_in_flight``): each has its own hash key,
    pads and transcript, and the endpoints' shared store never hands one pad to both."""
    from tests.node.qkd.test_link_faults import assert_no_unit_served_twice

    ledger: list = []
    alice_ep, bob_ep, nature = make_endpoints(small_link, small_block, 9, auth_ledger=ledger)
    n_pulses = pulses_for_detections(small_link, small_block.block_detections)
    pairs = []
    for frame_id in (1, 2):
        alice_rec, bob_rec, _ = transmit(small_link, n_pulses, nature)
        pairs.append((AliceSession(alice_ep, frame_id, alice_rec, block_index=frame_id - 1),
                      BobSession(bob_ep, frame_id, bob_rec)))
    to_alice = [bob.begin() for _, bob in pairs]
    held_back = 0
    while any(to_alice):  # one message step of each block in turn, until both stop answering
        for i, (alice, bob) in enumerate(pairs):
            if any(message_type(e) in WAITS_FOR_EARLIER_BLOCKS for e in to_alice[i]) and not alice_ep.ended_before(i):
                held_back += 1  # Alice decides its refill only once every earlier block has ended
                continue
            to_bob = [e for envelope in to_alice[i] for e in alice.handle(envelope)]
            to_alice[i] = [e for envelope in to_bob for e in bob.handle(envelope)]
    assert held_back > 0
    for alice, bob in pairs:
        assert alice.result.accepted and bob.result.accepted
        assert np.array_equal(alice.result.key, bob.result.key) and alice.result.key.size > 0
        assert alice.result.auth_bits == bob.result.auth_bits > 0  # each counts its own block's units
    assert not np.array_equal(pairs[0][0].result.key[:256], pairs[1][0].result.key[:256])
    assert_no_unit_served_twice(ledger)
    assert sum(p[0].result.auth_bits for p in pairs) == alice_ep.auth_keys.consumed_bits
