"""Wrap an anomalib ONNX export (``model.onnx``) into a gate folder: contract check, optional pre-step and
calibration on the station's good frames, reference frames, hashes.

anomalib freezes its threshold in the graph (normalized 0.5). Calibrating on good frames the model was not
trained on finds the normalized score that gives the target false-alarm rate on *this* station; the gate then
maps that score to 0.5 (``score_knot``), so the threshold semantics stay those of the contract.

>>> section = wrap_anomalib(Path("model.onnx"), out, good_paths, AnomalibOptions())
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import GateError, GateFitError
from edge.gate.calibration import calibrate
from edge.gate.contract import check_contract
from edge.gate.good_set import read_images
from edge.gate.image_fit import MIN_GOOD_IMAGES, build_prestep, image_section
from edge.gate.image_gate import ImageGate
from edge.gate.prestep import PrestepParams
from edge.gate.session import open_session

log = logging.getLogger(__name__)

DEFAULT_DYNAMIC_SIZE = (256, 256)
KNOT_RANGE = (0.02, 0.98)


@dataclass(frozen=True)
class AnomalibOptions:
    """``input_size`` (h, w) is required only for graphs with a dynamic H×W; the pre-step needs good frames."""

    input_size: tuple[int, int] | None = None
    prestep: PrestepParams | None = None
    target_false_alarm_rate: float = 0.01
    references: int = 4


def wrap_anomalib(model: Path, out: Path, good: list[Path] | None, options: AnomalibOptions) -> dict[str, Any]:
    """Copy ``model`` (and its external data) to ``out/image.onnx``; returns the manifest's ``image`` section."""
    if not model.is_file():
        raise GateFitError(f"{model}: no such anomalib model file")
    contract = check_contract(open_session(model, where=str(model)), str(model))
    fixed = (contract.height, contract.width)
    if None not in fixed and options.input_size not in (None, fixed):
        raise GateFitError(f"{model}: the graph's input is fixed at {fixed[0]}x{fixed[1]} (HxW); drop --input-size")
    input_size: tuple[int, int] = fixed if None not in fixed else (options.input_size or DEFAULT_DYNAMIC_SIZE)  # type: ignore[assignment]
    if None in fixed and options.input_size is None:
        log.warning("%s: dynamic input size; frames are scored at %dx%d (HxW): set --input-size", model, *input_size)
    external = _copy_graph(model, out)
    if options.prestep is not None and not good:
        raise GateFitError("the registration/illumination pre-step needs good images (--good DIR) for its reference")
    prestep, cal, knot = None, None, 0.5
    if good:
        if len(good) < MIN_GOOD_IMAGES:
            raise GateFitError(f"calibrating needs at least {MIN_GOOD_IMAGES} good images, got {len(good)}")
        frames, _ = read_images(good, input_size[1], input_size[0])
        prestep = build_prestep(frames, options.prestep)
        gate = ImageGate(out / "image.onnx", gate_id="calibration", input_size=input_size, prestep=prestep)
        scores = np.array([r.score for r in gate.score_batch(frames)])
        cal = calibrate(
            scores,
            options.target_false_alarm_rate,
            f"held-out: {len(frames)} good images scored by the anomalib graph (normalized graph scores)",
        )
        knot = float(np.clip(cal.threshold, *KNOT_RANGE))
        if knot != cal.threshold:
            log.warning(
                "the calibrated threshold %.3f is outside the graph's useful range; using %.2f. The model does "
                "not separate this station's good frames well: retrain it on them",
                cal.threshold,
                knot,
            )
    section = image_section("anomalib", contract, input_size, prestep, out, cal, knot, good or [], options.references)
    section["external_data"] = external
    return section


def _copy_graph(model: Path, out: Path) -> list[str]:
    """Copy the graph as ``image.onnx`` and each external-data file it names, keeping their names."""
    import onnx

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others without a common base
        raise GateError(f"{model}: not a readable ONNX file ({exc})") from None
    names = sorted({e.value for t in _tensors(proto.graph) for e in t.external_data if e.key == "location"})
    shutil.copyfile(model, out / "image.onnx")
    for name in names:
        src = model.parent / name
        if not src.is_file() or Path(name).is_absolute() or ".." in Path(name).parts:
            raise GateFitError(f"{model}: its external data file {name!r} is missing or outside the model's folder")
        shutil.copyfile(src, out / name)
    return names


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor a graph holds: initializers, and constants and subgraphs in node attributes."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


__all__ = ["AnomalibOptions", "wrap_anomalib"]
