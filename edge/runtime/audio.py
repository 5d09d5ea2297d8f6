"""Decode station audio (raw PCM or WAV) to 16 kHz mono float32 and cut it into Gemma 4 unified frames.

The 12B model has no audio encoder: each 640-sample frame (40 ms at 16 kHz) of the raw waveform is one
soft token, at most 750 per clip (``Gemma4UnifiedAudioFeatureExtractor`` and the processor's
``audio_seq_length`` in transformers 5.23). Integer PCM is scaled to [-1, 1) by 2**(bits-1); stereo
is averaged; other rates are resampled with soxr "HQ".

>>> frames = audio_frames(decode_pcm(chunk, "s16le", 48_000, 2))   # float32 [n, 640]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import soxr

from edge.errors import AudioError, ConfigError

SAMPLE_RATE = 16_000
SAMPLES_PER_TOKEN = 640
MAX_TOKENS = 750  # 30 s
_PCM = {"s16le": ("<i2", 1 / 32768), "f32le": ("<f4", None)}
# WAV (format tag, bits) → numpy dtype ("i3" is unpacked by hand); tag 1 = PCM, 3 = IEEE float
_WAV = {(1, 8): "u1", (1, 16): "<i2", (1, 24): "i3", (1, 32): "<i4", (3, 32): "<f4", (3, 64): "<f8"}


@dataclass(frozen=True)
class AudioLimits:
    """What an audio clip may be before we decode it.

    >>> decode_pcm(chunk, "s16le", 44_100, 1, AudioLimits(max_seconds=10))
    """

    max_seconds: float = MAX_TOKENS * SAMPLES_PER_TOKEN / SAMPLE_RATE
    min_sample_rate: int = 8_000
    max_sample_rate: int = 192_000

    def __post_init__(self) -> None:
        cap = MAX_TOKENS * SAMPLES_PER_TOKEN / SAMPLE_RATE
        if not 0 < self.max_seconds <= cap:
            raise ConfigError(f"audio max_seconds must be in (0, {cap:g}] (the model's {MAX_TOKENS} frames)")
        if not 0 < self.min_sample_rate <= self.max_sample_rate:
            raise ConfigError("audio min_sample_rate must be positive and not above max_sample_rate")


def decode_pcm(
    data: bytes, encoding: str, sample_rate: int, channels: int, limits: AudioLimits | None = None
) -> np.ndarray:
    """Raw interleaved PCM (``'s16le'`` or ``'f32le'``, mono or stereo) → float32 mono 16 kHz."""
    limits = limits or AudioLimits()
    if encoding not in _PCM:
        raise AudioError(f"unsupported PCM encoding {encoding!r}; use one of {sorted(_PCM)}")
    dtype, scale = _PCM[encoding]
    _check_format(sample_rate, channels, limits)
    if not data:
        raise AudioError("the audio clip is empty (0 bytes)")
    frame = np.dtype(dtype).itemsize * channels
    if len(data) % frame:
        raise AudioError(
            f"{len(data)} bytes is not a whole number of {channels}-channel {encoding} frames "
            f"({frame} bytes each); check the encoding and channel count"
        )
    n = len(data) // frame
    _check_length(n, sample_rate, limits)
    samples = np.frombuffer(data, dtype).reshape(n, channels).astype(np.float32)
    if scale is not None:
        samples *= np.float32(scale)
    return _mono_16k(samples, sample_rate, check_finite=scale is None)


def load_wav(source: str | PathLike[str] | bytes, limits: AudioLimits | None = None) -> np.ndarray:
    """WAV (path or bytes; PCM 8/16/24/32-bit or float 32/64-bit, mono or stereo) → float32 mono 16 kHz.

    A ``data`` chunk that claims more bytes than there are (as streaming writers leave it) is read to the end.
    """
    limits = limits or AudioLimits()
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise AudioError(f"{source}: cannot read the WAV file ({exc.strerror})") from exc
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a WAV file (no RIFF/WAVE header); send PCM WAV or raw PCM")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt ":
            if size < 16 or body + size > len(data):
                raise AudioError("the WAV fmt chunk is truncated")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == 0xFFFE and size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID
                tag = struct.unpack_from("<H", data, body + 24)[0]
            fmt = (tag, channels, rate, bits)
        elif chunk == b"data":
            if fmt is None:
                raise AudioError("the WAV data chunk comes before its fmt chunk")
            streamed = body + size > len(data)
            return _wav_samples(data[body : min(body + size, len(data))], *fmt, streamed, limits)
        pos = body + size + (size & 1)  # chunks are padded to even sizes
    raise AudioError("the WAV has no data chunk" if fmt else "the WAV has no fmt chunk")


def audio_frames(wave: np.ndarray, samples_per_token: int = SAMPLES_PER_TOKEN) -> np.ndarray:
    """16 kHz mono waveform → float32 ``[ceil(len / 640), 640]``, the last frame zero-padded.

    Same as ``Gemma4UnifiedAudioFeatureExtractor._extract_waveform_features``.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise AudioError(f"audio must be a 1-D 16 kHz mono waveform, got shape {wave.shape}")
    if wave.size == 0:
        raise AudioError("the audio clip is empty")
    frames = np.zeros((-(-wave.size // samples_per_token), samples_per_token), np.float32)
    frames.reshape(-1)[: wave.size] = wave
    return frames


def _check_format(sample_rate: int, channels: int, limits: AudioLimits) -> None:
    if channels not in (1, 2):
        raise AudioError(f"{channels}-channel audio is not supported; send mono or stereo")
    if not limits.min_sample_rate <= sample_rate <= limits.max_sample_rate:
        raise AudioError(
            f"sample rate {sample_rate} Hz is outside the supported "
            f"{limits.min_sample_rate}..{limits.max_sample_rate} Hz"
        )


def _check_length(frames: int, sample_rate: int, limits: AudioLimits) -> None:
    if frames > limits.max_seconds * sample_rate:
        raise AudioError(
            f"the clip is {frames / sample_rate:.2f} s long, over the limit of {limits.max_seconds:g} s "
            f"(max_seconds); split it into shorter clips"
        )


def _wav_samples(
    raw: bytes, tag: int, channels: int, rate: int, bits: int, streamed: bool, limits: AudioLimits
) -> np.ndarray:
    kind = _WAV.get((tag, bits))
    if kind is None:
        raise AudioError(
            f"WAV format tag {tag} with {bits}-bit samples is not supported; "
            "use PCM 8/16/24/32-bit or IEEE float 32/64-bit"
        )
    _check_format(rate, channels, limits)
    frame = bits // 8 * channels
    if len(raw) % frame and not streamed:
        raise AudioError(f"the WAV data ({len(raw)} bytes) is not a whole number of {frame}-byte frames")
    n = len(raw) // frame
    if n == 0:
        raise AudioError("the audio clip is empty (no samples in the WAV data chunk)")
    _check_length(n, rate, limits)
    raw = raw[: n * frame]
    if kind == "i3":  # 24-bit: place each sample in the top 3 bytes of an int32, shift back with sign
        wide = np.zeros((n * channels, 4), np.uint8)
        wide[:, 1:] = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        samples = (wide.view("<i4")[:, 0] >> 8).astype(np.float32) * np.float32(2.0**-23)
    elif kind == "u1":
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) * np.float32(1 / 128)
    else:
        ints = np.frombuffer(raw, kind)
        with np.errstate(over="ignore"):  # float64 beyond float32 becomes inf, refused just below
            samples = ints.astype(np.float32)
        if ints.dtype.kind == "i":
            samples *= np.float32(2.0 ** -(bits - 1))
    return _mono_16k(samples.reshape(n, channels), rate, check_finite=tag == 3)


def _mono_16k(samples: np.ndarray, sample_rate: int, check_finite: bool) -> np.ndarray:
    if check_finite and not np.isfinite(samples).all():
        raise AudioError("the audio contains NaN, infinite or out-of-range samples")
    mono = samples[:, 0] if samples.shape[1] == 1 else (samples[:, 0] + samples[:, 1]) * np.float32(0.5)
    if sample_rate != SAMPLE_RATE:
        mono = soxr.resample(mono, sample_rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)
