"""Protobuf in, domain types out: every request field is checked here and every error names its field.

Messages arrive as raw bytes (the server registers no deserializer), so a request that is not valid
protobuf, or holds invalid UTF-8, is an ``INVALID_ARGUMENT`` naming the message type like any other bad
field. Images stay encoded (checked from their headers); the token budget is checked from sizes before
any pixel is decoded; prompt text is bounded in bytes before it is tokenized.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from google.protobuf.message import DecodeError, Message

from edge.errors import AudioError, ConfigError, FieldError, InputError, SchemaError, SessionError
from edge.runtime.audio import AudioLimits, decode_pcm, load_wav
from edge.runtime.engine import GenerationParams
from edge.runtime.image import SUPPORTED_SOFT_TOKENS, ImageLimits, PixelFormat
from edge.runtime.sampling import SamplingParams
from edge.serve.config import ServeConfig
from edge.station.admission import (
    AdmissionLimits,
    check_budget,
    check_counts,
    check_text,
    encoded_image,
    finite,
    raw_frame,
)
from edge.station.engine import DescriptionEngine, PendingImage, Request
from edge.station.inputs import AudioIn, FrameIn, PartContext, SessionSettings, TriggerIn, TriggerMode
from edge.station.report import DEFAULT_REPORT_TOKENS, default_report_schema, inputs_sha256, options_text
from edge.v1 import inspector_pb2 as pb

M = TypeVar("M", bound=Message)
_PIXEL = {
    pb.PIXEL_FORMAT_GRAY8: PixelFormat.GRAY8,
    pb.PIXEL_FORMAT_RGB8: PixelFormat.RGB8,
    pb.PIXEL_FORMAT_BGR8: PixelFormat.BGR8,
    pb.PIXEL_FORMAT_RGBA8: PixelFormat.RGBA8,
    pb.PIXEL_FORMAT_BGRA8: PixelFormat.BGRA8,
}
_PCM = {pb.AUDIO_ENCODING_PCM_S16LE: "s16le", pb.AUDIO_ENCODING_PCM_F32LE: "f32le"}
_MODES = {
    pb.TRIGGER_MODE_EXPLICIT: TriggerMode.EXPLICIT,
    pb.TRIGGER_MODE_INTERVAL: TriggerMode.INTERVAL,
    pb.TRIGGER_MODE_GATED: TriggerMode.GATED,
}
REFERENCE_SOFT_TOKENS = 70  # the smallest Gemma 4 image budget: a reference only shows what good looks like


def parse(cls: type[M], data: bytes) -> M:
    """``cls`` from wire bytes; a FieldError (INVALID_ARGUMENT) naming the type when they are not one."""
    try:
        return cls.FromString(data)
    except (DecodeError, ValueError, TypeError) as exc:
        name = cls.DESCRIPTOR.full_name
        raise FieldError("", f"the request is not a valid {name}: {exc or 'malformed protobuf'}") from None


def part_context(ctx: pb.PartContext) -> PartContext:
    return PartContext(ctx.station_id, ctx.camera_id, ctx.part_id, ctx.line_id)


class Converter:
    """Validates and converts messages under one config's limits and one engine's context."""

    def __init__(
        self, cfg: ServeConfig, engine: DescriptionEngine, default_max_new_tokens: int, gate: Any | None = None
    ) -> None:
        self.cfg, self.engine, self.gate = cfg, engine, gate  # gate: the station's edge.gate.Gate, if any
        self.limits = AdmissionLimits(
            image=ImageLimits(max_bytes=cfg.max_image_bytes, max_pixels=cfg.max_image_pixels),
            audio=AudioLimits(max_seconds=cfg.max_audio_seconds),
            max_prompt_bytes=AdmissionLimits.prompt_bytes_for(engine.context, cfg.max_prompt_bytes),
            max_images=cfg.max_images_per_request,
            max_audio_clips=cfg.max_audio_clips_per_request,
        )
        self.default_max_new_tokens = default_max_new_tokens
        self.station_schema = self._station_schema()
        self.references = self._references()

    def _references(self) -> tuple[Any, ...]:
        """The gate's good frames for k-shot prompts, prepared once at their small soft-token budget."""
        from edge.runtime.image import preprocess_image

        if self.gate is None or self.gate.image is None or not self.cfg.reference_images:
            return ()
        p = getattr(self.engine, "processor", {})
        return tuple(
            preprocess_image(
                rgb, REFERENCE_SOFT_TOKENS, int(p.get("patch_size", 16)), int(p.get("pooling_kernel_size", 3))
            )
            for rgb in self.gate.image.reference_images(self.cfg.reference_images)
        )

    def gate_images(self, soft: int | None) -> list[int]:
        """Soft tokens the gate may add to a description of a frame: a close-up and the references."""
        if self.gate is None or self.gate.image is None:
            return []
        return [soft or self.engine.default_soft_tokens] + [REFERENCE_SOFT_TOKENS] * len(self.references)

    def threshold(self, value: float | None, field: str) -> float | None:
        """A run-time threshold override, or the station's (None = as calibrated)."""
        from edge.gate.result import check_threshold

        if value is None:
            return self.cfg.gate_threshold or None
        try:
            return check_threshold(value)
        except InputError as exc:
            raise FieldError(field, str(exc)) from None

    def _station_schema(self) -> Any:
        """The station's report schema, compiled at start-up: a broken file stops the daemon with one line."""
        if self.cfg.report_schema is None:
            text = json.dumps(default_report_schema(self.cfg.defect_types.split(",")))
        else:
            try:
                text = Path(self.cfg.report_schema).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"report_schema {self.cfg.report_schema}: cannot read ({exc})") from None
        try:
            return self.engine.compile_schema(text)
        except SchemaError as exc:
            raise ConfigError(f"report_schema {self.cfg.report_schema or '(built-in)'}: {exc}") from None

    def schema(self, o: pb.GenerationOptions, field: str) -> Any:
        """The request's own schema, else the station's when asked for (or always, with ``structured``)."""
        if o.response_schema:
            size = len(o.response_schema.encode())
            if size > self.cfg.max_schema_bytes:
                raise FieldError(
                    f"{field}.response_schema", f"{size} bytes is over the limit of {self.cfg.max_schema_bytes} bytes"
                )
            try:
                return self.engine.compile_schema(o.response_schema)
            except SchemaError as exc:
                raise FieldError(f"{field}.response_schema", str(exc)) from None
        return self.station_schema if (o.structured or self.cfg.structured) else None

    # -- media ------------------------------------------------------------------------------------
    def image(self, msg: pb.Image, field: str) -> PendingImage:
        """Checked from its header (or its byte count), not decoded."""
        kind = msg.WhichOneof("source")
        if kind == "encoded":
            return encoded_image(msg.encoded, f"{field}.encoded", self.limits.image)
        if kind == "raw":
            r = msg.raw
            if r.format not in _PIXEL:
                raise FieldError(
                    f"{field}.raw.format", f"unknown pixel format {r.format}; use GRAY8, RGB8, BGR8, RGBA8 or BGRA8"
                )
            return raw_frame(
                r.data, r.width, r.height, r.stride or None, _PIXEL[r.format], f"{field}.raw", self.limits.image
            )
        raise FieldError(field, "no image: set encoded or raw")

    def audio(self, msg: pb.Audio, field: str) -> np.ndarray:
        """Any supported audio message → float32 mono 16 kHz samples (bounded by max_audio_seconds first)."""
        try:
            if msg.encoding == pb.AUDIO_ENCODING_WAV:
                return load_wav(bytes(msg.data), self.limits.audio)
            if msg.encoding in _PCM:
                return decode_pcm(
                    bytes(msg.data), _PCM[msg.encoding], msg.sample_rate_hz, msg.channels or 1, self.limits.audio
                )
        except AudioError as exc:
            raise FieldError(field, str(exc)) from None
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
        schema = self.schema(o, field)
        default = max(self.default_max_new_tokens, DEFAULT_REPORT_TOKENS) if schema else self.default_max_new_tokens
        n = o.max_new_tokens or min(default, self.cfg.max_new_tokens)
        params = GenerationParams(
            max_new_tokens=n, min_new_tokens=n if o.ignore_eos else 0, sampling=sampling, schema=schema
        )
        return params, (o.max_soft_tokens or None)

    def texts(self, prompt: str, system: str, field: str = "") -> tuple[str, str | None]:
        """Prompt and system text, bounded in bytes before anything tokenizes them."""
        prefix = f"{field}." if field else ""
        check_text(prompt, f"{prefix}prompt", self.limits.max_prompt_bytes)
        check_text(system, f"{prefix}system", self.limits.max_prompt_bytes)
        return prompt.strip() or self.cfg.default_prompt, system or None

    def describe_request(self, req: pb.DescribeRequest) -> Request:
        """Everything checked, in order of cost: counts and text sizes, headers, audio, then the token budget."""
        check_counts(len(req.images), len(req.audio), self.limits)
        if not req.images and not req.audio and not req.prompt.strip():
            raise FieldError("images", "empty request: send at least one image, audio clip or a prompt")
        prompt, system = self.texts(req.prompt, req.system)
        params, soft = self.params(req.options)
        images = [self.image(m, f"images[{i}]") for i, m in enumerate(req.images)]
        audio = [self.audio(m, f"audio[{i}]") for i, m in enumerate(req.audio)]
        gated = self.gate_images(soft) if images else []
        check_budget(
            self.engine,
            prompt,
            system,
            [self.engine.image_tokens(im.width, im.height, soft) for im in images] + gated,
            [self.engine.audio_tokens(len(a)) for a in audio],
            params.max_new_tokens,
        )
        digest = inputs_sha256(
            images,
            [m.SerializeToString(deterministic=True) for m in req.audio],  # audio as received, with its format
            prompt,
            system,
            params.schema.text if params.schema else "",
            options_text(params, soft),
        )
        return Request(prompt, list(images), audio, system, params, soft, digest)

    # -- Inspect sessions -----------------------------------------------------------------------
    def session_settings(self, c: pb.InspectConfig) -> SessionSettings:
        if c.trigger_mode not in _MODES:
            raise FieldError(
                "config.trigger_mode", f"unknown trigger mode {c.trigger_mode}; use EXPLICIT, INTERVAL or GATED"
            )
        mode = _MODES[c.trigger_mode]
        image_gate = self.gate is not None and self.gate.image is not None
        if mode is TriggerMode.GATED and not image_gate:
            raise SessionError(
                "config.trigger_mode: GATED needs an image gate on the station (config gate = DIR, from edge gate fit)"
            )
        threshold = self.threshold(c.gate_threshold if c.HasField("gate_threshold") else None, "config.gate_threshold")
        interval = 0.0
        if mode is TriggerMode.INTERVAL:
            interval = finite(
                c.interval_seconds,
                "config.interval_seconds",
                self.cfg.min_interval_seconds,
                self.cfg.max_interval_seconds,
            )
        window = self.cfg.max_audio_window_seconds
        before = finite(c.audio_before_seconds, "config.audio_before_seconds", 0.0, window)
        after = finite(c.audio_after_seconds, "config.audio_after_seconds", 0.0, window)
        prompt, system = self.texts(c.prompt, c.system, "config")
        params, soft = self.params(c.options, "config.options")
        # the largest description this session can ask for: one image at the full budget and the whole window
        audio = [self.engine.audio_tokens(math.ceil((before + after) * 16_000))] if before + after > 0 else []
        check_budget(
            self.engine, prompt, system, [soft or self.engine.default_soft_tokens], audio, params.max_new_tokens
        )
        return SessionSettings(
            mode=mode,
            prompt=prompt,
            params=params,
            interval_seconds=interval,
            system=system,
            max_soft_tokens=soft,
            audio_before_seconds=before,
            audio_after_seconds=after,
            context=part_context(c.context),
            stream_tokens=c.stream_tokens,
            image_gate=image_gate,
            sound_gate=self.gate is not None and self.gate.sound is not None,
            gate_threshold=threshold,
            references=self.references,
        )

    def frame(self, f: pb.Frame) -> FrameIn:
        return FrameIn(finite(f.capture_time, "frame.capture_time"), self.image(f.image, "frame.image"))

    def audio_chunk(self, a: pb.AudioChunk) -> AudioIn:
        return AudioIn(finite(a.capture_time, "audio.capture_time"), self.audio(a.audio, "audio.audio"))

    def trigger(self, t: pb.Trigger) -> TriggerIn:
        when = finite(t.capture_time, "trigger.capture_time") if t.capture_time else None
        ctx = part_context(t.context) if t.HasField("context") and t.context.ByteSize() else None
        return TriggerIn(when, ctx)


def gate_result(g: pb.GateResult) -> Any:
    """A gate result the client sent with a Describe request (its own gate ran on the first image)."""
    from edge.gate.result import GateResult

    score = finite(g.score, "gate.score")
    threshold = finite(g.threshold, "gate.threshold", 0.0, 1.0) if g.threshold else 0.5
    region = None
    if g.HasField("region"):
        r = g.region
        if not (r.x0 < r.x1 and r.y0 < r.y1):
            raise FieldError("gate.region", f"({r.x0}, {r.y0}, {r.x1}, {r.y1}) is not a non-empty box")
        region = (r.x0, r.y0, r.x1, r.y1)
    return GateResult(score, bool(g.anomalous), threshold, g.gate_id or "client", region=region)
