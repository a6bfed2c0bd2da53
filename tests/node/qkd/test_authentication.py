import pytest

from node.qkd.authentication import AuthKeyPool, MessageAuthenticator
from node.qkd.errors import AuthenticationError, AuthKeyExhausted


def test_each_pad_is_used_once_and_erased():
    secret = bytes(range(256)) * 4
    pool = AuthKeyPool(secret)
    first = pool.take(16)
    second = pool.take(16)
    assert first != second and first == secret[:16]
    assert pool.consumed_bits == 256 and pool.available_bytes == len(secret) - 32


def test_tag_round_trip_and_tamper_detection():
    secret = bytes(range(256)) * 4
    sender, receiver = MessageAuthenticator(AuthKeyPool(secret)), MessageAuthenticator(AuthKeyPool(secret))
    sender.start_block(), receiver.start_block()
    receiver.verify(b"hello", sender.tag(b"hello"))
    tag = sender.tag(b"world")
    with pytest.raises(AuthenticationError):
        receiver.verify(b"worle", tag)


def test_exhausted_pool_refuses():
    pool = AuthKeyPool(bytes(40))
    pool.take(32)
    with pytest.raises(AuthKeyExhausted):
        pool.take(16)
