"""Addressed Wegman-Carter authentication: every unit is used once, at one end's choice, and a
repeated, stale or misaddressed message is refused without using anything else."""

import random

import pytest

from qkdnet.node.qkd.authentication import (
    BOOTSTRAP_ORIGIN,
    KEY_BYTES,
    AuthKeyIndex,
    AuthKeyRange,
    AuthKeyStore,
    MessageAuthenticator,
)
from qkdnet.node.qkd.errors import AuthenticationError, AuthKeyExhausted, UnknownAuthKey

SECRET = bytes(range(256)) * 4  # 64 units: 32 for each end


def _pair(secret=SECRET):
    alice, bob = MessageAuthenticator(AuthKeyStore("alice", secret)), MessageAuthenticator(AuthKeyStore("bob", secret))
    bob.new_hash_key()
    return alice, bob


def _open_block(alice, bob, payload=b"detections"):
    """Bob's first message names the block's hash key; Alice adopts it."""
    alice.verify(payload, bob.tag(payload), opens_block=True)


def test_each_unit_is_used_once_and_erased():
    store = AuthKeyStore("alice", SECRET)
    first = store.next_index("alice")
    assert first == AuthKeyIndex(0, 0) and store.take(first, "tag") == SECRET[:KEY_BYTES]
    with pytest.raises(UnknownAuthKey):
        store.take(first, "tag")
    assert store.next_index("alice") == AuthKeyIndex(0, 2)  # Alice's units are the even ones
    assert store.next_index("bob") == AuthKeyIndex(0, 1)
    assert store.consumed_bits == 8 * KEY_BYTES and store.held("alice") == 31 and store.held("bob") == 32


def test_qkd_refills_are_used_before_the_preshared_secret():
    store = AuthKeyStore("alice", SECRET)
    store.add(500, bytes(range(5 * KEY_BYTES)), 2, 3)
    assert [store.next_index("alice"), store.next_index("bob")] == [AuthKeyIndex(500, 0), AuthKeyIndex(500, 1)]
    assert store.take(AuthKeyIndex(500, 2), "tag") == bytes(range(KEY_BYTES, 2 * KEY_BYTES))
    assert store.take(AuthKeyIndex(500, 5), "tag") == bytes(range(4 * KEY_BYTES, 5 * KEY_BYTES))
    assert store.held("alice", refills_only=True) == 1 and store.held("bob", refills_only=True) == 2
    with pytest.raises(ValueError, match="filed already"):
        store.add(500, bytes(KEY_BYTES), 1, 0)


def test_tag_round_trip_and_tamper_detection():
    alice, bob = _pair()
    _open_block(alice, bob)
    bob.verify(b"hello", alice.tag(b"hello"))
    trailer = alice.tag(b"world")
    with pytest.raises(AuthenticationError, match="failed"):
        bob.verify(b"worle", trailer)


def test_a_repeated_message_finds_its_pad_gone_and_uses_nothing():
    alice, bob = _pair()
    _open_block(alice, bob)
    trailer = alice.tag(b"sift reply")
    bob.verify(b"sift reply", trailer)
    held = bob.store.held("alice")
    with pytest.raises(UnknownAuthKey):
        bob.verify(b"sift reply", trailer)
    assert bob.store.held("alice") == held
    bob.verify(b"next", alice.tag(b"next"))  # the block goes on


def test_a_message_of_another_block_is_unknown_here():
    alice, bob = _pair()
    _open_block(alice, bob)
    stale = bob.tag(b"old block")
    bob.new_hash_key()  # Bob opens the next block
    _open_block(alice, bob, b"new detections")
    with pytest.raises(UnknownAuthKey, match="another block"):
        alice.verify(b"old block", stale)


def test_keys_chosen_by_the_wrong_end_are_refused():
    alice, bob = _pair()
    _open_block(alice, bob)
    own = alice.tag(b"to bob")
    with pytest.raises(AuthenticationError, match="may not choose"):
        alice.verify(b"to bob", own)  # Alice's pad presented back to Alice
    with pytest.raises(AuthenticationError, match="only Bob"):
        alice.new_hash_key()


def test_inventories_intersect_to_what_both_hold():
    alice, bob = AuthKeyStore("alice", SECRET), AuthKeyStore("bob", SECRET)
    alice.take(AuthKeyIndex(0, 0), "tag")  # a message Bob never received: Bob still holds 0:0
    bob.take(AuthKeyIndex(0, 3), "tag")  # a reply Alice never received
    alice.add(7, bytes(4 * KEY_BYTES), 2, 2)  # a block only Alice kept
    assert alice.inventory() == (AuthKeyRange(0, 1, 63), AuthKeyRange(7, 0, 4))
    assert bob.keep_only(alice.inventory()) == 1 and alice.keep_only(bob.inventory()) == 5
    assert alice.inventory() == bob.inventory() == (AuthKeyRange(0, 1, 2), AuthKeyRange(0, 4, 60))
    assert alice.erased_bits == 5 * 8 * KEY_BYTES


def test_an_exhausted_end_refuses_to_tag():
    alice, bob = _pair(bytes(3 * KEY_BYTES))  # Alice's two units and Bob's one (his r)
    with pytest.raises(AuthKeyExhausted):
        bob.tag(b"no pad left for Bob")
    alice.store.take(AuthKeyIndex(0, 0), "tag")
    alice.store.take(AuthKeyIndex(0, 2), "tag")
    with pytest.raises(AuthKeyExhausted):
        alice.store.next_index("alice")


def test_the_key_order_and_counts_stay_those_of_a_scan_over_every_held_key():
    """``next_index`` and ``held`` keep a heap and counters; after any mix of refills, uses and
    resynchronisations they answer as a scan over every held key would."""
    rng = random.Random(7)
    store = AuthKeyStore("alice", bytes(64 * KEY_BYTES))
    for step in range(400):
        action = rng.random()
        if action < 0.2:
            store.add(1000 + step, bytes(8 * KEY_BYTES), rng.randint(0, 4), rng.randint(0, 4))
        elif action < 0.9:
            sender = rng.choice(("alice", "bob"))
            held = [i for i in store._held if i.sender == sender]
            if held:
                store.take(rng.choice(held), "tag")
        else:
            keep = [AuthKeyRange(i.origin, i.seq, 1) for i in store._held if rng.random() < 0.8]
            store.keep_only(keep)
        for sender in ("alice", "bob"):
            mine = [i for i in store._held if i.sender == sender]
            assert store.held(sender) == len(mine)
            assert store.held(sender, refills_only=True) == sum(i.origin != BOOTSTRAP_ORIGIN for i in mine)
            if mine:
                assert store.next_index(sender) == min(mine, key=lambda i: (i.origin == BOOTSTRAP_ORIGIN, i.origin, i.seq))
