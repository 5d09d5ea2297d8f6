"""Set a gate's threshold from held-out good samples and a target false-alarm rate, and record the figures.

A gate's raw score is a maximum (over the pixels of a map, or a high quantile over the frames of a sound
window), so good scores have an extreme-value tail. The threshold is the larger of two estimates of the good
scores' (1 − rate) quantile: the empirical one (with n held-out samples it cannot resolve rates below 1/n; it
is then the largest held-out score) and the quantile of a Gumbel law fitted to them by moments, which
extrapolates into the tail a small held-out set cannot see. The estimated false-alarm rate at the threshold
is the fitted law's tail probability there.

Scores are then normalized as anomalib does, ``(raw − threshold) / span + 0.5``, clipped to [0, 1], with
``span = 2 (threshold − min held-out score)``: the lowest good sample maps to 0, the threshold to 0.5.

>>> cal = calibrate(held_out_raw_scores, target_false_alarm_rate=0.01)
>>> cal.normalize(raw_scores)          # 0.5 = the threshold
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge.errors import GateFitError, GateSchemaError
from edge.gate.params import params_from_dict

EULER_GAMMA = 0.5772156649015329


@dataclass(frozen=True)
class Calibration:
    """The threshold, the normalization it implies, and how they were obtained (all recorded in the manifest)."""

    threshold: float  # raw units
    span: float  # raw units between normalized 0.5 and 1.0, doubled
    target_false_alarm_rate: float
    method: str
    held_out: int
    empirical_quantile: float
    gumbel_quantile: float
    gumbel_location: float
    gumbel_scale: float
    estimated_false_alarm_rate: float
    held_out_false_alarms: int
    held_out_min: float
    held_out_median: float
    held_out_max: float

    def normalize(self, raw: np.ndarray | float) -> np.ndarray:
        """anomalib's normalization: ``clip((raw − threshold) / span + 0.5, 0, 1)``."""
        return np.clip((np.asarray(raw, np.float64) - self.threshold) / self.span + 0.5, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> Calibration:
        cal = params_from_dict(cls, d, f"{where}.calibration")
        if not (math.isfinite(cal.threshold) and math.isfinite(cal.span) and cal.span > 0):
            raise GateSchemaError(f"{where}.calibration: threshold and span must be finite, span positive")
        return cal


def calibrate(held_out: np.ndarray, target_false_alarm_rate: float, method: str = "held-out") -> Calibration:
    """Threshold and normalization from raw scores of good samples the model was not fitted on."""
    scores = np.asarray(held_out, np.float64).reshape(-1)
    if not 0.0 < target_false_alarm_rate < 0.5:
        raise GateFitError(f"target false-alarm rate {target_false_alarm_rate} must be in (0, 0.5), e.g. 0.01")
    if scores.size < 2:
        raise GateFitError(f"calibration needs at least 2 held-out good scores, got {scores.size}")
    if not np.isfinite(scores).all():
        raise GateFitError("calibration: a held-out good sample scored NaN or infinite; check the good set")
    q = 1.0 - target_false_alarm_rate
    empirical = float(np.quantile(scores, q, method="higher"))
    mean, std = float(scores.mean()), float(scores.std(ddof=1))
    scale = max(std * math.sqrt(6) / math.pi, 1e-9)
    location = mean - EULER_GAMMA * scale
    gumbel = location - scale * math.log(-math.log(q))
    threshold = max(empirical, gumbel)
    lowest = float(scores.min())
    span = max(2.0 * (threshold - lowest), 1e-6)
    return Calibration(
        threshold=threshold,
        span=span,
        target_false_alarm_rate=target_false_alarm_rate,
        method=method,
        held_out=int(scores.size),
        empirical_quantile=empirical,
        gumbel_quantile=gumbel,
        gumbel_location=location,
        gumbel_scale=scale,
        estimated_false_alarm_rate=1.0 - math.exp(-math.exp(-(threshold - location) / scale)),
        held_out_false_alarms=int((scores > threshold).sum()),
        held_out_min=lowest,
        held_out_median=float(np.median(scores)),
        held_out_max=float(scores.max()),
    )


def fold_indices(n: int, folds: int) -> list[np.ndarray]:
    """``folds`` contiguous, near-equal blocks of ``range(n)`` (neighbours in time stay in one fold)."""
    return [b for b in np.array_split(np.arange(n), min(folds, n)) if b.size]


__all__ = ["Calibration", "calibrate", "fold_indices"]
