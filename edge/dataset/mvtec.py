"""Read an inspection data set in the MVTec AD layout (ours, or a customer's own), plus our sound layout.

Images: ``test/<kind>/<name>.<ext>`` with ``kind`` ``good`` or a defect kind, and the defect's pixels in
``ground_truth/<kind>/<name>_mask.png`` (missing masks are allowed: pixel metrics then skip that image).
Sound: ``sound/test/<kind>/<name>.wav`` and ``sound/ground_truth/<kind>/<name>.json`` holding
``{"intervals": [[start_s, end_s], ...]}``; a defective clip without one counts as anomalous throughout.

>>> images = labeled_images(Path("DATA"))
>>> [(i.kind, i.mask is not None) for i in images[:3]]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class LabeledImage:
    """One test frame: its file, ``"good"`` or its defect kind, and its ground-truth mask if there is one."""

    path: Path
    kind: str
    mask: Path | None


@dataclass(frozen=True)
class LabeledClip:
    """One test recording, its kind, and where the anomaly sounds (``None``: throughout)."""

    path: Path
    kind: str
    intervals: tuple[tuple[float, float], ...] | None


def labeled_images(root: Path) -> list[LabeledImage]:
    """Every test image under ``root/test``, good ones first, then by kind and name."""
    kinds = _kinds(root / "test", "image")
    out = []
    for kind in kinds:
        for path in sorted(p for p in (root / "test" / kind).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            mask = root / "ground_truth" / kind / f"{path.stem}_mask.png"
            out.append(LabeledImage(path, kind, mask if kind != "good" and mask.is_file() else None))
    return out


def labeled_clips(root: Path) -> list[LabeledClip]:
    """Every test recording under ``root/sound/test``, good ones first."""
    kinds = _kinds(root / "sound" / "test", "sound")
    out = []
    for kind in kinds:
        for path in sorted((root / "sound" / "test" / kind).glob("*.wav")):
            truth = root / "sound" / "ground_truth" / kind / f"{path.stem}.json"
            intervals: tuple[tuple[float, float], ...] | None = () if kind == "good" else None
            if kind != "good" and truth.is_file():
                try:
                    spans = json.loads(truth.read_text(encoding="utf-8"))["intervals"]
                    intervals = tuple((float(a), float(b)) for a, b in spans)
                except (ValueError, KeyError, TypeError) as exc:
                    raise ConfigError(f'{truth}: expected {{"intervals": [[start_s, end_s], ...]}} ({exc})') from None
            out.append(LabeledClip(path, kind, intervals))
    return out


def _kinds(folder: Path, what: str) -> list[str]:
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no {what} test folder (the MVTec AD layout has test/good/ and test/<defect>/)")
    kinds = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if "good" not in kinds:
        raise ConfigError(f"{folder}: no good/ folder; the false-alarm rate needs good test samples")
    if len(kinds) < 2:
        raise ConfigError(f"{folder}: only good/ samples; AUROC needs at least one defect folder")
    return ["good"] + [k for k in kinds if k != "good"]


__all__ = ["LabeledClip", "LabeledImage", "labeled_clips", "labeled_images"]
