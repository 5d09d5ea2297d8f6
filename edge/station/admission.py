"""Checks on arrival: everything a request, frame or chunk must pass before it may cost memory or time.

Images are checked from their headers and end markers and kept encoded (:class:`EncodedImage`,
:class:`RawFrame`); the token budget of a request is computed from image sizes, audio lengths and the
text alone, so a request that cannot fit the context is refused before a single pixel is decoded.
Every refusal is a :class:`~edge.errors.FieldError` naming the field.

>>> limits = AdmissionLimits.for_context(4096)
>>> img = encoded_image(jpeg_bytes, "images[0].encoded", limits.image)    # header checks only
>>> check_budget(engine, "Describe.", None, [engine.image_tokens(img.width, img.height)], [], 128)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.errors import FieldError, ImageError
from edge.runtime.audio import AudioLimits
from edge.runtime.image import ImageLimits, PixelFormat, check_raw, decode_image, probe_image, raw_image
from edge.station.engine import DescriptionEngine

PROMPT_BYTES_PER_TOKEN = 8  # the derived prompt limit: generous for any language, tiny next to a message limit


@dataclass(frozen=True)
class AdmissionLimits:
    """Per-request limits; the prompt limit is derived from the context unless given."""

    image: ImageLimits = field(default_factory=ImageLimits)
    audio: AudioLimits = field(default_factory=AudioLimits)
    max_prompt_bytes: int = 32_768  # each of prompt and system text, UTF-8
    max_images: int = 8
    max_audio_clips: int = 4

    @staticmethod
    def prompt_bytes_for(context: int, configured: int = 0) -> int:
        """``configured`` if set, else ``PROMPT_BYTES_PER_TOKEN`` bytes per token of context."""
        return configured if configured > 0 else PROMPT_BYTES_PER_TOKEN * context


@dataclass(frozen=True)
class EncodedImage:
    """A JPEG/PNG/BMP/TIFF whose header, size and end marker passed; decoded only when described."""

    data: bytes
    field: str
    kind: str
    width: int
    height: int
    limits: ImageLimits

    def decode(self) -> np.ndarray:
        try:
            return decode_image(self.data, self.limits)
        except ImageError as exc:
            raise FieldError(self.field, str(exc)) from None


@dataclass(frozen=True)
class RawFrame:
    """Raw pixels whose byte count matches width × height × stride × format."""

    data: bytes
    field: str
    width: int
    height: int
    stride: int
    fmt: PixelFormat
    limits: ImageLimits

    @property
    def kind(self) -> str:
        return f"raw {self.width}x{self.height} stride {self.stride} {self.fmt.value}"

    def decode(self) -> np.ndarray:
        try:
            return raw_image(self.data, self.width, self.height, self.stride, self.fmt, self.limits)
        except ImageError as exc:
            raise FieldError(self.field, str(exc)) from None


def encoded_image(data: bytes, field: str, limits: ImageLimits) -> EncodedImage:
    try:
        kind, width, height = probe_image(data, limits)
    except ImageError as exc:
        raise FieldError(field, str(exc)) from None
    return EncodedImage(bytes(data), field, kind, width, height, limits)


def raw_frame(
    data: bytes, width: int, height: int, stride: int | None, fmt: PixelFormat, field: str, limits: ImageLimits
) -> RawFrame:
    try:
        effective = check_raw(len(data), width, height, stride, fmt, limits)
    except ImageError as exc:
        raise FieldError(field, str(exc)) from None
    return RawFrame(bytes(data), field, width, height, effective, fmt, limits)


def finite(value: float, field: str, low: float | None = None, high: float | None = None) -> float:
    """``value`` if it is a finite number within [low, high]; else a FieldError saying what is allowed."""
    if not math.isfinite(value):
        raise FieldError(field, f"must be a finite number, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "" if low is None else f"{low:g}"
        hi = "" if high is None else f"{high:g}"
        raise FieldError(field, f"must be in [{lo}, {hi}], got {value:g}")
    return float(value)


def check_text(text: str, field: str, max_bytes: int) -> str:
    """Refuse text over ``max_bytes`` (UTF-8) before anything tokenizes it."""
    n = len(text.encode("utf-8", "surrogatepass"))
    if n > max_bytes:
        raise FieldError(
            field,
            f"{n} bytes is over the limit of {max_bytes} bytes (max_prompt_bytes); the model reads at most "
            "the bundle's context, so send the instruction, not a document",
        )
    return text


def check_counts(images: int, audio: int, limits: AdmissionLimits) -> None:
    if images > limits.max_images:
        raise FieldError("images", f"{images} images is over the limit of {limits.max_images} per request")
    if audio > limits.max_audio_clips:
        raise FieldError("audio", f"{audio} audio clips is over the limit of {limits.max_audio_clips} per request")


def check_budget(
    engine: DescriptionEngine,
    prompt: str,
    system: str | None,
    image_tokens: Sequence[int],
    audio_tokens: Sequence[int],
    max_new_tokens: int,
) -> int:
    """Prompt tokens of a request whose media have these soft-token counts (known from sizes alone);
    a FieldError if prompt + ``max_new_tokens`` exceed the context."""
    total = engine.prompt_tokens(prompt, system, image_tokens, audio_tokens)
    if total + max_new_tokens > engine.context:
        media = []
        if image_tokens:
            media.append(f"{len(image_tokens)} image(s), {sum(image_tokens)} soft tokens")
        if audio_tokens:
            media.append(f"{len(audio_tokens)} audio clip(s), {sum(audio_tokens)} soft tokens")
        what = f" ({'; '.join(media)})" if media else ""
        raise FieldError(
            "images" if image_tokens else "audio" if audio_tokens else "prompt",
            f"the prompt is {total} tokens{what} + max_new_tokens {max_new_tokens}, over the bundle's context of "
            f"{engine.context} tokens; send fewer images or a smaller options.max_soft_tokens, shorter audio, "
            "a shorter prompt, or fewer new tokens",
        )
    return total
