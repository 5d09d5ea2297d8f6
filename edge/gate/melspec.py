"""Log-mel spectra of 16 kHz audio with numpy alone: Hann-windowed frames, power spectrum, HTK mel filters.

The mel scale is HTK's, ``mel = 2595 log10(1 + f / 700)``, with triangular filters between consecutive points
equally spaced on it (as ``librosa.filters.mel(htk=True, norm=None)`` builds them); the log is natural, of
the filter energy plus a floor of 1e-10 so that silence stays finite.

>>> feats = log_mel(windows, MelParams())     # [windows, frames, n_mels] float32
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from edge.errors import GateSchemaError
from edge.gate.params import params_from_dict


@dataclass(frozen=True)
class MelParams:
    """Spectrogram parameters (recorded in the gate manifest): 64 ms frames every 16 ms, 64 bands to 8 kHz.

    64 ms frames resolve a whine's tone from the hum's harmonics better than 32 ms ones (per-window AUROC on
    the generated whines 0.97 against 0.95), and still catch a 12 ms knock."""

    sample_rate: int = 16_000
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8_000.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MelParams:
        p = params_from_dict(cls, d, "sound.features")
        if not (0 <= p.fmin < p.fmax <= p.sample_rate / 2 and p.n_fft >= 16 and p.hop > 0 and p.n_mels >= 2):
            raise GateSchemaError(f"sound.features: inconsistent spectrogram parameters {p}")
        return p


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(p: MelParams) -> np.ndarray:
    """Triangular filters, float32 ``[n_mels, n_fft // 2 + 1]``, peak 1 at each band's centre frequency."""
    bins = np.fft.rfftfreq(p.n_fft, 1.0 / p.sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(p.fmin), hz_to_mel(p.fmax), p.n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)  # periodic, as STFTs use


def log_mel(windows: np.ndarray, p: MelParams) -> np.ndarray:
    """``windows`` float32 ``[W, samples]`` → log-mel ``[W, frames, n_mels]`` (frames inside each window only)."""
    n = windows.shape[-1]
    if n < p.n_fft:
        raise ValueError(f"a window of {n} samples is shorter than one {p.n_fft}-sample frame")
    frames = 1 + (n - p.n_fft) // p.hop
    view = np.lib.stride_tricks.sliding_window_view(windows, p.n_fft, axis=-1)[:, :: p.hop][:, :frames]
    spectrum = np.fft.rfft(view * _hann(p.n_fft), axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return np.log(power @ mel_filterbank(p).T + 1e-10).astype(np.float32)


__all__ = ["MelParams", "hz_to_mel", "log_mel", "mel_filterbank", "mel_to_hz"]
