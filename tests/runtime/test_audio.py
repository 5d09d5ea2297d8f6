"""PCM/WAV decoding, resampling, limits and frames of edge.runtime.audio, on audio made here."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest

from edge.errors import AudioError, ConfigError
from edge.runtime.audio import AudioLimits, audio_frames, decode_pcm, load_wav


def _sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(round(rate * seconds)) / rate)).astype(np.float32)


def _s16(x: np.ndarray) -> bytes:
    return np.round(x * 32767).astype("<i2").tobytes()


def _peak_hz(x: np.ndarray, rate: int = 16_000) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


# --- raw PCM ----------------------------------------------------------------------------------------------


def test_s16le_scaling() -> None:
    data = np.array([-32768, -16384, 0, 1, 16384, 32767], "<i2").tobytes()
    out = decode_pcm(data, "s16le", 16_000, 1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([-1, -0.5, 0, 1 / 32768, 0.5, 32767 / 32768], np.float32))


def test_f32le_at_16k_passes_through_unchanged() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, 1234).astype("<f4")
    np.testing.assert_array_equal(decode_pcm(x.tobytes(), "f32le", 16_000, 1), x)


@pytest.mark.parametrize("encoding", ["s16le", "f32le"])
def test_stereo_is_averaged_to_mono(encoding: str) -> None:
    left, right = _sine(440, 16_000, 0.1), _sine(1000, 16_000, 0.1, amp=0.25)
    inter = np.stack([left, right], axis=1)
    data = _s16(inter) if encoding == "s16le" else inter.astype("<f4").tobytes()
    out = decode_pcm(data, encoding, 16_000, 2)
    assert out.shape == left.shape
    np.testing.assert_allclose(out, (left + right) / 2, atol=1e-4 if encoding == "s16le" else 1e-7)


@pytest.mark.parametrize("rate", [8_000, 11_025, 22_050, 44_100, 48_000, 96_000, 192_000])
def test_resampling_keeps_length_and_frequency(rate: int) -> None:
    x = _sine(1000, rate, 2.0)
    out = decode_pcm(_s16(x), "s16le", rate, 1)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert len(out) == 32_000
    assert _peak_hz(out) == pytest.approx(1000, abs=1)
    mid = out[1000:-1000]  # away from the filter's edge transients
    assert np.sqrt(np.mean(mid**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resampling_stereo_44k1_to_16k() -> None:
    left, right = _sine(300, 44_100, 1.0), _sine(3000, 44_100, 1.0)
    out = decode_pcm(np.stack([left, right], 1).astype("<f4").tobytes(), "f32le", 44_100, 2)
    assert len(out) == 16_000
    spectrum = np.abs(np.fft.rfft(out))
    assert spectrum[300] > 1000 and spectrum[3000] > 1000  # 1 Hz bins, both tones present


def test_thirty_seconds_is_accepted_and_is_750_frames() -> None:
    for rate in (16_000, 44_100, 48_000):
        out = decode_pcm(bytes(2 * 30 * rate), "s16le", rate, 1)
        assert len(out) == 480_000 and audio_frames(out).shape == (750, 640)


@pytest.mark.parametrize(
    ("data", "encoding", "rate", "channels", "match"),
    [
        (b"", "s16le", 16_000, 1, "empty"),
        (b"\0\0\0", "s16le", 16_000, 1, "3 bytes is not a whole number of 1-channel s16le frames"),
        (b"\0" * 6, "s16le", 16_000, 2, "4 bytes each"),
        (b"\0" * 6, "f32le", 16_000, 1, "f32le frames"),
        (b"\0" * 4, "s24le", 16_000, 1, "unsupported PCM encoding 's24le'"),
        (b"\0" * 4, "mp3", 16_000, 1, "unsupported PCM encoding"),
        (b"\0" * 6, "s16le", 16_000, 3, "3-channel audio is not supported"),
        (b"\0" * 6, "s16le", 16_000, 0, "0-channel audio is not supported"),
        (b"\0" * 4, "s16le", 7_999, 1, "sample rate 7999 Hz is outside the supported 8000..192000 Hz"),
        (b"\0" * 4, "s16le", 192_001, 1, "outside"),
        (np.array([0, np.nan], "<f4").tobytes(), "f32le", 16_000, 1, "NaN, infinite or out-of-range"),
        (np.array([np.inf, 0], "<f4").tobytes(), "f32le", 16_000, 2, "NaN, infinite or out-of-range"),
        (bytes(2 * 480_001), "s16le", 16_000, 1, r"30\.00 s long, over the limit of 30 s"),
        (bytes(4 * 1_323_001), "s16le", 44_100, 2, "over the limit of 30 s"),
    ],
)
def test_pcm_errors(data: bytes, encoding: str, rate: int, channels: int, match: str) -> None:
    with pytest.raises(AudioError, match=match):
        decode_pcm(data, encoding, rate, channels)


def test_limits_are_configurable_and_checked() -> None:
    limits = AudioLimits(max_seconds=1.0, min_sample_rate=16_000, max_sample_rate=48_000)
    assert len(decode_pcm(bytes(2 * 16_000), "s16le", 16_000, 1, limits)) == 16_000
    with pytest.raises(AudioError, match="over the limit of 1 s"):
        decode_pcm(bytes(2 * 16_001), "s16le", 16_000, 1, limits)
    with pytest.raises(AudioError, match=r"outside the supported 16000\.\.48000 Hz"):
        decode_pcm(bytes(2 * 800), "s16le", 8_000, 1, limits)
    for bad in (
        {"max_seconds": 31.0},
        {"max_seconds": 0},
        {"min_sample_rate": 50_000, "max_sample_rate": 8000},
    ):
        with pytest.raises(ConfigError):
            AudioLimits(**bad)  # type: ignore[arg-type]


# --- frames -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 639, 640, 641, 1280, 16_000, 16_001, 480_000])
def test_frames_equal_the_hf_feature_extractor(n: int) -> None:
    from transformers.models.gemma4_unified.feature_extraction_gemma4_unified import (
        Gemma4UnifiedAudioFeatureExtractor,
    )

    x = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
    ref, mask = Gemma4UnifiedAudioFeatureExtractor()._extract_waveform_features(x)
    out = audio_frames(x)
    assert out.dtype == ref.dtype == np.float32
    np.testing.assert_array_equal(out, ref)
    assert len(out) == int(mask.sum()) == -(-n // 640)


def test_frames_reject_non_waveforms() -> None:
    with pytest.raises(AudioError, match="empty"):
        audio_frames(np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="1-D"):
        audio_frames(np.zeros((2, 640), np.float32))
    np.testing.assert_array_equal(audio_frames(np.ones(3, np.float64), 2), [[1, 1], [1, 0]])


# --- WAV --------------------------------------------------------------------------------------------------


def _wav(samples: np.ndarray, rate: int, width: int) -> bytes:
    """A PCM WAV written by the stdlib: samples float [-1, 1), [n] or [n, channels]."""
    x = samples.reshape(len(samples), -1)
    full = 2 ** (8 * width - 1)
    ints = np.clip(np.round(x * full), -full, full - 1).astype(np.int64)
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    else:
        raw = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints.reshape(-1))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return buf.getvalue()


def _float_wav(samples: np.ndarray, rate: int, extensible: bool = False, dtype: str = "<f4") -> bytes:
    """IEEE-float WAV by hand (the stdlib wave module only writes integer PCM)."""
    x = samples.reshape(len(samples), -1).astype(dtype)
    ch, bits = x.shape[1], 8 * x.itemsize
    block = ch * x.itemsize
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else 3, ch, rate, rate * block, block, bits)
    if extensible:  # cbSize, valid bits, channel mask, sub-format GUID (KSDATAFORMAT_SUBTYPE_IEEE_FLOAT)
        guid = struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
        fmt += struct.pack("<HHI", 22, bits, 0) + guid
    data = x.tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", 3) + b"abc\0"
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2])
def test_pcm_wav_of_every_width(width: int, channels: int) -> None:
    x = _sine(500, 16_000, 0.05)
    samples = np.stack([x, -x], 1) if channels == 2 else x
    out = load_wav(_wav(samples, 16_000, width))
    expected = np.zeros_like(x) if channels == 2 else x
    np.testing.assert_allclose(out, expected, atol={1: 1 / 100, 2: 1e-4, 3: 1e-6, 4: 1e-7}[width])


def test_24_bit_extremes() -> None:
    raw = b"".join(v.to_bytes(3, "little", signed=True) for v in (-(2**23), -1, 0, 1, 2**23 - 1))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(16_000)
        w.writeframes(raw)
    np.testing.assert_array_equal(
        load_wav(buf.getvalue()), np.array([-1, -(2.0**-23), 0, 2.0**-23, 1 - 2.0**-23], np.float32)
    )


@pytest.mark.parametrize("extensible", [False, True])
@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_float_wav_and_resampling(extensible: bool, dtype: str) -> None:
    x = _sine(2000, 48_000, 0.5)
    out = load_wav(_float_wav(x, 48_000, extensible, dtype))
    assert len(out) == 8000 and _peak_hz(out) == pytest.approx(2000, abs=2)


def test_wav_from_a_path_equals_wav_from_bytes(tmp_path) -> None:
    data = _wav(_sine(440, 22_050, 0.2), 22_050, 2)
    (tmp_path / "clip.wav").write_bytes(data)
    np.testing.assert_array_equal(load_wav(tmp_path / "clip.wav"), load_wav(data))
    np.testing.assert_array_equal(load_wav(str(tmp_path / "clip.wav")), load_wav(bytearray(data)))
    with pytest.raises(AudioError, match="cannot read the WAV file"):
        load_wav(tmp_path / "missing.wav")


def test_streamed_wav_with_oversized_data_chunk_is_read_to_the_end() -> None:
    data = bytearray(_wav(_sine(440, 16_000, 0.1), 16_000, 2) + b"\x01")  # plus half a frame
    at = data.index(b"data")
    struct.pack_into("<I", data, at + 4, 0xFFFFFFFF)
    struct.pack_into("<I", data, 4, 0xFFFFFFFF)
    assert len(load_wav(bytes(data))) == 1600


def test_wav_errors() -> None:
    good = _float_wav(_sine(440, 16_000, 0.1), 16_000)
    fmt_at, data_at = good.index(b"fmt "), good.index(b"data")

    def data_size(n: int) -> bytes:
        return good[: data_at + 4] + struct.pack("<I", n) + good[data_at + 8 :]

    cases = {
        b"": "not a WAV file",
        b"RIFF\0\0\0\0WAVX" + good[12:]: "not a WAV file",
        good[:data_at]: "no data chunk",
        good[:12] + good[data_at:]: "data chunk comes before its fmt chunk",
        b"RIFF\0\0\0\0WAVE": "no fmt chunk",
        good[: fmt_at + 12]: "fmt chunk is truncated",
        good[: fmt_at + 8] + struct.pack("<H", 2) + good[fmt_at + 10 :]: "format tag 2 with 32-bit samples",
        data_size(0): "empty",
        data_size(6): "not a whole number of 4-byte frames",
        _float_wav(np.array([0.0, np.nan]), 16_000): "NaN, infinite or out-of-range",
        _float_wav(np.array([1e300, 0.0]), 16_000, dtype="<f8"): "NaN, infinite or out-of-range",
        _float_wav(np.zeros((4, 3)), 16_000): "3-channel audio is not supported",
        _float_wav(np.zeros(4), 4_000): "sample rate 4000 Hz",
        _wav(np.zeros(16_000 * 30 + 1), 16_000, 2): "over the limit of 30 s",
    }
    for data, match in cases.items():
        with pytest.raises(AudioError, match=match):
            load_wav(data)
