"""Score machine sound with a sound gate: per-band log-mel statistics of good sound, Mahalanobis per frame.

Each window (``window_seconds``, non-overlapping) is cut into 32 ms frames; each frame's log-mel vector is
compared with the good sound's mean and covariance (Mahalanobis distance, divided by √bands), and the
window's raw score is a high quantile of its frames' distances: a knock or a rattle that touches a few frames
still counts, one stray frame does not. The raw score is normalized as anomalib does (0.5 = the calibrated
threshold). This is the statistical baseline of the anomalous-sound-detection literature, in numpy.

>>> windows = gate.sound.score(samples)     # float32 16 kHz mono
>>> [(w.start_s, w.result.score, w.result.label) for w in windows]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import AudioError, GateSchemaError
from edge.gate.calibration import Calibration
from edge.gate.melspec import MelParams, log_mel
from edge.gate.result import GateResult, SoundWindow, check_score, check_threshold


@dataclass(frozen=True)
class SoundModel:
    """Mean and precision (inverse covariance) of good log-mel frames; saved as ``sound.npz``."""

    mean: np.ndarray  # float64 [n_mels]
    precision: np.ndarray  # float64 [n_mels, n_mels]

    def distances(self, feats: np.ndarray) -> np.ndarray:
        """Mahalanobis distance / √bands of each frame: ``feats`` [..., n_mels] → [...]."""
        d = feats.astype(np.float64) - self.mean
        return np.sqrt(np.maximum(((d @ self.precision) * d).sum(axis=-1), 0.0) / d.shape[-1])

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:
            np.savez(f, mean=self.mean, precision=self.precision)

    @classmethod
    def load(cls, path: Path, n_mels: int) -> SoundModel:
        try:
            with np.load(path, allow_pickle=False) as z:
                mean, precision = z["mean"].astype(np.float64), z["precision"].astype(np.float64)
        except (OSError, KeyError, ValueError) as exc:
            raise GateSchemaError(f"{path}: not a sound model written by `edge gate fit` ({exc})") from None
        if mean.shape != (n_mels,) or precision.shape != (n_mels, n_mels):
            raise GateSchemaError(f"{path}: shapes {mean.shape}/{precision.shape} do not match {n_mels} bands")
        return cls(mean, precision)


def window_scores(model: SoundModel, windows: np.ndarray, mel: MelParams, quantile: float) -> np.ndarray:
    """Raw score of each window ``[W, samples]``: the ``quantile`` of its frames' distances."""
    return np.quantile(model.distances(log_mel(windows, mel)), quantile, axis=1)


class SoundGate:
    """A fitted sound gate.

    >>> gate = SoundGate(model, MelParams(), window_seconds=1.0, quantile=0.9, calibration=cal, gate_id="…")
    >>> gate.score(samples)[0].result.label
    """

    def __init__(
        self,
        model: SoundModel,
        mel: MelParams,
        *,
        window_seconds: float,
        quantile: float,
        calibration: Calibration,
        gate_id: str,
    ) -> None:
        self.model, self.mel, self.quantile, self.calibration = model, mel, quantile, calibration
        self.gate_id = gate_id
        self.window_seconds = window_seconds
        self.sample_rate = mel.sample_rate
        self.window_samples = round(window_seconds * mel.sample_rate)
        if self.window_samples < mel.n_fft:
            raise GateSchemaError(f"sound.window_seconds {window_seconds} is shorter than one spectrogram frame")

    def score(self, samples: np.ndarray, threshold: float | None = None) -> list[SoundWindow]:
        """One result per complete window of ``samples`` (float32 16 kHz mono), offsets from its start.

        Samples after the last complete window are not scored: a streaming caller keeps the last
        ``len(samples) % window_samples`` of them and prepends them to the next chunk.
        """
        t = check_threshold(threshold)
        wave = np.asarray(samples)
        if wave.ndim != 1 or not np.issubdtype(wave.dtype, np.floating):
            raise AudioError(f"the sound gate scores 1-D float 16 kHz mono samples, got {wave.dtype} {wave.shape}")
        if not np.isfinite(wave).all():
            raise AudioError("the audio contains NaN or infinite samples")
        n = wave.size // self.window_samples
        if n == 0:
            return []
        started = time.perf_counter()
        windows = wave[: n * self.window_samples].astype(np.float32).reshape(n, self.window_samples)
        scores = self.calibration.normalize(window_scores(self.model, windows, self.mel, self.quantile))
        latency = (time.perf_counter() - started) / n
        out = []
        for i, s in enumerate(scores):
            score = check_score(float(s), self.gate_id, f"audio window {i}")
            start = i * self.window_seconds
            result = GateResult(score, score > t, t, self.gate_id, latency_s=latency)
            out.append(SoundWindow(start, start + self.window_seconds, result))
        return out


__all__ = ["SoundGate", "SoundModel", "window_scores"]
