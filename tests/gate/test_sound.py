"""The sound gate: log-mel features, fit from normal sound, per-window decisions with offsets, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.dataset.sounds import machine_clip
from edge.errors import AudioError, GateFitError, ThresholdError
from edge.gate import load_gate
from edge.gate.fit import GateFitRequest, fit_gate
from edge.gate.melspec import MelParams, hz_to_mel, log_mel, mel_filterbank, mel_to_hz


def test_mel_filterbank_shape_and_peaks() -> None:
    p = MelParams()
    fb = mel_filterbank(p)
    assert fb.shape == (64, 513) and fb.dtype == np.float32
    freqs = np.fft.rfftfreq(p.n_fft, 1 / p.sample_rate)
    centres = mel_to_hz(np.linspace(hz_to_mel(p.fmin), hz_to_mel(p.fmax), p.n_mels + 2))[1:-1]
    peaks = freqs[fb.argmax(axis=1)]
    bin_width = p.sample_rate / p.n_fft
    assert np.all(np.abs(peaks - centres) <= bin_width)  # each filter peaks on the bin nearest its centre
    assert np.all(np.diff(peaks) >= 0)
    assert mel_to_hz(hz_to_mel(1000.0)) == pytest.approx(1000.0)
    assert hz_to_mel(700.0) == pytest.approx(2595 * np.log10(2))


def test_a_tone_lights_up_its_band() -> None:
    p = MelParams()
    t = np.arange(16_000) / 16_000
    tone = (0.5 * np.sin(2 * np.pi * 2000 * t)).astype(np.float32)[None]
    feats = log_mel(tone, p)
    assert feats.shape == (1, 1 + (16_000 - 1024) // 256, 64)
    band = int(feats[0].mean(axis=0).argmax())
    centres = mel_to_hz(np.linspace(hz_to_mel(p.fmin), hz_to_mel(p.fmax), p.n_mels + 2))[1:-1]
    assert abs(centres[band] - 2000) < 60
    silence = log_mel(np.zeros((1, 16_000), np.float32), p)
    assert np.isfinite(silence).all()


def test_windows_offsets_and_decisions(fitted_gate: Path) -> None:
    gate = load_gate(fitted_gate)
    assert gate.sound is not None and gate.sound.window_seconds == 1.0 and gate.sound.sample_rate == 16_000
    rng = np.random.default_rng(123)
    normal, _ = machine_clip(4.0, None, rng)
    windows = gate.sound.score(normal[:-100])  # 3.99 s: three complete windows
    assert [(w.start_s, w.end_s) for w in windows] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert not any(w.result.label for w in windows)
    assert all(w.result.region is None and w.result.anomaly_map is None for w in windows)
    dropout = normal.copy()
    dropout[16_000:32_000] *= 0.02  # the second second goes nearly silent
    flags = [w.result.label for w in gate.sound.score(dropout)]
    assert flags == [False, True, False, False]
    assert gate.sound.score(normal[:8000]) == []  # shorter than a window: nothing to score yet


def test_sound_threshold_and_bad_input(fitted_gate: Path) -> None:
    gate = load_gate(fitted_gate)
    assert gate.sound is not None
    wave, _ = machine_clip(2.0, None, np.random.default_rng(5))
    scores = [w.result.score for w in gate.sound.score(wave)]
    lenient = gate.sound.score(wave, threshold=min(scores) / 2)
    assert all(w.result.label and w.result.threshold == min(scores) / 2 for w in lenient)
    with pytest.raises(ThresholdError):
        gate.sound.score(wave, threshold=1.0)
    bad = wave.copy()
    bad[10] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        gate.sound.score(bad)
    with pytest.raises(AudioError, match="1-D float"):
        gate.sound.score(np.zeros((2, 16_000), np.float32))
    with pytest.raises(AudioError, match="1-D float"):
        gate.sound.score(np.zeros(16_000, np.int16))


def test_too_little_good_sound(tmp_path: Path, small_dataset: Path) -> None:
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted((small_dataset / "sound/train/good").glob("*.wav"))[:2]:
        shutil.copy(p, few)
    with pytest.raises(GateFitError, match=r"needs at least 10 windows of 1 s .* got 4 from 2 file"):
        fit_gate(tmp_path / "gate", GateFitRequest(good_sounds=few))
    (few / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(GateFitError, match=r"bad\.wav: cannot use this good recording"):
        fit_gate(tmp_path / "gate", GateFitRequest(good_sounds=few))


def test_sound_only_gate(tmp_path: Path, small_dataset: Path) -> None:
    m = fit_gate(tmp_path / "gate", GateFitRequest(good_sounds=small_dataset / "sound/train/good"))
    assert m.image is None and m.sound is not None
    assert m.sound["good_set"]["count"] == 10 and m.sound["calibration"]["held_out"] == 20
    gate = load_gate(tmp_path / "gate")
    assert gate.image is None and gate.sound is not None
