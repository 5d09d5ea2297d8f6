"""Fit an image gate: the variation model from good frames, calibrated by k-fold cross-scoring, and the pieces
any image gate may carry (the pre-step's reference image, a few good reference frames for k-shot prompts).

>>> section = fit_variation_gate(paths, out, ImageFitOptions())   # writes image.onnx, reference.png, references/
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import GateFitError
from edge.gate.calibration import Calibration, calibrate, fold_indices
from edge.gate.contract import GraphContract
from edge.gate.good_set import read_images
from edge.gate.prestep import Prestep, PrestepParams
from edge.gate.session import open_session
from edge.gate.variation import VariationParams, fit_variation
from edge.gate.variation_graph import Normalization, variation_model

log = logging.getLogger(__name__)

MIN_GOOD_IMAGES = 8
REFERENCE_NAME = "reference.png"
REFERENCE_SIDE = 512


@dataclass(frozen=True)
class ImageFitOptions:
    """How ``edge gate fit`` builds an image gate."""

    width: int = 256
    prestep: PrestepParams | None = field(default_factory=PrestepParams)
    variation: VariationParams = field(default_factory=VariationParams)
    target_false_alarm_rate: float = 0.01
    folds: int = 5
    references: int = 4


def fit_variation_gate(paths: list[Path], out: Path, options: ImageFitOptions) -> dict[str, Any]:
    """Write ``image.onnx`` (and the pre-step reference, and reference frames) to ``out``; returns the manifest
    section."""
    if len(paths) < MIN_GOOD_IMAGES:
        raise GateFitError(
            f"the variation model needs at least {MIN_GOOD_IMAGES} good images, got {len(paths)}: it measures "
            f"each pixel's spread over several good frames and calibrates its threshold on frames held out from "
            "them. 50 or more give a dependable threshold"
        )
    frames, (w, h) = read_images(paths, options.width)
    prestep = build_prestep(frames, options.prestep)
    aligned, observed = _align_all(prestep, frames)
    folds = fold_indices(len(aligned), options.folds)
    held_out = np.empty(len(aligned))
    for fold in folds:
        rest = np.setdiff1d(np.arange(len(aligned)), fold)
        stats = fit_variation(aligned[rest], options.variation, observed)
        session = open_session(variation_model(stats, None).SerializeToString(), where="calibration graph")
        held_out[fold] = session.run(["pred_score"], {"input": aligned[fold].transpose(0, 3, 1, 2)})[0]
    cal = calibrate(
        held_out,
        options.target_false_alarm_rate,
        f"{len(folds)}-fold cross-calibration: each good image scored by a model fitted without it",
    )
    log.info("image gate: threshold %.3f (raw deviation) from %d held-out good images", cal.threshold, cal.held_out)
    model = variation_model(fit_variation(aligned, options.variation, observed), Normalization(cal.threshold, cal.span))
    (out / "image.onnx").write_bytes(model.SerializeToString())
    section = image_section(
        "variation_model", GraphContract(None, h, w), (h, w), prestep, out, cal, 0.5, paths, options.references
    )
    section["model"] = {**options.variation.to_dict(), "unobserved_pixels": int((~observed).sum())}
    return section


def build_prestep(frames: list[np.ndarray], params: PrestepParams | None) -> Prestep | None:
    """The pre-step with its reference: the mean of the good frames registered to their median, twice over."""
    if params is None or not (params.register or params.illumination):
        return None
    reference = np.median(np.stack(frames), axis=0).astype(np.uint8)
    if params.register:
        align_only = replace(params, illumination=False)
        for _ in range(2):
            pre = Prestep(reference, align_only)
            reference = np.clip(np.mean([pre.apply(f)[0] for f in frames], axis=0) * 255 + 0.5, 0, 255).astype(np.uint8)
    return Prestep(reference, params)


def image_section(
    source: str,
    contract: GraphContract,
    input_size: tuple[int, int],
    prestep: Prestep | None,
    out: Path,
    calibration: Calibration | None,
    score_knot: float,
    paths: list[Path],
    references: int,
) -> dict[str, Any]:
    """The manifest's ``image`` section; writes the pre-step reference and the k-shot reference frames."""
    prestep_entry = None
    if prestep is not None:
        cv2.imwrite(str(out / REFERENCE_NAME), cv2.cvtColor(prestep.reference, cv2.COLOR_RGB2BGR))
        prestep_entry = {**prestep.params.to_dict(), "reference": REFERENCE_NAME}
    return {
        "graph": "image.onnx",
        "source": source,
        "io": contract.io(),
        "input_size": list(input_size),
        "batch": contract.batch,
        "prestep": prestep_entry,
        "score_knot": score_knot,
        "calibration": calibration.to_dict() if calibration else None,
        "references": write_references(paths, out, references),
    }


def write_references(paths: list[Path], out: Path, k: int) -> list[str]:
    """Store ``k`` good frames spread over the set, longest side at most 512 px, as JPEG; returns their names."""
    if k <= 0 or not paths:
        return []
    chosen = [paths[round(i)] for i in np.linspace(0, len(paths) - 1, min(k, len(paths)))]
    (out / "references").mkdir(exist_ok=True)
    names = []
    for i, path in enumerate(chosen):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise GateFitError(f"{path}: cannot read this good image")
        scale = min(1.0, REFERENCE_SIDE / max(bgr.shape[:2]))
        if scale < 1.0:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        name = f"references/{i:02d}.jpg"
        cv2.imwrite(str(out / name), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
        names.append(name)
    return names


def _align_all(prestep: Prestep | None, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The good frames after the pre-step, and the pixels all of them observed: a registered frame's border
    pixels come from outside the camera's view (the warp replicates the edge), so they carry no information."""
    h, w = frames[0].shape[:2]
    if prestep is None:
        return np.stack([f.astype(np.float32) * np.float32(1 / 255) for f in frames]), np.ones((h, w), bool)
    aligned, observed = [], np.ones((h, w), bool)
    inside = np.ones((h, w), np.uint8)
    for frame in frames:
        a, m = prestep.apply(frame)
        aligned.append(a)
        if prestep.params.register:
            seen = cv2.warpAffine(inside, m, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0)
            observed &= seen > 0
    margin = cv2.erode(observed.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=0)
    return np.stack(aligned), margin > 0


__all__ = [
    "MIN_GOOD_IMAGES",
    "REFERENCE_NAME",
    "ImageFitOptions",
    "build_prestep",
    "fit_variation_gate",
    "image_section",
    "write_references",
]
