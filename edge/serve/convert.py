"""The one place protobuf meets domain types: request messages in, response messages out, errors to codes.

Every field is validated here and every error names the field it came from
(``images[0].raw.stride: …``), so an integrator can fix the request without reading logs.
"""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np

from edge.errors import (
    AudioError,
    BundleError,
    ConfigError,
    EdgeError,
    EngineError,
    ImageError,
    InputError,
    OverloadedError,
    SessionError,
    ShuttingDownError,
)
from edge.runtime.audio import AudioLimits, decode_pcm, load_wav
from edge.runtime.engine import GenerationParams
from edge.runtime.image import SUPPORTED_SOFT_TOKENS, ImageLimits, PixelFormat, decode_image, probe_image, raw_image
from edge.runtime.sampling import SamplingParams
from edge.serve.config import ServeConfig
from edge.serve.scheduler import Request
from edge.v1 import inspector_pb2 as pb

# Domain error → gRPC status. Order matters: the first matching class wins.
STATUS_TABLE: tuple[tuple[type[EdgeError], grpc.StatusCode], ...] = (
    (InputError, grpc.StatusCode.INVALID_ARGUMENT),
    (ConfigError, grpc.StatusCode.INVALID_ARGUMENT),  # request options out of range (temperature, top_p, …)
    (OverloadedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ShuttingDownError, grpc.StatusCode.UNAVAILABLE),
    (SessionError, grpc.StatusCode.FAILED_PRECONDITION),
    (BundleError, grpc.StatusCode.FAILED_PRECONDITION),
    (EngineError, grpc.StatusCode.INTERNAL),
)

_PIXEL = {
    pb.PIXEL_FORMAT_GRAY8: PixelFormat.GRAY8,
    pb.PIXEL_FORMAT_RGB8: PixelFormat.RGB8,
    pb.PIXEL_FORMAT_BGR8: PixelFormat.BGR8,
    pb.PIXEL_FORMAT_RGBA8: PixelFormat.RGBA8,
    pb.PIXEL_FORMAT_BGRA8: PixelFormat.BGRA8,
}
_PCM = {pb.AUDIO_ENCODING_PCM_S16LE: "s16le", pb.AUDIO_ENCODING_PCM_F32LE: "f32le"}


def status_for(exc: BaseException) -> grpc.StatusCode:
    for cls, code in STATUS_TABLE:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


class FieldError(InputError):
    """An InputError that knows which request field caused it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _at(field: str, exc: InputError) -> FieldError:
    return exc if isinstance(exc, FieldError) else FieldError(field, str(exc))


class Converter:
    """Validates and converts messages under one config's limits."""

    def __init__(self, cfg: ServeConfig, default_max_new_tokens: int) -> None:
        self.cfg = cfg
        self.image_limits = ImageLimits(max_bytes=cfg.max_image_bytes, max_pixels=cfg.max_image_pixels)
        self.audio_limits = AudioLimits(max_seconds=cfg.max_audio_seconds)
        self.default_max_new_tokens = default_max_new_tokens

    # -- media ------------------------------------------------------------------------------------
    def image(self, msg: pb.Image, field: str, decode: bool = True) -> Any:
        """An RGB array; with ``decode=False`` only the cheap checks run and the message comes back."""
        kind = msg.WhichOneof("source")
        try:
            if kind == "encoded":
                if not decode:  # header and limits only; the pixels are decoded if the frame is described
                    probe_image(msg.encoded, self.image_limits)
                    return msg
                return decode_image(msg.encoded, self.image_limits)
            if kind == "raw":
                r = msg.raw
                if r.format not in _PIXEL:
                    raise FieldError(
                        f"{field}.raw.format", f"unknown pixel format {r.format}; use GRAY8, RGB8, BGR8, RGBA8 or BGRA8"
                    )
                if not decode:  # cheap size checks only; raw_image does the same arithmetic
                    return msg
                return raw_image(r.data, r.width, r.height, r.stride or None, _PIXEL[r.format], self.image_limits)
        except ImageError as exc:
            raise _at(f"{field}.{kind}", exc) from None
        raise FieldError(field, "no image: set encoded or raw")

    def audio(self, msg: pb.Audio, field: str) -> np.ndarray:
        """Any supported audio message → float32 mono 16 kHz samples."""
        try:
            if msg.encoding == pb.AUDIO_ENCODING_WAV:
                return load_wav(bytes(msg.data), self.audio_limits)
            if msg.encoding in _PCM:
                return decode_pcm(
                    bytes(msg.data), _PCM[msg.encoding], msg.sample_rate_hz, msg.channels or 1, self.audio_limits
                )
        except AudioError as exc:
            raise _at(field, exc) from None
        raise FieldError(f"{field}.encoding", f"unknown audio encoding {msg.encoding}; use PCM_S16LE, PCM_F32LE or WAV")

    # -- requests -------------------------------------------------------------------------------
    def params(self, o: pb.GenerationOptions, field: str = "options") -> tuple[GenerationParams, int | None]:
        if o.max_new_tokens > self.cfg.max_new_tokens:
            raise FieldError(
                f"{field}.max_new_tokens", f"{o.max_new_tokens} is over the server limit of {self.cfg.max_new_tokens}"
            )
        if o.max_soft_tokens and o.max_soft_tokens not in SUPPORTED_SOFT_TOKENS:
            raise FieldError(
                f"{field}.max_soft_tokens", f"must be 0 or one of {SUPPORTED_SOFT_TOKENS}, got {o.max_soft_tokens}"
            )
        try:
            sampling = SamplingParams(
                temperature=float(o.temperature),
                top_k=int(o.top_k),
                top_p=float(o.top_p) if o.top_p else 1.0,
                seed=int(o.seed) if o.HasField("seed") else None,
            )
        except ConfigError as exc:
            raise FieldError(field, str(exc)) from None
        n = o.max_new_tokens or min(self.default_max_new_tokens, self.cfg.max_new_tokens)
        params = GenerationParams(max_new_tokens=n, min_new_tokens=n if o.ignore_eos else 0, sampling=sampling)
        return params, (o.max_soft_tokens or None)

    def describe_request(self, req: pb.DescribeRequest) -> Request:
        images = [self.image(m, f"images[{i}]") for i, m in enumerate(req.images)]
        audio = [self.audio(m, f"audio[{i}]") for i, m in enumerate(req.audio)]
        if not images and not audio and not req.prompt.strip():
            raise FieldError("images", "empty request: send at least one image, audio clip or a prompt")
        params, soft = self.params(req.options)
        return Request(
            prompt=req.prompt.strip() or self.cfg.default_prompt,
            images=images,
            audio=audio,
            system=req.system or None,
            params=params,
            max_soft_tokens=soft,
        )


def describe_response(
    result: Any, queue_s: float, preprocess_s: float, total_s: float, model: pb.ModelIdentity, context: pb.PartContext
) -> pb.DescribeResponse:
    t = result.timings
    return pb.DescribeResponse(
        text=result.text,
        token_ids=[int(x) for x in result.token_ids],
        stop_reason=pb.STOP_REASON_END_OF_TURN if result.stop_reason == "eos" else pb.STOP_REASON_MAX_TOKENS,
        timings=pb.Timings(
            preprocess_seconds=preprocess_s,
            queue_seconds=queue_s,
            embed_seconds=t.embed_s,
            prefill_seconds=t.prefill_s,
            time_to_first_token_seconds=preprocess_s + t.ttft_s,
            decode_seconds=t.decode_s,
            total_seconds=total_s,
            prompt_tokens=t.prompt_tokens,
            generated_tokens=t.new_tokens,
        ),
        model=model,
        context=context,
    )
