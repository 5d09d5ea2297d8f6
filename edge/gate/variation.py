"""The variation model: per-pixel statistics of good, aligned frames, and the deviation of a frame from them.

For every pixel and colour channel it keeps a tolerance band and a spread, as the machine-vision libraries'
variation model does (a mean image plus a variation image). Here the band tolerates small residual shifts:

- ``lo``/``hi``: the minimum/maximum of the mean image shifted by up to ``radius`` pixels in the 8 compass
  directions (bilinear, so sub-pixel radii work), so an edge that lands that far off after registration
  still lies inside the band;
- ``sigma``: the per-pixel standard deviation, maximised over the same shifts, floored at
  ``sigma_floor`` (a perfectly flat good set must not make every speck infinitely anomalous).

A frame's deviation is ``max(lo − x, x − hi, 0) / sigma``, maximised over the channels, smoothed by a Gaussian
(σ ``smooth_sigma`` px) so that a line or a blob outscores one noisy pixel; the frame's raw score is the
maximum of that map. The graph in :mod:`edge.gate.variation_graph` computes exactly this.

>>> stats = fit_variation(aligned)          # aligned: float32 [N, H, W, 3] in 0..1, after the pre-step
>>> stats.lo.shape                          # (3, H, W)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class VariationParams:
    """The variation model's knobs (recorded in the gate manifest)."""

    radius: float = 0.3
    sigma_floor: float = 0.01
    smooth_sigma: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VariationStats:
    """The fitted model, channel-first float32 ``[3, H, W]`` arrays (what the graph holds as constants)."""

    lo: np.ndarray
    hi: np.ndarray
    inv_sigma: np.ndarray
    params: VariationParams


def fit_variation(
    aligned: np.ndarray, params: VariationParams | None = None, observed: np.ndarray | None = None
) -> VariationStats:
    """Fit the model on good frames ``aligned`` (float32 ``[N, H, W, 3]``, 0..1, after the pre-step).

    ``observed`` (bool ``[H, W]``) marks the pixels every good frame actually saw after registration; the
    others (near the borders, filled in by the warp) get no weight: their deviation is always 0.
    """
    params = params or VariationParams()
    mean = aligned.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = aligned.std(axis=0, dtype=np.float64).astype(np.float32)
    shifted_mean = [_shift(mean, dx, dy) for dx, dy in _offsets(params.radius)]
    shifted_std = [_shift(std, dx, dy) for dx, dy in _offsets(params.radius)]
    lo, hi = np.min(shifted_mean, axis=0), np.max(shifted_mean, axis=0)
    sigma = np.maximum(np.max(shifted_std, axis=0), params.sigma_floor)
    weight = 1.0 / sigma
    if observed is not None:
        weight *= observed[:, :, None]
    chw = [np.ascontiguousarray(a.transpose(2, 0, 1)) for a in (lo, hi, weight)]
    return VariationStats(chw[0], chw[1], chw[2].astype(np.float32), params)


def _offsets(radius: float) -> list[tuple[float, float]]:
    """The identity and the 8 compass shifts of length ``radius`` (sub-pixel radii are bilinear shifts)."""
    if radius <= 0:
        return [(0.0, 0.0)]
    d = radius / np.sqrt(2)
    return (
        [(0.0, 0.0)]
        + [(radius * x, radius * y) for x, y in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        + [(d * x, d * y) for x in (1, -1) for y in (1, -1)]
    )


def _shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    if dx == 0 and dy == 0:
        return img
    m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalized 2-D Gaussian, float32 ``[2r+1, 2r+1]`` with r = ceil(2σ)."""
    r = max(1, int(np.ceil(2 * sigma)))
    g = cv2.getGaussianKernel(2 * r + 1, sigma, cv2.CV_32F)
    return (g @ g.T).astype(np.float32)


__all__ = ["VariationParams", "VariationStats", "fit_variation", "gaussian_kernel"]
