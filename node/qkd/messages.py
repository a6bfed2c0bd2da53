"""The classical messages between Alice's and Bob's halves, and their byte encoding.

Layer: sans-I/O codec. Every message is a frozen dataclass whose fields are ints, floats,
bools, strs, bytes or numpy arrays; ``encode_parts``/``decode`` turn them into a self-describing
byte string (type code, then fields in declaration order, little-endian). The network layer
carries these bytes in protobuf frames; the engine never sees a socket.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .errors import ProtocolError

_ARRAY_DTYPES: dict[int, np.dtype] = {0: np.dtype("<u1"), 1: np.dtype("<u4"), 2: np.dtype("<i8"), 3: np.dtype("<f8")}
_DTYPE_CODES = {v: k for k, v in _ARRAY_DTYPES.items()}


@dataclass(frozen=True)
class Message:
    type_code: ClassVar[int] = 0
    frame_id: int


@dataclass(frozen=True)
class Detections(Message):
    """Bob -> Alice: which slots clicked (as gaps) and his measurement bases (packed bits)."""

    type_code: ClassVar[int] = 1
    n_pulses: int
    slot_gaps: np.ndarray  # uint32 gaps between clicked slots (first from 0)
    bases: bytes


@dataclass(frozen=True)
class SiftReply(Message):
    """Alice -> Bob: her preparation bases for the reported slots (packed bits)."""

    type_code: ClassVar[int] = 2
    bases: bytes


@dataclass(frozen=True)
class TestBits(Message):
    """Bob -> Alice: his bits of every X-X event, disclosed for the phase-error estimate."""

    type_code: ClassVar[int] = 3
    bits: bytes


@dataclass(frozen=True)
class Reconcile(Message):
    """Alice -> Bob: estimation passed; Cascade block sizes, the public permutation seed, and the
    authentication key (an ``AuthKeyIndex``) that will tag the whole Cascade transcript."""

    type_code: ClassVar[int] = 4
    qber_estimate: float
    block_sizes: np.ndarray  # int64
    seed: int
    transcript_key_origin: int
    transcript_key_seq: int


@dataclass(frozen=True)
class ParityQuery(Message):
    """Bob -> Alice: one Cascade round of questions (transcript-authenticated)."""

    type_code: ClassVar[int] = 5
    pass_index: np.ndarray  # uint8
    node: np.ndarray  # int64


@dataclass(frozen=True)
class ParityReply(Message):
    """Alice -> Bob: the parities asked for, packed (transcript-authenticated)."""

    type_code: ClassVar[int] = 6
    parities: bytes
    count: int


@dataclass(frozen=True)
class ReconciliationDone(Message):
    """Bob -> Alice: every block agrees (Cascade) or every frame is decoded or dropped (LDPC);
    carries the reconciliation transcript tag and the LDPC frames dropped (none for Cascade)."""

    type_code: ClassVar[int] = 7
    corrected_bits: int
    transcript_tag: bytes
    dropped_frames: np.ndarray  # int64 frame indices


@dataclass(frozen=True)
class Amplify(Message):
    """Alice -> Bob: verification hash and tag, final key length, the privacy-amplification hash
    (``amplification.HashChoice`` bytes), and how many authentication keys for each end the final
    key refills first (the rest is link key)."""

    type_code: ClassVar[int] = 8
    hash_key: bytes
    tag: bytes
    key_bits: int
    hash_choice: bytes
    auth_refill_alice: int
    auth_refill_bob: int


@dataclass(frozen=True)
class Confirm(Message):
    """Bob -> Alice: whether his verification tag matched."""

    type_code: ClassVar[int] = 9
    ok: bool


@dataclass(frozen=True)
class Finish(Message):
    """Alice -> Bob: the block's key is accepted on her side."""

    type_code: ClassVar[int] = 10
    accepted: bool


@dataclass(frozen=True)
class Abort(Message):
    """Either way: the block ends without key, for the stated reason."""

    type_code: ClassVar[int] = 11
    reason: str


@dataclass(frozen=True)
class Syndromes(Message):
    """Alice -> Bob: LDPC reconciliation instead of Cascade. The QBER estimate and seed fix the
    plan (``ldpc.plan``); every frame's syndrome (packed) and 32-bit tag; the authentication key
    that will tag the transcript of any retry rounds."""

    type_code: ClassVar[int] = 12
    qber_estimate: float
    qber_upper: float
    seed: int
    syndromes: bytes
    tags: np.ndarray  # uint32, one per frame
    transcript_key_origin: int
    transcript_key_seq: int


@dataclass(frozen=True)
class RevealRequest(Message):
    """Bob -> Alice: the frames he could not decode, for the given retry (transcript-authenticated)."""

    type_code: ClassVar[int] = 13
    retry: int
    frames: np.ndarray  # int64


@dataclass(frozen=True)
class Reveal(Message):
    """Alice -> Bob: the retry's revealed filler bits of the asked frames (transcript-authenticated)."""

    type_code: ClassVar[int] = 14
    bits: bytes
    count: int


MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.type_code: cls for cls in (Detections, SiftReply, TestBits, Reconcile, ParityQuery,
                                   ParityReply, ReconciliationDone, Amplify, Confirm, Finish, Abort,
                                   Syndromes, RevealRequest, Reveal)}
TRANSCRIPT_TYPES = (ParityQuery, ParityReply, RevealRequest, Reveal)


def message_type(envelope: bytes) -> type[Message] | None:
    """The message type an envelope says it carries (by its first byte, nothing decoded), or None."""
    return MESSAGE_TYPES.get(envelope[0]) if envelope else None


def frame_of(envelope: bytes) -> int | None:
    """The frame an envelope says it belongs to (unauthenticated), or None if unreadable."""
    try:
        (frame_id,) = struct.unpack_from("<q", envelope, 1)  # every message starts with its frame
    except struct.error:
        return None
    return int(frame_id)


_LAYOUTS: dict[type[Message], tuple[tuple[str, str], ...]] = {}


def _layout(cls: type[Message]) -> tuple[tuple[str, str], ...]:
    """(name, kind) of each field in declaration order, read once per class (a Cascade round
    encodes and decodes two messages; ``dataclasses.fields`` each time was a third of it)."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = tuple((f.name, f.type if isinstance(f.type, str) else f.type.__name__)
                                       for f in dataclasses.fields(cls))
    return layout


def encode_parts(message: Message) -> list[bytes | memoryview]:
    """The message's byte string in pieces, unjoined: arrays as views of their memory, so that
    the one join that makes the envelope is the only copy (a 4 M-detection block's report is
    16 MB)."""
    parts: list[bytes | memoryview] = [struct.pack("<B", message.type_code)]
    for name, kind in _layout(type(message)):
        value = getattr(message, name)
        if kind == "bool":
            parts.append(struct.pack("<?", bool(value)))
        elif kind == "int":
            parts.append(struct.pack("<q", int(value)))
        elif kind == "float":
            parts.append(struct.pack("<d", float(value)))
        elif kind == "str":
            raw = value.encode("utf-8")
            parts.append(struct.pack("<I", len(raw)) + raw)
        elif kind == "bytes":
            parts.append(struct.pack("<I", len(value)) + value)
        elif kind == "np.ndarray" and isinstance(value, np.ndarray):
            code = _DTYPE_CODES.get(value.dtype)  # the usual case: a native little-endian dtype
            if code is None:
                dtype = value.dtype.newbyteorder("<") if value.dtype.byteorder == ">" else value.dtype
                code = _DTYPE_CODES.get(np.dtype(dtype.str.replace("|", "<").replace("=", "<")))
            if code is None:
                raise ProtocolError(f"cannot encode array of {value.dtype}")
            parts.append(struct.pack("<BQ", code, value.size))
            parts.append(np.ascontiguousarray(value, _ARRAY_DTYPES[code]).data.cast("B"))
        else:
            raise ProtocolError(f"cannot encode field {name} of type {type(value).__name__}")
    return parts


def decode(data: bytes | memoryview) -> Message:
    """The message in ``data``. Its arrays are read-only views of ``data``, not copies."""
    try:
        cls = MESSAGE_TYPES[data[0]]
        offset = 1
        values = {}
        for name, kind in _layout(cls):
            if kind == "bool":
                (values[name],) = struct.unpack_from("<?", data, offset)
                offset += 1
            elif kind == "int":
                (values[name],) = struct.unpack_from("<q", data, offset)
                offset += 8
            elif kind == "float":
                (values[name],) = struct.unpack_from("<d", data, offset)
                offset += 8
            elif kind in ("str", "bytes"):
                (length,) = struct.unpack_from("<I", data, offset)
                raw = data[offset + 4:offset + 4 + length]
                if len(raw) != length:
                    raise ProtocolError("truncated message")
                values[name] = bytes(raw).decode("utf-8") if kind == "str" else bytes(raw)
                offset += 4 + length
            elif kind == "np.ndarray":
                code, count = struct.unpack_from("<BQ", data, offset)
                dtype = _ARRAY_DTYPES[code]
                offset += 9
                end = offset + count * dtype.itemsize
                if end > len(data):
                    raise ProtocolError("truncated message")
                values[name] = np.frombuffer(data, dtype, count, offset)
                offset = end
            else:  # pragma: no cover - guarded by the dataclass definitions above
                raise ProtocolError(f"unsupported field type {kind}")
        if offset != len(data):
            raise ProtocolError("trailing bytes after message")
        return cls(**values)
    except (IndexError, KeyError, struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed message: {exc}") from None
