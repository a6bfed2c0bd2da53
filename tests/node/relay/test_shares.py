import pytest
from hypothesis import given
from hypothesis import strategies as st

from qkdnet.node.relay.shares import ExposureLog, ShareAssembler, combine_shares, split_key


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=2, max_value=6))
def test_shares_combine_to_the_key_and_each_share_differs_from_it(key, count):
    shares = split_key(key, count)
    assert len(shares) == count and all(len(s) == len(key) for s in shares)
    assert combine_shares(shares) == key
    # k - 1 shares say nothing on their own: any strict subset combines to something else (w.h.p.)
    if len(key) >= 8:
        assert combine_shares(shares[1:]) != key


def test_assembler_returns_the_key_after_the_last_share_only():
    key = bytes(range(32))
    shares = split_key(key, 3)
    assembler = ShareAssembler()
    assert assembler.add("k1", 2, 3, shares[1], "A", now=0.0) is None
    assert assembler.add("k1", 3, 3, shares[2], "A", now=1.0) is None
    assert assembler.add("k1", 1, 3, shares[0], "A", now=2.0) == key
    assert assembler.waiting == 0


def test_assembler_refuses_repeated_and_inconsistent_shares():
    assembler = ShareAssembler()
    assembler.add("k", 1, 2, b"\x00" * 4, "A", now=0.0)
    with pytest.raises(ValueError, match="twice"):
        assembler.add("k", 1, 2, b"\x01" * 4, "A", now=0.0)
    with pytest.raises(ValueError, match="disagrees"):
        assembler.add("k", 2, 3, b"\x01" * 4, "A", now=0.0)
    with pytest.raises(ValueError, match="not a valid share"):
        assembler.add("j", 3, 2, b"\x01" * 4, "A", now=0.0)


def test_incomplete_keys_expire():
    assembler = ShareAssembler(ttl_s=10.0)
    assembler.add("k", 1, 2, b"\x00" * 4, "A", now=0.0)
    assert assembler.expire(11.0) == ["k"] and assembler.dropped_incomplete == 1
    assert assembler.add("k", 2, 2, b"\x00" * 4, "A", now=12.0) is None  # its first share is gone


def test_exposure_log_counts_whole_keys_and_shares():
    log = ExposureLog(size=2)
    log.record("a", 0, 0)
    log.record("b", 1, 2)
    log.record("c", 2, 2)
    assert (log.keys_read_whole, log.shares_read) == (1, 2)
    assert [e.key_id for e in log.entries] == ["b", "c"]
