"""Link-key pools and OTP forwarding: every bit used once, accounting always balances."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qkdnet.node.keystore.link_pool import KeyPoolError, LinkKeyId, LinkKeyPool
from qkdnet.node.relay.otp import one_time_pad


def _pair(blocks):
    tx, rx = LinkKeyPool("a", 10**9), LinkKeyPool("b", 10**9)
    for frame_id, bits in enumerate(blocks, 1):
        tx.add_block(frame_id, bits)
        rx.add_block(frame_id, bits)
    return tx, rx


def _balanced(pool):
    return pool.generated_bits == pool.recount_level_bits() + pool.consumed_bits + pool.discarded_bits


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(64, 2000), min_size=1, max_size=5),
       requests=st.lists(st.sampled_from([8, 64, 256, 512]), min_size=1, max_size=40),
       seed=st.integers(0, 2**32 - 1))
def test_allocations_never_overlap_and_match_the_peer(sizes, requests, seed):
    rng = np.random.default_rng(seed)
    tx, rx = _pair([rng.integers(0, 2, n, dtype=np.uint8) for n in sizes])
    seen = set()
    for n_bits in requests:
        try:
            key_id, pad = tx.allocate(n_bits)
        except KeyPoolError:
            continue
        assert key_id not in seen
        seen.add(key_id)
        assert np.array_equal(rx.take_by_id(key_id), pad)
        with pytest.raises(KeyPoolError):
            rx.take_by_id(key_id)  # each pad exactly once
        assert _balanced(tx) and _balanced(rx)
    assert tx.consumed_bits + tx.discarded_bits == rx.consumed_bits + tx.discarded_bits


@settings(max_examples=50, deadline=None)
@given(data=st.binary(min_size=1, max_size=64), seed=st.integers(0, 2**32 - 1))
def test_one_time_pad_round_trip_over_a_path(data, seed):
    rng = np.random.default_rng(seed)
    hops = [rng.integers(0, 2, 8 * len(data), dtype=np.uint8) for _ in range(4)]
    message = data
    for pad in hops:  # each hop: decrypt with the previous pad, re-encrypt with the next
        cipher = one_time_pad(message, pad)
        assert len(cipher) == len(data)
        message = one_time_pad(cipher, pad)
    assert message == data


def test_used_bits_are_erased_and_ids_of_the_wrong_half_refused():
    bits = np.ones(1000, np.uint8)
    tx, rx = _pair([bits])
    key_id, pad = tx.allocate(256)
    assert pad.sum() == 256
    with pytest.raises(KeyPoolError):
        tx.take_by_id(key_id)  # a node never takes its own sending half by ID
    rx.take_by_id(key_id)
    tx.discard(256, "test")
    assert _balanced(tx) and tx.discard_reasons == {"test": 256}


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(64, 3000), min_size=1, max_size=5),
       batches=st.lists(st.lists(st.sampled_from([8, 64, 256, 512]), min_size=1, max_size=12), min_size=1, max_size=8),
       seed=st.integers(0, 2**32 - 1))
def test_batched_allocation_matches_one_by_one_and_the_peer_takes_it_whole(sizes, batches, seed):
    """A batch of pads is what the same pads one by one would be, or nothing at all."""
    rng = np.random.default_rng(seed)
    blocks = [rng.integers(0, 2, n, dtype=np.uint8) for n in sizes]
    tx, rx = _pair(blocks)
    single, _ = _pair(blocks)
    for batch in batches:
        before = (tx.consumed_bits, tx.discarded_bits, tx.sendable_bits)
        try:
            ids, bits = tx.allocate_many(batch)
        except KeyPoolError:
            assert (tx.consumed_bits, tx.discarded_bits, tx.sendable_bits) == before  # nothing changed
            continue
        one_by_one = [single.allocate(n) for n in batch]
        assert ids == [i for i, _ in one_by_one]
        assert np.array_equal(bits, np.concatenate([p for _, p in one_by_one]))
        assert np.array_equal(rx.take_many(ids), bits)
        assert _balanced(tx) and _balanced(rx)
    assert tx.consumed_bits == rx.consumed_bits


def test_a_used_pad_in_a_batch_stops_the_take_after_the_pads_before_it():
    tx, rx = _pair([np.ones(4096, np.uint8)])
    ids, _ = tx.allocate_many([256] * 6)
    rx.take_by_id(ids[3])
    with pytest.raises(KeyPoolError, match="already used") as error:
        rx.take_many(ids)
    assert error.value.taken_bits == 3 * 256  # the three before it: consumed, for the caller to account
    assert rx.consumed_bits == 4 * 256
    for key_id in ids[:4]:
        with pytest.raises(KeyPoolError):
            rx.take_by_id(key_id)
    assert rx.take_many(ids[4:]).size == 512
    with pytest.raises(KeyPoolError, match="not from the peer's sending half"):
        rx.take_many([LinkKeyId(1, "b", 0, 8)])
    with pytest.raises(KeyPoolError, match="unknown"):
        rx.take_many([LinkKeyId(1, "a", 2040, 16)])  # runs past the chunk's end
