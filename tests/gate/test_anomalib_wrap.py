"""``edge gate fit --anomalib``: an anomalib export becomes a gate folder, optionally recalibrated on good frames."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import GateContractError, GateFitError
from edge.gate import load_gate
from edge.gate.anomalib_wrap import AnomalibOptions
from edge.gate.fit import GateFitRequest, fit_gate
from edge.gate.manifest import verify_gate
from edge.gate.prestep import PrestepParams
from tests.gate.anomalib_graphs import anomalib_like, expected_score


def _wrap(tmp_path: Path, model: Path, good: Path | None = None, **options: object) -> Path:
    out = tmp_path / "gate"
    fit_gate(out, GateFitRequest(good_images=good, anomalib_model=model, anomalib=AnomalibOptions(**options)))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize(("batch", "score_2d"), [(None, False), (None, True), (2, False)])
def test_wrap_without_calibration(tmp_path: Path, batch: int | None, score_2d: bool) -> None:
    out = _wrap(tmp_path, anomalib_like(tmp_path / "model.onnx", batch=batch, score_2d=score_2d))
    m = verify_gate(out)
    assert m.image is not None and m.image["source"] == "anomalib" and m.image["batch"] == batch
    assert m.image["calibration"] is None and m.image["score_knot"] == 0.5 and m.image["references"] == []
    assert m.image["io"]["outputs"][0] == {"name": "pred_score", "dtype": "float32"}
    gate = load_gate(out)
    assert gate.image is not None
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert gate.image.score(frame).score == pytest.approx(expected_score(frame), abs=1e-6)


def test_wrap_with_calibration_on_good_frames(tmp_path: Path, small_dataset: Path) -> None:
    """The graph's frozen threshold flags this station's good frames; calibration moves the 0.5 to where the
    target false-alarm rate puts it, without re-exporting the graph."""
    model = anomalib_like(tmp_path / "model.onnx", threshold=0.3, span=1.0)
    good = small_dataset / "train" / "good"
    frames = [np.ascontiguousarray(cv2.imread(str(p))[:, :, ::-1]) for p in sorted(good.glob("*.png"))]
    uncalibrated = load_gate(_wrap(tmp_path / "a", model)).image
    assert uncalibrated is not None
    raw = [uncalibrated.score(f).score for f in frames]
    assert max(raw) > 0.5  # anomalib's frozen threshold: false alarms on good parts here
    out = _wrap(tmp_path / "b", model, good, references=2)
    m = verify_gate(out)
    assert m.image is not None
    cal = m.image["calibration"]
    assert cal["held_out"] == 14 and m.image["score_knot"] == pytest.approx(cal["threshold"])
    assert len(m.image["references"]) == 2 and m.image["good_set"]["count"] == 14
    gate = load_gate(out).image
    assert gate is not None
    calibrated = [gate.score(f) for f in frames]
    assert not any(r.label for r in calibrated)
    order = np.argsort(raw)
    assert np.all(np.diff(np.array([r.score for r in calibrated])[order]) >= 0)  # the remap keeps the order


def test_wrap_with_prestep(tmp_path: Path, small_dataset: Path) -> None:
    model = anomalib_like(tmp_path / "model.onnx", threshold=0.3, span=1.0)
    out = _wrap(tmp_path, model, small_dataset / "train/good", prestep=PrestepParams())
    m = verify_gate(out)
    assert m.image is not None and m.image["prestep"]["reference"] == "reference.png"
    gate = load_gate(out).image
    assert gate is not None and gate.prestep is not None and gate.prestep.size == (64, 64)
    with pytest.raises(GateFitError, match="needs good images"):
        _wrap(tmp_path / "x", model, None, prestep=PrestepParams())


def test_dynamic_size_and_external_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = anomalib_like(tmp_path / "model.onnx", dynamic_size=True, external_data=True)
    with caplog.at_level(logging.WARNING):
        out = _wrap(tmp_path / "a", model)
    assert "dynamic input size; frames are scored at 256x256" in caplog.text
    m = verify_gate(out)
    assert m.image is not None and m.image["input_size"] == [256, 256]
    assert m.image["external_data"] == ["model.onnx.data"] and "model.onnx.data" in m.files
    out = _wrap(tmp_path / "b", model, input_size=(96, 128))
    gate = load_gate(out).image
    assert gate is not None and gate.input_size == (96, 128)
    assert gate.score(np.zeros((480, 640, 3), np.uint8)).anomaly_map.shape == (96, 128)  # type: ignore[union-attr]
    with pytest.raises(GateFitError, match="fixed at 64x64"):
        _wrap(tmp_path / "c", anomalib_like(tmp_path / "fixed.onnx"), input_size=(96, 128))


def test_broken_anomalib_graph_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GateContractError, match="output 'pred_mask' is missing"):
        _wrap(tmp_path, anomalib_like(tmp_path / "model.onnx", break_="missing_output"))
    with pytest.raises(GateFitError, match="no such anomalib model file"):
        _wrap(tmp_path, tmp_path / "nothing.onnx")
    assert not (tmp_path / "gate").exists()
