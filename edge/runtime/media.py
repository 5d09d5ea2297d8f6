"""Turn what a caller passes as an image or audio clip into model inputs.

Accepted images: encoded bytes (JPEG, PNG, BMP, TIFF), a file path, an RGB
``uint8`` array ``[H, W, 3]`` (or grey ``[H, W]``), or an already prepared image.
Accepted audio: WAV bytes or a path, or a float waveform that is already 16 kHz mono.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import AudioError, ImageError, InputError
from edge.runtime.audio import AudioLimits, audio_frames, load_wav
from edge.runtime.image import ImageLimits, PreparedImage, decode_image, preprocess_image

__all__ = ["PreparedImage", "as_audio_frames", "as_prepared_image"]


def as_prepared_image(
    img: Any, max_soft_tokens: int, processor: dict[str, Any], limits: ImageLimits | None = None
) -> PreparedImage:
    if isinstance(img, PreparedImage):
        return img
    limits = limits or ImageLimits()
    if isinstance(img, (str, Path)):
        with _naming("image", img, ImageError):
            return as_prepared_image(Path(img).read_bytes(), max_soft_tokens, processor, limits)
    if isinstance(img, (bytes, bytearray, memoryview)):
        rgb = decode_image(bytes(img), limits)
    elif isinstance(img, np.ndarray):
        rgb = _rgb_array(img, limits)
    else:
        raise ImageError(f"unsupported image input of type {type(img).__name__}; pass bytes, a path or an RGB array")
    return preprocess_image(
        rgb,
        max_soft_tokens=max_soft_tokens,
        patch_size=int(processor["patch_size"]),
        pooling_kernel_size=int(processor["pooling_kernel_size"]),
    )


def _rgb_array(arr: np.ndarray, limits: ImageLimits) -> np.ndarray:
    if arr.dtype != np.uint8:
        raise ImageError(f"image arrays must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(f"image arrays must be [H, W, 3] RGB or [H, W] grey, got shape {arr.shape}")
    if arr.shape[0] * arr.shape[1] == 0:
        raise ImageError("the image is empty (zero width or height)")
    if arr.shape[0] * arr.shape[1] > limits.max_pixels:
        raise ImageError(f"image of {arr.shape[1]}x{arr.shape[0]} exceeds the limit of {limits.max_pixels} pixels")
    return np.ascontiguousarray(arr)


def as_audio_frames(audio: Any, processor: dict[str, Any], limits: AudioLimits | None = None) -> np.ndarray:
    limits = limits or AudioLimits()
    if isinstance(audio, (str, Path)):
        with _naming("audio", audio, AudioError):
            return as_audio_frames(Path(audio).read_bytes(), processor, limits)
    if isinstance(audio, (bytes, bytearray, memoryview)):
        wave = load_wav(bytes(audio), limits)
    elif isinstance(audio, np.ndarray):
        wave = np.asarray(audio, dtype=np.float32)
        if wave.ndim != 1:
            raise AudioError(f"audio arrays must be 1-D 16 kHz mono, got shape {wave.shape}; use decode_pcm for others")
        if wave.size == 0:
            raise AudioError("the audio clip is empty")
        if not np.isfinite(wave).all():
            raise AudioError("the audio clip contains NaN or infinite samples")
    else:
        raise AudioError(f"unsupported audio input of type {type(audio).__name__}; pass WAV bytes, a path or samples")
    frames = audio_frames(wave, int(processor["audio_samples_per_token"]))
    cap = int(processor.get("max_audio_tokens", 750))
    if len(frames) > cap:
        seconds = cap * int(processor["audio_samples_per_token"]) / int(processor.get("audio_sampling_rate", 16000))
        raise AudioError(f"audio of {len(frames)} frames exceeds the model's limit of {cap} frames ({seconds:.0f} s)")
    return frames


@contextmanager
def _naming(what: str, path: str | Path, error: type[InputError]) -> Iterator[None]:
    """Errors about the content of a file name the file: with two images, the user sees which one is bad."""
    try:
        yield
    except OSError as exc:
        raise error(f"{what} {path}: cannot read ({exc.strerror or exc})") from exc
    except error as exc:
        raise error(f"{what} {path}: {exc}") from None
