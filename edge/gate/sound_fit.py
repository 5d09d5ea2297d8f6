"""Fit a sound gate from recordings of normal machine sound: log-mel mean and covariance, k-fold calibrated.

>>> section = fit_sound_gate(wav_paths, out, SoundFitOptions())   # writes sound.npz; returns the manifest section
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgeError, GateFitError
from edge.gate.calibration import calibrate, fold_indices
from edge.gate.melspec import MelParams, log_mel
from edge.gate.sound_gate import SoundModel, window_scores
from edge.runtime.audio import AudioLimits, load_wav

log = logging.getLogger(__name__)

MIN_SOUND_WINDOWS = 10
SOUND_PARAMS_NAME = "sound.npz"
SHRINKAGE = 0.05  # covariance pulled 5 % toward its diagonal: 64 bands from a few thousand frames stay invertible


@dataclass(frozen=True)
class SoundFitOptions:
    """How ``edge gate fit`` builds a sound gate."""

    window_seconds: float = 1.0
    quantile: float = 0.9
    mel: MelParams = field(default_factory=MelParams)
    target_false_alarm_rate: float = 0.01
    folds: int = 5


def fit_sound_gate(paths: list[Path], out: Path, options: SoundFitOptions) -> dict[str, Any]:
    """Write ``sound.npz`` to ``out`` and return the manifest's ``sound`` section."""
    windows = _windows(paths, options)
    feats = log_mel(windows, options.mel)  # [W, frames, bands]
    held_out = np.empty(len(windows))
    folds = fold_indices(len(windows), options.folds)
    for fold in folds:
        rest = np.setdiff1d(np.arange(len(windows)), fold)
        model = fit_sound_model(feats[rest])
        held_out[fold] = window_scores(model, windows[fold], options.mel, options.quantile)
    cal = calibrate(
        held_out,
        options.target_false_alarm_rate,
        f"{len(folds)}-fold cross-calibration over {len(windows)} windows of good sound (contiguous folds)",
    )
    log.info("sound gate: threshold %.3f from %d held-out windows", cal.threshold, cal.held_out)
    fit_sound_model(feats).save(out / SOUND_PARAMS_NAME)
    return {
        "params": SOUND_PARAMS_NAME,
        "window_seconds": options.window_seconds,
        "quantile": options.quantile,
        "features": options.mel.to_dict(),
        "calibration": cal.to_dict(),
    }


def fit_sound_model(feats: np.ndarray) -> SoundModel:
    """Mean and shrunk-covariance precision of log-mel frames ``[..., bands]``."""
    x = feats.reshape(-1, feats.shape[-1]).astype(np.float64)
    mean = x.mean(axis=0)
    cov = np.cov(x, rowvar=False)
    cov = (1 - SHRINKAGE) * cov + SHRINKAGE * np.diag(np.diag(cov)) + 1e-6 * np.eye(len(mean))
    return SoundModel(mean, np.linalg.inv(cov))


def _windows(paths: list[Path], options: SoundFitOptions) -> np.ndarray:
    """All complete windows of all recordings, ``[W, samples]`` float32, in file order."""
    n = round(options.window_seconds * options.mel.sample_rate)
    limits = AudioLimits(max_seconds=30.0)
    chunks = []
    for path in paths:
        try:
            wave = load_wav(path, limits)
        except EdgeError as exc:
            raise GateFitError(f"{path}: cannot use this good recording ({exc})") from None
        whole = wave.size // n
        if whole == 0:
            log.warning("%s: shorter than one %.2f s window; skipped", path, options.window_seconds)
        chunks.append(wave[: whole * n].reshape(whole, n))
    windows = np.concatenate(chunks) if chunks else np.zeros((0, n), np.float32)
    if len(windows) < MIN_SOUND_WINDOWS:
        raise GateFitError(
            f"the sound gate needs at least {MIN_SOUND_WINDOWS} windows of {options.window_seconds:g} s of normal "
            f"machine sound, got {len(windows)} from {len(paths)} file(s): record at least "
            f"{MIN_SOUND_WINDOWS * options.window_seconds:g} s (a few minutes give a dependable threshold)"
        )
    return windows.astype(np.float32)


__all__ = ["MIN_SOUND_WINDOWS", "SOUND_PARAMS_NAME", "SoundFitOptions", "fit_sound_gate", "fit_sound_model"]
