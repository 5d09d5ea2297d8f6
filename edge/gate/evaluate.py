"""``edge gate eval``: how well a gate separates good from defective on an MVTec-layout data set.

Image: image AUROC, pixel AUROC (the anomaly map resampled onto each frame at the gate's working size, against
the ground-truth masks), F1 and the false-alarm rate on good frames at the threshold, and AUROC and recall per
defect kind. Sound: AUROC and false-alarm rate per window; a window counts as anomalous when at least half of
it overlaps a ground-truth interval, as normal when it overlaps none, and is left out otherwise.

>>> report = evaluate_image(gate.image, labeled_images(Path("DATA")))
>>> report.image_auroc, report.false_alarm_rate
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edge.dataset.mvtec import LabeledClip, LabeledImage
from edge.errors import ConfigError
from edge.gate.image_gate import ImageGate
from edge.gate.metrics import auroc, f1_at, false_alarm_rate
from edge.gate.result import check_threshold
from edge.gate.sound_gate import SoundGate
from edge.runtime.audio import AudioLimits, load_wav
from edge.runtime.image import decode_image


@dataclass(frozen=True)
class ImageReport:
    """Image gate figures at one threshold (normalized; 0.5 = calibrated)."""

    threshold: float
    good: int
    defective: int
    image_auroc: float
    pixel_auroc: float
    f1: float
    false_alarm_rate: float
    recall: float
    per_kind: dict[str, dict[str, float]]  # kind → {"count", "auroc", "recall"}


@dataclass(frozen=True)
class SoundReport:
    """Sound gate figures per window at one threshold."""

    threshold: float
    normal_windows: int
    anomalous_windows: int
    ignored_windows: int
    auroc: float
    false_alarm_rate: float
    recall: float
    per_kind: dict[str, dict[str, float]]


def evaluate_image(gate: ImageGate, images: list[LabeledImage], threshold: float | None = None) -> ImageReport:
    """Score every test image with ``gate`` and compute the image and pixel metrics."""
    t = check_threshold(threshold)
    scores, kinds, pixel_scores, pixel_truth = [], [], [], []
    h, w = gate.input_size
    for item in images:
        try:
            rgb = decode_image(item.path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"{item.path}: cannot read the test image ({exc.strerror})") from None
        r = gate.score(rgb, t)
        scores.append(r.score)
        kinds.append(item.kind)
        truth = _mask(item, (w, h))
        frame_map = r.map_in_frame((rgb.shape[1], rgb.shape[0]), (w, h))
        if truth is not None and frame_map is not None:
            pixel_scores.append(frame_map.reshape(-1))
            pixel_truth.append(truth.reshape(-1))
    s, y = np.array(scores), np.array([k != "good" for k in kinds])
    per_kind = {}
    for kind in sorted(set(kinds) - {"good"}):
        sel = np.array([k in ("good", kind) for k in kinds])
        mine = np.array([k == kind for k in kinds])
        per_kind[kind] = {"count": int(mine.sum()), "auroc": auroc(s[sel], y[sel]), "recall": _share(s[mine] > t)}
    pixel = auroc(np.concatenate(pixel_scores), np.concatenate(pixel_truth)) if pixel_scores else float("nan")
    return ImageReport(
        threshold=t,
        good=int((~y).sum()),
        defective=int(y.sum()),
        image_auroc=auroc(s, y),
        pixel_auroc=pixel,
        f1=f1_at(s, y, t),
        false_alarm_rate=false_alarm_rate(s, y, t),
        recall=float((s[y] > t).mean()) if y.any() else float("nan"),
        per_kind=per_kind,
    )


def evaluate_sound(gate: SoundGate, clips: list[LabeledClip], threshold: float | None = None) -> SoundReport:
    """Score every window of every test clip and compute the per-window metrics."""
    t = check_threshold(threshold)
    scores, labels, kinds, ignored = [], [], [], 0
    for clip in clips:
        try:
            wave = load_wav(clip.path, AudioLimits(max_seconds=30.0))
        except OSError as exc:  # pragma: no cover - load_wav translates read errors
            raise ConfigError(f"{clip.path}: cannot read ({exc})") from None
        for window in gate.score(wave, t):
            overlap = _overlap(window.start_s, window.end_s, clip.intervals)
            if overlap == 0.0:
                label = False
            elif overlap >= 0.5 * (window.end_s - window.start_s):
                label = True
            else:
                ignored += 1
                continue
            scores.append(window.result.score)
            labels.append(label)
            kinds.append(clip.kind)
    s, y = np.array(scores), np.array(labels, bool)
    per_kind = {}
    for kind in sorted(set(kinds) - {"good"}):
        mine = np.array([k == kind for k in kinds]) & y
        sel = mine | ~y
        per_kind[kind] = {"windows": int(mine.sum()), "auroc": auroc(s[sel], y[sel]), "recall": _share(s[mine] > t)}
    return SoundReport(
        threshold=t,
        normal_windows=int((~y).sum()),
        anomalous_windows=int(y.sum()),
        ignored_windows=ignored,
        auroc=auroc(s, y),
        false_alarm_rate=false_alarm_rate(s, y, t),
        recall=_share(s[y] > t),
        per_kind=per_kind,
    )


def _mask(item: LabeledImage, size: tuple[int, int]) -> np.ndarray | None:
    """The ground truth at ``size`` (w, h) as bool; all False for good frames; None when a defect has no mask."""
    if item.kind == "good":
        return np.zeros((size[1], size[0]), bool)
    if item.mask is None:
        return None
    m = cv2.imread(str(item.mask), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise ConfigError(f"{item.mask}: cannot read the ground-truth mask")
    return cv2.resize(m, size, interpolation=cv2.INTER_AREA) > 127


def _overlap(a: float, b: float, intervals: tuple[tuple[float, float], ...] | None) -> float:
    if intervals is None:
        return b - a
    return sum(max(0.0, min(b, e) - max(a, s)) for s, e in intervals)


def _share(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else float("nan")


def report_dict(report: ImageReport | SoundReport) -> dict[str, Any]:
    """The report as JSON-ready data (NaN becomes null)."""
    return _json_safe(report.__dict__)


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


__all__ = ["ImageReport", "SoundReport", "evaluate_image", "evaluate_sound", "report_dict"]
