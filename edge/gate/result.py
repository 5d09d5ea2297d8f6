"""What a gate says about one frame or one audio window, and the geometry that ties its map to the frame.

>>> r = gate.image.score(rgb)
>>> r.score, r.label, r.region                      # 0.5 = the calibrated threshold; region in frame pixels
>>> crop = crop_region(rgb, r.region)               # what the description should look at closely
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge.errors import GateScoreError, ImageError, ThresholdError

DEFAULT_THRESHOLD = 0.5
Affine = tuple[float, float, float, float, float, float]  # row-major 2×3: (a, b, c, d, e, f) → x' = ax+by+c


@dataclass(frozen=True, eq=False)
class GateResult:
    """One gate decision.

    ``score`` is normalized so that 0.5 is the threshold calibrated at fit time (anomalib's convention);
    ``threshold`` is the one actually applied (0.5 unless overridden) and ``label`` is ``score > threshold``.
    ``anomaly_map`` (float32, gate resolution, normalized like ``score``) and ``region`` (x0, y0, x1, y1 in the
    *input frame's* pixels, x1/y1 exclusive, around the most anomalous connected region) are ``None`` for sound.
    ``map_to_frame`` is the affine taking anomaly-map pixel coordinates to input-frame pixel coordinates
    (it undoes the registration and the resize).

    >>> r = GateResult(0.81, True, 0.5, "3f2a…", latency_s=0.004)
    """

    score: float
    label: bool
    threshold: float
    gate_id: str
    anomaly_map: np.ndarray | None = None
    region: tuple[int, int, int, int] | None = None
    latency_s: float = 0.0
    map_to_frame: Affine | None = None

    def map_in_frame(self, frame_size: tuple[int, int], out_size: tuple[int, int] | None = None) -> np.ndarray | None:
        """The anomaly map resampled onto the input frame (``frame_size`` = (width, height)), or onto a copy of
        the frame scaled to ``out_size``; pixels the map does not cover are 0."""
        if self.anomaly_map is None or self.map_to_frame is None:
            return None
        w, h = out_size or frame_size
        m = np.array(self.map_to_frame, np.float64).reshape(2, 3)
        m[0] *= w / frame_size[0]
        m[1] *= h / frame_size[1]
        return cv2.warpAffine(self.anomaly_map, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)


@dataclass(frozen=True)
class SoundWindow:
    """The gate's decision on one window of audio, ``start_s``..``end_s`` from the start of the scored samples."""

    start_s: float
    end_s: float
    result: GateResult


def check_threshold(threshold: float | None) -> float:
    """The threshold to apply: the calibrated 0.5, or an override strictly inside (0, 1)."""
    if threshold is None:
        return DEFAULT_THRESHOLD
    t = float(threshold)
    if not (math.isfinite(t) and 0.0 < t < 1.0):
        raise ThresholdError(
            f"gate threshold override {threshold!r} is out of range: use a value strictly between 0 and 1 "
            "(0.5 is the calibrated threshold; higher flags fewer frames)"
        )
    return t


def check_score(score: float, gate_id: str, what: str) -> float:
    """``score`` if finite, else :class:`GateScoreError`: a NaN never passes a frame as good."""
    if not math.isfinite(score):
        raise GateScoreError(
            f"gate {gate_id} returned a non-finite score ({score}) for {what}; the frame cannot be judged. "
            "Check the input (all-black, corrupt) and the gate graph"
        )
    return score


def anomalous_region(anomaly_map: np.ndarray, threshold: float, label: bool) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1; map pixels, x1/y1 exclusive) of the connected region holding the map's peak.

    The region is where the map exceeds ``threshold``; when a graph's pixel threshold differs from its image
    threshold (anomalib) and nothing exceeds it although the frame is anomalous, half the peak is used.
    ``None`` when the frame is not anomalous and no pixel exceeds the threshold.
    """
    peak = float(anomaly_map.max())
    if peak > threshold:
        level = threshold
    elif label and peak > 0:
        level = peak / 2
    else:
        return None
    mask = (anomaly_map > level).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    y, x = np.unravel_index(int(np.argmax(anomaly_map)), anomaly_map.shape)
    x0, y0, w, h = (int(v) for v in stats[labels[y, x], :4])
    return x0, y0, x0 + w, y0 + h


def box_to_frame(box: tuple[int, int, int, int], m: Affine, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Map a box (pixel edges) through the affine ``m`` (pixel centres, as OpenCV's warps) and clip it to the
    frame: the bounding box of its four mapped corners."""
    x0, y0, x1, y1 = (v - 0.5 for v in box)
    a = np.array(m, np.float64).reshape(2, 3)
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float64) @ a.T + 0.5
    w, h = frame_size
    lo = np.floor(corners.min(axis=0)).astype(int)
    hi = np.ceil(corners.max(axis=0)).astype(int)
    return max(0, int(lo[0])), max(0, int(lo[1])), min(w, max(int(hi[0]), 1)), min(h, max(int(hi[1]), 1))


def crop_region(
    rgb: np.ndarray, region: tuple[int, int, int, int], margin: float = 0.5, min_side: int = 96
) -> np.ndarray:
    """A copy of ``rgb`` around ``region`` (x0, y0, x1, y1): the box grown by ``margin`` × its longer side on
    every side, at least ``min_side`` pixels square where the frame allows, kept inside the frame.

    >>> crop = crop_region(frame, result.region)   # the close-up for "the description sees what the gate saw"
    """
    if rgb.ndim < 2 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageError(f"cannot crop an empty image of shape {rgb.shape}")
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = region
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ImageError(f"region {region} is not a non-empty box inside the {w}x{h} frame")
    grow = margin * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hw, hh = max((x1 - x0) / 2 + grow, min_side / 2), max((y1 - y0) / 2 + grow, min_side / 2)
    left, right = _span(cx - hw, cx + hw, w)
    top, bottom = _span(cy - hh, cy + hh, h)
    return rgb[top:bottom, left:right].copy()


def _span(lo: float, hi: float, size: int) -> tuple[int, int]:
    """[lo, hi) as integers, slid back inside [0, size) without shrinking unless the frame is too small."""
    length = min(size, round(hi - lo))
    start = min(max(0, round(lo)), size - length)
    return start, start + length


__all__ = [
    "DEFAULT_THRESHOLD",
    "GateResult",
    "SoundWindow",
    "anomalous_region",
    "box_to_frame",
    "check_score",
    "check_threshold",
    "crop_region",
]
