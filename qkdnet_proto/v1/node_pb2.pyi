from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QuantumFrame(_message.Message):
    __slots__ = ("link_id", "frame_id", "n_pulses", "count", "slot_gaps", "bases", "bits", "double_clicks", "end_s")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    N_PULSES_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SLOT_GAPS_FIELD_NUMBER: _ClassVar[int]
    BASES_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_CLICKS_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    frame_id: int
    n_pulses: int
    count: int
    slot_gaps: bytes
    bases: bytes
    bits: bytes
    double_clicks: bytes
    end_s: float
    def __init__(self, link_id: _Optional[str] = ..., frame_id: _Optional[int] = ..., n_pulses: _Optional[int] = ..., count: _Optional[int] = ..., slot_gaps: _Optional[bytes] = ..., bases: _Optional[bytes] = ..., bits: _Optional[bytes] = ..., double_clicks: _Optional[bytes] = ..., end_s: _Optional[float] = ...) -> None: ...

class PoolChunk(_message.Message):
    __slots__ = ("half", "frame_id", "unused", "size")
    HALF_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    UNUSED_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    half: str
    frame_id: int
    unused: bytes
    size: int
    def __init__(self, half: _Optional[str] = ..., frame_id: _Optional[int] = ..., unused: _Optional[bytes] = ..., size: _Optional[int] = ...) -> None: ...

class PoolInventory(_message.Message):
    __slots__ = ("link_id", "chunks")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    chunks: _containers.RepeatedCompositeFieldContainer[PoolChunk]
    def __init__(self, link_id: _Optional[str] = ..., chunks: _Optional[_Iterable[_Union[PoolChunk, _Mapping]]] = ...) -> None: ...

class AuthUnits(_message.Message):
    __slots__ = ("origin", "first", "units")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    origin: int
    first: int
    units: int
    def __init__(self, origin: _Optional[int] = ..., first: _Optional[int] = ..., units: _Optional[int] = ...) -> None: ...

class AuthResync(_message.Message):
    __slots__ = ("link_id", "held", "frames")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    held: _containers.RepeatedCompositeFieldContainer[AuthUnits]
    frames: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, link_id: _Optional[str] = ..., held: _Optional[_Iterable[_Union[AuthUnits, _Mapping]]] = ..., frames: _Optional[_Iterable[int]] = ...) -> None: ...

class ClassicalBatch(_message.Message):
    __slots__ = ("link_id", "frame_id", "envelopes", "done")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    frame_id: int
    envelopes: _containers.RepeatedScalarFieldContainer[bytes]
    done: bool
    def __init__(self, link_id: _Optional[str] = ..., frame_id: _Optional[int] = ..., envelopes: _Optional[_Iterable[bytes]] = ..., done: _Optional[bool] = ...) -> None: ...

class AbortRequest(_message.Message):
    __slots__ = ("path", "hop", "key_ids")
    PATH_FIELD_NUMBER: _ClassVar[int]
    HOP_FIELD_NUMBER: _ClassVar[int]
    KEY_IDS_FIELD_NUMBER: _ClassVar[int]
    path: _containers.RepeatedScalarFieldContainer[str]
    hop: int
    key_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, path: _Optional[_Iterable[str]] = ..., hop: _Optional[int] = ..., key_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ForwardRequests(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[ForwardRequest]
    def __init__(self, calls: _Optional[_Iterable[_Union[ForwardRequest, _Mapping]]] = ...) -> None: ...

class ForwardReplies(_message.Message):
    __slots__ = ("replies",)
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[ForwardReply]
    def __init__(self, replies: _Optional[_Iterable[_Union[ForwardReply, _Mapping]]] = ...) -> None: ...

class LinkKeyId(_message.Message):
    __slots__ = ("frame_id", "half", "start", "length")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    HALF_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    half: str
    start: int
    length: int
    def __init__(self, frame_id: _Optional[int] = ..., half: _Optional[str] = ..., start: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class RelayItem(_message.Message):
    __slots__ = ("key_id", "ciphertext", "link_key", "master_sae", "slave_sae", "share_index", "share_count")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    LINK_KEY_FIELD_NUMBER: _ClassVar[int]
    MASTER_SAE_FIELD_NUMBER: _ClassVar[int]
    SLAVE_SAE_FIELD_NUMBER: _ClassVar[int]
    SHARE_INDEX_FIELD_NUMBER: _ClassVar[int]
    SHARE_COUNT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    ciphertext: bytes
    link_key: LinkKeyId
    master_sae: str
    slave_sae: str
    share_index: int
    share_count: int
    def __init__(self, key_id: _Optional[str] = ..., ciphertext: _Optional[bytes] = ..., link_key: _Optional[_Union[LinkKeyId, _Mapping]] = ..., master_sae: _Optional[str] = ..., slave_sae: _Optional[str] = ..., share_index: _Optional[int] = ..., share_count: _Optional[int] = ...) -> None: ...

class ForwardRequest(_message.Message):
    __slots__ = ("path", "hop", "items", "call_id")
    PATH_FIELD_NUMBER: _ClassVar[int]
    HOP_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    path: _containers.RepeatedScalarFieldContainer[str]
    hop: int
    items: _containers.RepeatedCompositeFieldContainer[RelayItem]
    call_id: int
    def __init__(self, path: _Optional[_Iterable[str]] = ..., hop: _Optional[int] = ..., items: _Optional[_Iterable[_Union[RelayItem, _Mapping]]] = ..., call_id: _Optional[int] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("kind", "message", "failed_from", "failed_to")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FROM_FIELD_NUMBER: _ClassVar[int]
    FAILED_TO_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message: str
    failed_from: str
    failed_to: str
    def __init__(self, kind: _Optional[str] = ..., message: _Optional[str] = ..., failed_from: _Optional[str] = ..., failed_to: _Optional[str] = ...) -> None: ...

class ForwardReply(_message.Message):
    __slots__ = ("call_id", "failure")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    failure: Failure
    def __init__(self, call_id: _Optional[int] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class ClockRequest(_message.Message):
    __slots__ = ("to_s", "horizon_s")
    TO_S_FIELD_NUMBER: _ClassVar[int]
    HORIZON_S_FIELD_NUMBER: _ClassVar[int]
    to_s: float
    horizon_s: float
    def __init__(self, to_s: _Optional[float] = ..., horizon_s: _Optional[float] = ...) -> None: ...

class LinkStateRequest(_message.Message):
    __slots__ = ("peer", "up", "link")
    PEER_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    peer: str
    up: bool
    link: LinkConfig
    def __init__(self, peer: _Optional[str] = ..., up: _Optional[bool] = ..., link: _Optional[_Union[LinkConfig, _Mapping]] = ...) -> None: ...

class ImpairmentRequest(_message.Message):
    __slots__ = ("peer", "extra_loss_db", "misalignment_error", "dark_count_factor", "intercept_resend_fraction", "photon_number_splitting", "misalignment_drift_per_s")
    PEER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_LOSS_DB_FIELD_NUMBER: _ClassVar[int]
    MISALIGNMENT_ERROR_FIELD_NUMBER: _ClassVar[int]
    DARK_COUNT_FACTOR_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_RESEND_FRACTION_FIELD_NUMBER: _ClassVar[int]
    PHOTON_NUMBER_SPLITTING_FIELD_NUMBER: _ClassVar[int]
    MISALIGNMENT_DRIFT_PER_S_FIELD_NUMBER: _ClassVar[int]
    peer: str
    extra_loss_db: float
    misalignment_error: float
    dark_count_factor: float
    intercept_resend_fraction: float
    photon_number_splitting: bool
    misalignment_drift_per_s: float
    def __init__(self, peer: _Optional[str] = ..., extra_loss_db: _Optional[float] = ..., misalignment_error: _Optional[float] = ..., dark_count_factor: _Optional[float] = ..., intercept_resend_fraction: _Optional[float] = ..., photon_number_splitting: _Optional[bool] = ..., misalignment_drift_per_s: _Optional[float] = ...) -> None: ...

class ExposureRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RevokeRequest(_message.Message):
    __slots__ = ("key_ids", "reason")
    KEY_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    key_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, key_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ExposureEntry(_message.Message):
    __slots__ = ("key_id", "share_index", "share_count")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SHARE_INDEX_FIELD_NUMBER: _ClassVar[int]
    SHARE_COUNT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    share_index: int
    share_count: int
    def __init__(self, key_id: _Optional[str] = ..., share_index: _Optional[int] = ..., share_count: _Optional[int] = ...) -> None: ...

class ExposureList(_message.Message):
    __slots__ = ("entries", "keys_read_whole", "shares_read")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    KEYS_READ_WHOLE_FIELD_NUMBER: _ClassVar[int]
    SHARES_READ_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ExposureEntry]
    keys_read_whole: int
    shares_read: int
    def __init__(self, entries: _Optional[_Iterable[_Union[ExposureEntry, _Mapping]]] = ..., keys_read_whole: _Optional[int] = ..., shares_read: _Optional[int] = ...) -> None: ...

class LinkConfig(_message.Message):
    __slots__ = ("link_id", "peer", "peer_address", "role", "params_json", "processing_json", "bootstrap_secret", "pool_capacity_bits", "seed")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_JSON_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_SECRET_FIELD_NUMBER: _ClassVar[int]
    POOL_CAPACITY_BITS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    peer: str
    peer_address: str
    role: str
    params_json: str
    processing_json: str
    bootstrap_secret: bytes
    pool_capacity_bits: int
    seed: int
    def __init__(self, link_id: _Optional[str] = ..., peer: _Optional[str] = ..., peer_address: _Optional[str] = ..., role: _Optional[str] = ..., params_json: _Optional[str] = ..., processing_json: _Optional[str] = ..., bootstrap_secret: _Optional[bytes] = ..., pool_capacity_bits: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class NodeConfig(_message.Message):
    __slots__ = ("name", "links", "time_scale", "sae_nodes", "kme", "routing", "fresh_start", "clock")
    class SaeNodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    TIME_SCALE_FIELD_NUMBER: _ClassVar[int]
    SAE_NODES_FIELD_NUMBER: _ClassVar[int]
    KME_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    FRESH_START_FIELD_NUMBER: _ClassVar[int]
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    name: str
    links: _containers.RepeatedCompositeFieldContainer[LinkConfig]
    time_scale: float
    sae_nodes: _containers.ScalarMap[str, str]
    kme: KmeConfig
    routing: RoutingState
    fresh_start: bool
    clock: str
    def __init__(self, name: _Optional[str] = ..., links: _Optional[_Iterable[_Union[LinkConfig, _Mapping]]] = ..., time_scale: _Optional[float] = ..., sae_nodes: _Optional[_Mapping[str, str]] = ..., kme: _Optional[_Union[KmeConfig, _Mapping]] = ..., routing: _Optional[_Union[RoutingState, _Mapping]] = ..., fresh_start: _Optional[bool] = ..., clock: _Optional[str] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, path: _Optional[_Iterable[str]] = ...) -> None: ...

class KmeConfig(_message.Message):
    __slots__ = ("key_ttl_s", "max_keys", "max_key_per_request", "default_key_size", "max_key_size", "min_key_size")
    KEY_TTL_S_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_FIELD_NUMBER: _ClassVar[int]
    MAX_KEY_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_KEY_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_KEY_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_KEY_SIZE_FIELD_NUMBER: _ClassVar[int]
    key_ttl_s: float
    max_keys: int
    max_key_per_request: int
    default_key_size: int
    max_key_size: int
    min_key_size: int
    def __init__(self, key_ttl_s: _Optional[float] = ..., max_keys: _Optional[int] = ..., max_key_per_request: _Optional[int] = ..., default_key_size: _Optional[int] = ..., max_key_size: _Optional[int] = ..., min_key_size: _Optional[int] = ...) -> None: ...

class LinkView(_message.Message):
    __slots__ = ("u", "v", "up", "aborted", "state", "length_km", "pool_capacity_bits", "pool_bits", "sendable_u_bits", "sendable_v_bits", "secret_bits_per_s", "qber", "emulated_seconds")
    U_FIELD_NUMBER: _ClassVar[int]
    V_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    ABORTED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LENGTH_KM_FIELD_NUMBER: _ClassVar[int]
    POOL_CAPACITY_BITS_FIELD_NUMBER: _ClassVar[int]
    POOL_BITS_FIELD_NUMBER: _ClassVar[int]
    SENDABLE_U_BITS_FIELD_NUMBER: _ClassVar[int]
    SENDABLE_V_BITS_FIELD_NUMBER: _ClassVar[int]
    SECRET_BITS_PER_S_FIELD_NUMBER: _ClassVar[int]
    QBER_FIELD_NUMBER: _ClassVar[int]
    EMULATED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    u: str
    v: str
    up: bool
    aborted: bool
    state: str
    length_km: float
    pool_capacity_bits: int
    pool_bits: int
    sendable_u_bits: int
    sendable_v_bits: int
    secret_bits_per_s: float
    qber: float
    emulated_seconds: float
    def __init__(self, u: _Optional[str] = ..., v: _Optional[str] = ..., up: _Optional[bool] = ..., aborted: _Optional[bool] = ..., state: _Optional[str] = ..., length_km: _Optional[float] = ..., pool_capacity_bits: _Optional[int] = ..., pool_bits: _Optional[int] = ..., sendable_u_bits: _Optional[int] = ..., sendable_v_bits: _Optional[int] = ..., secret_bits_per_s: _Optional[float] = ..., qber: _Optional[float] = ..., emulated_seconds: _Optional[float] = ...) -> None: ...

class RoutingState(_message.Message):
    __slots__ = ("strategy", "strategy_options_json", "alive", "links", "qber_threshold")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_OPTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    QBER_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    strategy_options_json: str
    alive: _containers.RepeatedScalarFieldContainer[str]
    links: _containers.RepeatedCompositeFieldContainer[LinkView]
    qber_threshold: float
    def __init__(self, strategy: _Optional[str] = ..., strategy_options_json: _Optional[str] = ..., alive: _Optional[_Iterable[str]] = ..., links: _Optional[_Iterable[_Union[LinkView, _Mapping]]] = ..., qber_threshold: _Optional[float] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("ok", "message")
    OK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    message: str
    def __init__(self, ok: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LinkStatus(_message.Message):
    __slots__ = ("link_id", "peer", "role", "state", "length_km", "blocks_accepted", "blocks_aborted", "last_abort_reason", "qber", "sifted_bits", "generated_bits", "pool_bits", "consumed_bits", "discarded_bits", "emulated_seconds", "sifted_bits_per_s", "secret_bits_per_s", "auth_bits", "sendable_bits", "resyncs", "clock_ratio", "clock_wait_s", "open_blocks")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LENGTH_KM_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_ABORTED_FIELD_NUMBER: _ClassVar[int]
    LAST_ABORT_REASON_FIELD_NUMBER: _ClassVar[int]
    QBER_FIELD_NUMBER: _ClassVar[int]
    SIFTED_BITS_FIELD_NUMBER: _ClassVar[int]
    GENERATED_BITS_FIELD_NUMBER: _ClassVar[int]
    POOL_BITS_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_BITS_FIELD_NUMBER: _ClassVar[int]
    DISCARDED_BITS_FIELD_NUMBER: _ClassVar[int]
    EMULATED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SIFTED_BITS_PER_S_FIELD_NUMBER: _ClassVar[int]
    SECRET_BITS_PER_S_FIELD_NUMBER: _ClassVar[int]
    AUTH_BITS_FIELD_NUMBER: _ClassVar[int]
    SENDABLE_BITS_FIELD_NUMBER: _ClassVar[int]
    RESYNCS_FIELD_NUMBER: _ClassVar[int]
    CLOCK_RATIO_FIELD_NUMBER: _ClassVar[int]
    CLOCK_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    OPEN_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    peer: str
    role: str
    state: str
    length_km: float
    blocks_accepted: int
    blocks_aborted: int
    last_abort_reason: str
    qber: float
    sifted_bits: int
    generated_bits: int
    pool_bits: int
    consumed_bits: int
    discarded_bits: int
    emulated_seconds: float
    sifted_bits_per_s: float
    secret_bits_per_s: float
    auth_bits: int
    sendable_bits: int
    resyncs: int
    clock_ratio: float
    clock_wait_s: float
    open_blocks: int
    def __init__(self, link_id: _Optional[str] = ..., peer: _Optional[str] = ..., role: _Optional[str] = ..., state: _Optional[str] = ..., length_km: _Optional[float] = ..., blocks_accepted: _Optional[int] = ..., blocks_aborted: _Optional[int] = ..., last_abort_reason: _Optional[str] = ..., qber: _Optional[float] = ..., sifted_bits: _Optional[int] = ..., generated_bits: _Optional[int] = ..., pool_bits: _Optional[int] = ..., consumed_bits: _Optional[int] = ..., discarded_bits: _Optional[int] = ..., emulated_seconds: _Optional[float] = ..., sifted_bits_per_s: _Optional[float] = ..., secret_bits_per_s: _Optional[float] = ..., auth_bits: _Optional[int] = ..., sendable_bits: _Optional[int] = ..., resyncs: _Optional[int] = ..., clock_ratio: _Optional[float] = ..., clock_wait_s: _Optional[float] = ..., open_blocks: _Optional[int] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("name", "links", "app_keys", "relays_forwarded", "kme_url", "keys_read_whole", "shares_read", "metrics_url")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    APP_KEYS_FIELD_NUMBER: _ClassVar[int]
    RELAYS_FORWARDED_FIELD_NUMBER: _ClassVar[int]
    KME_URL_FIELD_NUMBER: _ClassVar[int]
    KEYS_READ_WHOLE_FIELD_NUMBER: _ClassVar[int]
    SHARES_READ_FIELD_NUMBER: _ClassVar[int]
    METRICS_URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    links: _containers.RepeatedCompositeFieldContainer[LinkStatus]
    app_keys: int
    relays_forwarded: int
    kme_url: str
    keys_read_whole: int
    shares_read: int
    metrics_url: str
    def __init__(self, name: _Optional[str] = ..., links: _Optional[_Iterable[_Union[LinkStatus, _Mapping]]] = ..., app_keys: _Optional[int] = ..., relays_forwarded: _Optional[int] = ..., kme_url: _Optional[str] = ..., keys_read_whole: _Optional[int] = ..., shares_read: _Optional[int] = ..., metrics_url: _Optional[str] = ...) -> None: ...

class RelayRequest(_message.Message):
    __slots__ = ("count", "key_bits", "timeout_s", "call_id", "paths")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    KEY_BITS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    count: int
    key_bits: int
    timeout_s: float
    call_id: int
    paths: _containers.RepeatedCompositeFieldContainer[Route]
    def __init__(self, count: _Optional[int] = ..., key_bits: _Optional[int] = ..., timeout_s: _Optional[float] = ..., call_id: _Optional[int] = ..., paths: _Optional[_Iterable[_Union[Route, _Mapping]]] = ...) -> None: ...

class RelayRequests(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[RelayRequest]
    def __init__(self, calls: _Optional[_Iterable[_Union[RelayRequest, _Mapping]]] = ...) -> None: ...

class RelayResults(_message.Message):
    __slots__ = ("replies",)
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[RelayResult]
    def __init__(self, replies: _Optional[_Iterable[_Union[RelayResult, _Mapping]]] = ...) -> None: ...

class RelayResult(_message.Message):
    __slots__ = ("key_ids", "link_bits_consumed", "call_id", "latency_s", "failure", "source", "destination", "paths")
    KEY_IDS_FIELD_NUMBER: _ClassVar[int]
    LINK_BITS_CONSUMED_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    key_ids: _containers.RepeatedScalarFieldContainer[str]
    link_bits_consumed: int
    call_id: int
    latency_s: float
    failure: Failure
    source: str
    destination: str
    paths: _containers.RepeatedCompositeFieldContainer[Route]
    def __init__(self, key_ids: _Optional[_Iterable[str]] = ..., link_bits_consumed: _Optional[int] = ..., call_id: _Optional[int] = ..., latency_s: _Optional[float] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., source: _Optional[str] = ..., destination: _Optional[str] = ..., paths: _Optional[_Iterable[_Union[Route, _Mapping]]] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("peer", "salt")
    PEER_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    peer: str
    salt: bytes
    def __init__(self, peer: _Optional[str] = ..., salt: _Optional[bytes] = ...) -> None: ...

class KeyEntry(_message.Message):
    __slots__ = ("key_id", "peer", "digest", "bits")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    peer: str
    digest: bytes
    bits: int
    def __init__(self, key_id: _Optional[str] = ..., peer: _Optional[str] = ..., digest: _Optional[bytes] = ..., bits: _Optional[int] = ...) -> None: ...

class KeyList(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyEntry]
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyEntry, _Mapping]]] = ...) -> None: ...

class ShutdownRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
