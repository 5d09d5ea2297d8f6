from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PixelFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIXEL_FORMAT_UNSPECIFIED: _ClassVar[PixelFormat]
    PIXEL_FORMAT_GRAY8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_RGB8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_BGR8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_RGBA8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_BGRA8: _ClassVar[PixelFormat]

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_PCM_S16LE: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_PCM_F32LE: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_WAV: _ClassVar[AudioEncoding]

class StopReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_REASON_UNSPECIFIED: _ClassVar[StopReason]
    STOP_REASON_END_OF_TURN: _ClassVar[StopReason]
    STOP_REASON_MAX_TOKENS: _ClassVar[StopReason]

class GateKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GATE_KIND_UNSPECIFIED: _ClassVar[GateKind]
    GATE_KIND_IMAGE: _ClassVar[GateKind]
    GATE_KIND_SOUND: _ClassVar[GateKind]

class TriggerMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIGGER_MODE_UNSPECIFIED: _ClassVar[TriggerMode]
    TRIGGER_MODE_EXPLICIT: _ClassVar[TriggerMode]
    TRIGGER_MODE_INTERVAL: _ClassVar[TriggerMode]
    TRIGGER_MODE_GATED: _ClassVar[TriggerMode]

class DropReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DROP_REASON_UNSPECIFIED: _ClassVar[DropReason]
    DROP_REASON_SUPERSEDED: _ClassVar[DropReason]
    DROP_REASON_STALE: _ClassVar[DropReason]
    DROP_REASON_QUEUE_FULL: _ClassVar[DropReason]
    DROP_REASON_INVALID: _ClassVar[DropReason]
    DROP_REASON_NO_FRAME: _ClassVar[DropReason]
    DROP_REASON_SHUTDOWN: _ClassVar[DropReason]
    DROP_REASON_CANCELLED: _ClassVar[DropReason]

class SourceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_STATE_UNSPECIFIED: _ClassVar[SourceState]
    SOURCE_STATE_CONNECTING: _ClassVar[SourceState]
    SOURCE_STATE_STREAMING: _ClassVar[SourceState]
    SOURCE_STATE_BACKOFF: _ClassVar[SourceState]
    SOURCE_STATE_FAILED: _ClassVar[SourceState]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_SCORED: _ClassVar[EventKind]
    EVENT_KIND_FINISHED: _ClassVar[EventKind]
    EVENT_KIND_DROPPED: _ClassVar[EventKind]
    EVENT_KIND_ERROR: _ClassVar[EventKind]
PIXEL_FORMAT_UNSPECIFIED: PixelFormat
PIXEL_FORMAT_GRAY8: PixelFormat
PIXEL_FORMAT_RGB8: PixelFormat
PIXEL_FORMAT_BGR8: PixelFormat
PIXEL_FORMAT_RGBA8: PixelFormat
PIXEL_FORMAT_BGRA8: PixelFormat
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
AUDIO_ENCODING_PCM_S16LE: AudioEncoding
AUDIO_ENCODING_PCM_F32LE: AudioEncoding
AUDIO_ENCODING_WAV: AudioEncoding
STOP_REASON_UNSPECIFIED: StopReason
STOP_REASON_END_OF_TURN: StopReason
STOP_REASON_MAX_TOKENS: StopReason
GATE_KIND_UNSPECIFIED: GateKind
GATE_KIND_IMAGE: GateKind
GATE_KIND_SOUND: GateKind
TRIGGER_MODE_UNSPECIFIED: TriggerMode
TRIGGER_MODE_EXPLICIT: TriggerMode
TRIGGER_MODE_INTERVAL: TriggerMode
TRIGGER_MODE_GATED: TriggerMode
DROP_REASON_UNSPECIFIED: DropReason
DROP_REASON_SUPERSEDED: DropReason
DROP_REASON_STALE: DropReason
DROP_REASON_QUEUE_FULL: DropReason
DROP_REASON_INVALID: DropReason
DROP_REASON_NO_FRAME: DropReason
DROP_REASON_SHUTDOWN: DropReason
DROP_REASON_CANCELLED: DropReason
SOURCE_STATE_UNSPECIFIED: SourceState
SOURCE_STATE_CONNECTING: SourceState
SOURCE_STATE_STREAMING: SourceState
SOURCE_STATE_BACKOFF: SourceState
SOURCE_STATE_FAILED: SourceState
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_SCORED: EventKind
EVENT_KIND_FINISHED: EventKind
EVENT_KIND_DROPPED: EventKind
EVENT_KIND_ERROR: EventKind

class RawImage(_message.Message):
    __slots__ = ("width", "height", "stride", "format", "data")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STRIDE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    stride: int
    format: PixelFormat
    data: bytes
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., stride: _Optional[int] = ..., format: _Optional[_Union[PixelFormat, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("encoded", "raw")
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    encoded: bytes
    raw: RawImage
    def __init__(self, encoded: _Optional[bytes] = ..., raw: _Optional[_Union[RawImage, _Mapping]] = ...) -> None: ...

class Audio(_message.Message):
    __slots__ = ("encoding", "sample_rate_hz", "channels", "data")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    encoding: AudioEncoding
    sample_rate_hz: int
    channels: int
    data: bytes
    def __init__(self, encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., channels: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class PartContext(_message.Message):
    __slots__ = ("station_id", "camera_id", "part_id", "line_id")
    STATION_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    PART_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    station_id: str
    camera_id: str
    part_id: str
    line_id: str
    def __init__(self, station_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., part_id: _Optional[str] = ..., line_id: _Optional[str] = ...) -> None: ...

class GenerationOptions(_message.Message):
    __slots__ = ("max_new_tokens", "temperature", "top_k", "top_p", "seed", "max_soft_tokens", "ignore_eos", "response_schema", "structured")
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_SOFT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    IGNORE_EOS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_FIELD_NUMBER: _ClassVar[int]
    max_new_tokens: int
    temperature: float
    top_k: int
    top_p: float
    seed: int
    max_soft_tokens: int
    ignore_eos: bool
    response_schema: str
    structured: bool
    def __init__(self, max_new_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_k: _Optional[int] = ..., top_p: _Optional[float] = ..., seed: _Optional[int] = ..., max_soft_tokens: _Optional[int] = ..., ignore_eos: _Optional[bool] = ..., response_schema: _Optional[str] = ..., structured: _Optional[bool] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ("images", "audio", "prompt", "system", "context", "options", "gate", "gate_threshold")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    GATE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    audio: _containers.RepeatedCompositeFieldContainer[Audio]
    prompt: str
    system: str
    context: PartContext
    options: GenerationOptions
    gate: GateResult
    gate_threshold: float
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., audio: _Optional[_Iterable[_Union[Audio, _Mapping]]] = ..., prompt: _Optional[str] = ..., system: _Optional[str] = ..., context: _Optional[_Union[PartContext, _Mapping]] = ..., options: _Optional[_Union[GenerationOptions, _Mapping]] = ..., gate: _Optional[_Union[GateResult, _Mapping]] = ..., gate_threshold: _Optional[float] = ...) -> None: ...

class DescribeStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: DescribeRequest
    def __init__(self, request: _Optional[_Union[DescribeRequest, _Mapping]] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("preprocess_seconds", "queue_seconds", "embed_seconds", "prefill_seconds", "time_to_first_token_seconds", "decode_seconds", "total_seconds", "prompt_tokens", "generated_tokens")
    PREPROCESS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EMBED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PREFILL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DECODE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    GENERATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    preprocess_seconds: float
    queue_seconds: float
    embed_seconds: float
    prefill_seconds: float
    time_to_first_token_seconds: float
    decode_seconds: float
    total_seconds: float
    prompt_tokens: int
    generated_tokens: int
    def __init__(self, preprocess_seconds: _Optional[float] = ..., queue_seconds: _Optional[float] = ..., embed_seconds: _Optional[float] = ..., prefill_seconds: _Optional[float] = ..., time_to_first_token_seconds: _Optional[float] = ..., decode_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ..., prompt_tokens: _Optional[int] = ..., generated_tokens: _Optional[int] = ...) -> None: ...

class ModelIdentity(_message.Message):
    __slots__ = ("bundle_id", "model_id", "quantization")
    BUNDLE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    bundle_id: str
    model_id: str
    quantization: str
    def __init__(self, bundle_id: _Optional[str] = ..., model_id: _Optional[str] = ..., quantization: _Optional[str] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("text", "token_ids", "stop_reason", "timings", "model", "context", "report_json", "report_error", "inputs_sha256", "schema_sha256", "gate")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    REPORT_ERROR_FIELD_NUMBER: _ClassVar[int]
    INPUTS_SHA256_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_SHA256_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    text: str
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    stop_reason: StopReason
    timings: Timings
    model: ModelIdentity
    context: PartContext
    report_json: str
    report_error: str
    inputs_sha256: str
    schema_sha256: str
    gate: GateResult
    def __init__(self, text: _Optional[str] = ..., token_ids: _Optional[_Iterable[int]] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., model: _Optional[_Union[ModelIdentity, _Mapping]] = ..., context: _Optional[_Union[PartContext, _Mapping]] = ..., report_json: _Optional[str] = ..., report_error: _Optional[str] = ..., inputs_sha256: _Optional[str] = ..., schema_sha256: _Optional[str] = ..., gate: _Optional[_Union[GateResult, _Mapping]] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ("x0", "y0", "x1", "y1")
    X0_FIELD_NUMBER: _ClassVar[int]
    Y0_FIELD_NUMBER: _ClassVar[int]
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    x0: int
    y0: int
    x1: int
    y1: int
    def __init__(self, x0: _Optional[int] = ..., y0: _Optional[int] = ..., x1: _Optional[int] = ..., y1: _Optional[int] = ...) -> None: ...

class GateResult(_message.Message):
    __slots__ = ("kind", "score", "anomalous", "threshold", "gate_id", "region", "latency_seconds", "window_start_time", "window_end_time")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ANOMALOUS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    GATE_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_TIME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_TIME_FIELD_NUMBER: _ClassVar[int]
    kind: GateKind
    score: float
    anomalous: bool
    threshold: float
    gate_id: str
    region: Region
    latency_seconds: float
    window_start_time: float
    window_end_time: float
    def __init__(self, kind: _Optional[_Union[GateKind, str]] = ..., score: _Optional[float] = ..., anomalous: _Optional[bool] = ..., threshold: _Optional[float] = ..., gate_id: _Optional[str] = ..., region: _Optional[_Union[Region, _Mapping]] = ..., latency_seconds: _Optional[float] = ..., window_start_time: _Optional[float] = ..., window_end_time: _Optional[float] = ...) -> None: ...

class DescribeStreamResponse(_message.Message):
    __slots__ = ("token", "done")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    token: TokenChunk
    done: DescribeResponse
    def __init__(self, token: _Optional[_Union[TokenChunk, _Mapping]] = ..., done: _Optional[_Union[DescribeResponse, _Mapping]] = ...) -> None: ...

class TokenChunk(_message.Message):
    __slots__ = ("token_id", "text")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    token_id: int
    text: str
    def __init__(self, token_id: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class InspectConfig(_message.Message):
    __slots__ = ("trigger_mode", "interval_seconds", "prompt", "system", "options", "audio_before_seconds", "audio_after_seconds", "context", "stream_tokens", "gate_threshold")
    TRIGGER_MODE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_BEFORE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STREAM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    GATE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    trigger_mode: TriggerMode
    interval_seconds: float
    prompt: str
    system: str
    options: GenerationOptions
    audio_before_seconds: float
    audio_after_seconds: float
    context: PartContext
    stream_tokens: bool
    gate_threshold: float
    def __init__(self, trigger_mode: _Optional[_Union[TriggerMode, str]] = ..., interval_seconds: _Optional[float] = ..., prompt: _Optional[str] = ..., system: _Optional[str] = ..., options: _Optional[_Union[GenerationOptions, _Mapping]] = ..., audio_before_seconds: _Optional[float] = ..., audio_after_seconds: _Optional[float] = ..., context: _Optional[_Union[PartContext, _Mapping]] = ..., stream_tokens: _Optional[bool] = ..., gate_threshold: _Optional[float] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("capture_time", "camera_id", "image")
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    capture_time: float
    camera_id: str
    image: Image
    def __init__(self, capture_time: _Optional[float] = ..., camera_id: _Optional[str] = ..., image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("capture_time", "microphone_id", "audio")
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    MICROPHONE_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    capture_time: float
    microphone_id: str
    audio: Audio
    def __init__(self, capture_time: _Optional[float] = ..., microphone_id: _Optional[str] = ..., audio: _Optional[_Union[Audio, _Mapping]] = ...) -> None: ...

class Trigger(_message.Message):
    __slots__ = ("capture_time", "reason", "context")
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    capture_time: float
    reason: str
    context: PartContext
    def __init__(self, capture_time: _Optional[float] = ..., reason: _Optional[str] = ..., context: _Optional[_Union[PartContext, _Mapping]] = ...) -> None: ...

class InspectRequest(_message.Message):
    __slots__ = ("config", "frame", "audio", "trigger")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    config: InspectConfig
    frame: Frame
    audio: AudioChunk
    trigger: Trigger
    def __init__(self, config: _Optional[_Union[InspectConfig, _Mapping]] = ..., frame: _Optional[_Union[Frame, _Mapping]] = ..., audio: _Optional[_Union[AudioChunk, _Mapping]] = ..., trigger: _Optional[_Union[Trigger, _Mapping]] = ...) -> None: ...

class Accepted(_message.Message):
    __slots__ = ("sequence", "capture_time")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    capture_time: float
    def __init__(self, sequence: _Optional[int] = ..., capture_time: _Optional[float] = ...) -> None: ...

class Dropped(_message.Message):
    __slots__ = ("sequence", "capture_time", "reason", "detail")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    capture_time: float
    reason: DropReason
    detail: str
    def __init__(self, sequence: _Optional[int] = ..., capture_time: _Optional[float] = ..., reason: _Optional[_Union[DropReason, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class DescriptionStarted(_message.Message):
    __slots__ = ("description_id", "frame_sequence", "frame_capture_time", "trigger_time", "gate")
    DESCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FRAME_CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_TIME_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    description_id: int
    frame_sequence: int
    frame_capture_time: float
    trigger_time: float
    gate: GateResult
    def __init__(self, description_id: _Optional[int] = ..., frame_sequence: _Optional[int] = ..., frame_capture_time: _Optional[float] = ..., trigger_time: _Optional[float] = ..., gate: _Optional[_Union[GateResult, _Mapping]] = ...) -> None: ...

class DescriptionToken(_message.Message):
    __slots__ = ("description_id", "token")
    DESCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    description_id: int
    token: TokenChunk
    def __init__(self, description_id: _Optional[int] = ..., token: _Optional[_Union[TokenChunk, _Mapping]] = ...) -> None: ...

class DescriptionFinished(_message.Message):
    __slots__ = ("description_id", "result", "frame_sequence")
    DESCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FRAME_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    description_id: int
    result: DescribeResponse
    frame_sequence: int
    def __init__(self, description_id: _Optional[int] = ..., result: _Optional[_Union[DescribeResponse, _Mapping]] = ..., frame_sequence: _Optional[int] = ...) -> None: ...

class Scored(_message.Message):
    __slots__ = ("sequence", "capture_time", "gate")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    capture_time: float
    gate: GateResult
    def __init__(self, sequence: _Optional[int] = ..., capture_time: _Optional[float] = ..., gate: _Optional[_Union[GateResult, _Mapping]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "field", "sequence")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field: str
    sequence: int
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class InspectResponse(_message.Message):
    __slots__ = ("accepted", "dropped", "started", "token", "finished", "error", "scored")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SCORED_FIELD_NUMBER: _ClassVar[int]
    accepted: Accepted
    dropped: Dropped
    started: DescriptionStarted
    token: DescriptionToken
    finished: DescriptionFinished
    error: Error
    scored: Scored
    def __init__(self, accepted: _Optional[_Union[Accepted, _Mapping]] = ..., dropped: _Optional[_Union[Dropped, _Mapping]] = ..., started: _Optional[_Union[DescriptionStarted, _Mapping]] = ..., token: _Optional[_Union[DescriptionToken, _Mapping]] = ..., finished: _Optional[_Union[DescriptionFinished, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., scored: _Optional[_Union[Scored, _Mapping]] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_message_bytes", "max_image_bytes", "max_image_pixels", "max_audio_seconds", "max_new_tokens", "queue_depth", "stale_after_seconds", "min_interval_seconds", "max_streams", "max_prompt_bytes", "max_images_per_request", "max_audio_clips_per_request", "max_interval_seconds", "max_schema_bytes")
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MAX_AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    STALE_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MIN_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAMS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROMPT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGES_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    MAX_AUDIO_CLIPS_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    MAX_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_SCHEMA_BYTES_FIELD_NUMBER: _ClassVar[int]
    max_message_bytes: int
    max_image_bytes: int
    max_image_pixels: int
    max_audio_seconds: float
    max_new_tokens: int
    queue_depth: int
    stale_after_seconds: float
    min_interval_seconds: float
    max_streams: int
    max_prompt_bytes: int
    max_images_per_request: int
    max_audio_clips_per_request: int
    max_interval_seconds: float
    max_schema_bytes: int
    def __init__(self, max_message_bytes: _Optional[int] = ..., max_image_bytes: _Optional[int] = ..., max_image_pixels: _Optional[int] = ..., max_audio_seconds: _Optional[float] = ..., max_new_tokens: _Optional[int] = ..., queue_depth: _Optional[int] = ..., stale_after_seconds: _Optional[float] = ..., min_interval_seconds: _Optional[float] = ..., max_streams: _Optional[int] = ..., max_prompt_bytes: _Optional[int] = ..., max_images_per_request: _Optional[int] = ..., max_audio_clips_per_request: _Optional[int] = ..., max_interval_seconds: _Optional[float] = ..., max_schema_bytes: _Optional[int] = ...) -> None: ...

class GateInfo(_message.Message):
    __slots__ = ("gate_id", "image", "sound", "threshold", "reference_images", "sound_window_seconds")
    GATE_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SOUND_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_IMAGES_FIELD_NUMBER: _ClassVar[int]
    SOUND_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    gate_id: str
    image: bool
    sound: bool
    threshold: float
    reference_images: int
    sound_window_seconds: float
    def __init__(self, gate_id: _Optional[str] = ..., image: _Optional[bool] = ..., sound: _Optional[bool] = ..., threshold: _Optional[float] = ..., reference_images: _Optional[int] = ..., sound_window_seconds: _Optional[float] = ...) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("model", "version", "schema_version", "context_tokens", "default_max_soft_tokens", "has_vision", "has_audio", "limits", "parity", "gate", "sources")
    class ParityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MAX_SOFT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    HAS_VISION_FIELD_NUMBER: _ClassVar[int]
    HAS_AUDIO_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    PARITY_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    model: ModelIdentity
    version: str
    schema_version: int
    context_tokens: int
    default_max_soft_tokens: int
    has_vision: bool
    has_audio: bool
    limits: Limits
    parity: _containers.ScalarMap[str, str]
    gate: GateInfo
    sources: _containers.RepeatedCompositeFieldContainer[SourceStatus]
    def __init__(self, model: _Optional[_Union[ModelIdentity, _Mapping]] = ..., version: _Optional[str] = ..., schema_version: _Optional[int] = ..., context_tokens: _Optional[int] = ..., default_max_soft_tokens: _Optional[int] = ..., has_vision: _Optional[bool] = ..., has_audio: _Optional[bool] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., parity: _Optional[_Mapping[str, str]] = ..., gate: _Optional[_Union[GateInfo, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[SourceStatus, _Mapping]]] = ...) -> None: ...

class SourceStatus(_message.Message):
    __slots__ = ("id", "url", "state", "fps", "last_frame_age_seconds", "reconnects", "frames_received", "decode_errors", "last_error", "trigger", "width", "height", "codec", "audio_state", "audio_error", "audio_seconds")
    ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    LAST_FRAME_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECONNECTS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    DECODE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    AUDIO_STATE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_ERROR_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    url: str
    state: SourceState
    fps: float
    last_frame_age_seconds: float
    reconnects: int
    frames_received: int
    decode_errors: int
    last_error: str
    trigger: str
    width: int
    height: int
    codec: str
    audio_state: SourceState
    audio_error: str
    audio_seconds: float
    def __init__(self, id: _Optional[str] = ..., url: _Optional[str] = ..., state: _Optional[_Union[SourceState, str]] = ..., fps: _Optional[float] = ..., last_frame_age_seconds: _Optional[float] = ..., reconnects: _Optional[int] = ..., frames_received: _Optional[int] = ..., decode_errors: _Optional[int] = ..., last_error: _Optional[str] = ..., trigger: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., codec: _Optional[str] = ..., audio_state: _Optional[_Union[SourceState, str]] = ..., audio_error: _Optional[str] = ..., audio_seconds: _Optional[float] = ...) -> None: ...

class TriggerRequest(_message.Message):
    __slots__ = ("camera_id", "capture_time", "part_id", "reason")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    PART_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    capture_time: float
    part_id: str
    reason: str
    def __init__(self, camera_id: _Optional[str] = ..., capture_time: _Optional[float] = ..., part_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TriggerResponse(_message.Message):
    __slots__ = ("frame_sequence", "frame_capture_time")
    FRAME_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FRAME_CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    frame_sequence: int
    frame_capture_time: float
    def __init__(self, frame_sequence: _Optional[int] = ..., frame_capture_time: _Optional[float] = ...) -> None: ...

class EventFilter(_message.Message):
    __slots__ = ("kinds", "source")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[EventKind]
    source: str
    def __init__(self, kinds: _Optional[_Iterable[_Union[EventKind, str]]] = ..., source: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("sequence", "time", "kind", "source", "json")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: float
    kind: EventKind
    source: str
    json: str
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[float] = ..., kind: _Optional[_Union[EventKind, str]] = ..., source: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("since_sequence", "filter", "limit")
    SINCE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    since_sequence: int
    filter: EventFilter
    limit: int
    def __init__(self, since_sequence: _Optional[int] = ..., filter: _Optional[_Union[EventFilter, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "head_sequence", "oldest_sequence", "next_sequence")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OLDEST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NEXT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    head_sequence: int
    oldest_sequence: int
    next_sequence: int
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., head_sequence: _Optional[int] = ..., oldest_sequence: _Optional[int] = ..., next_sequence: _Optional[int] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("since_sequence", "filter")
    SINCE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    since_sequence: int
    filter: EventFilter
    def __init__(self, since_sequence: _Optional[int] = ..., filter: _Optional[_Union[EventFilter, _Mapping]] = ...) -> None: ...

class WatchEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: Event
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class GetEvidenceRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetEvidenceResponse(_message.Message):
    __slots__ = ("id", "media_type", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    media_type: str
    data: bytes
    def __init__(self, id: _Optional[str] = ..., media_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...
