"""anomalib's ONNX contract: hand-built graphs in it load and score (score [B], [B, 1], batch fixed at 2);
graphs that break it are refused at load with one line naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.errors import GateContractError, GateScoreError
from edge.gate.image_gate import ImageGate
from tests.gate.anomalib_graphs import anomalib_like, expected_score


def _frames(n: int, size: tuple[int, int] = (64, 64), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def _gate(path: Path, size: tuple[int, int] = (64, 64)) -> ImageGate:
    return ImageGate(path, gate_id="test", input_size=size)


@pytest.mark.parametrize(("batch", "score_2d"), [(None, False), (None, True), (2, False), (2, True)])
def test_contract_graphs_score_every_frame(tmp_path: Path, batch: int | None, score_2d: bool) -> None:
    gate = _gate(anomalib_like(tmp_path / "model.onnx", batch=batch, score_2d=score_2d))
    assert gate.batch == batch
    frames = _frames(5)
    results = gate.score_batch(frames)  # 5 frames through a batch-2 graph: 2 + 2 + 1 padded
    assert [r.score for r in results] == pytest.approx([expected_score(f) for f in frames], abs=1e-6)
    assert all(r.label == (r.score > 0.5) for r in results)
    assert results[0].anomaly_map is not None and results[0].anomaly_map.shape == (64, 64)
    single = gate.score(frames[3])
    assert single.score == pytest.approx(results[3].score, abs=1e-7)


def test_padding_does_not_leak_between_frames(tmp_path: Path) -> None:
    gate = _gate(anomalib_like(tmp_path / "model.onnx", batch=2))
    calm = np.full((64, 64, 3), 128, np.uint8)
    loud = calm.copy()
    loud[10:20, 10:20] = 255
    a, b, c = gate.score_batch([calm, loud, calm])
    assert a.score == pytest.approx(c.score) and b.score > a.score
    assert not a.label and b.label


def test_frames_of_another_size_are_resized_and_regions_map_back(tmp_path: Path) -> None:
    gate = _gate(anomalib_like(tmp_path / "model.onnx"))
    frame = np.full((480, 640, 3), 128, np.uint8)
    frame[200:280, 300:380] = 255  # a bright square: 80 px at 640 → 8 px at 64
    r = gate.score(frame)
    assert r.label and r.region is not None
    x0, y0, x1, y1 = r.region
    assert abs(x0 - 300) <= 10 and abs(y0 - 200) <= 10 and abs(x1 - 380) <= 10 and abs(y1 - 280) <= 10
    frame_map = r.map_in_frame((640, 480))
    assert frame_map is not None and frame_map.shape == (480, 640)
    assert frame_map[240, 340] > 0.5 > frame_map[50, 50]


@pytest.mark.parametrize(
    ("break_", "named"),
    [
        ("missing_output", "output 'pred_mask' is missing"),
        ("label_float", "output 'pred_label' is tensor(float), the contract needs tensor(bool)"),
        ("map_rank3", "output 'anomaly_map' has rank 3, the contract needs 4"),
        ("order", "output 0 is 'anomaly_map', the contract puts 'pred_score' there"),
        ("input_name", "inputs are ['image']"),
        ("input_rank", "input 'input' has rank 3"),
        ("map_shape_lies", "anomaly_map came back with shape (64, 64)"),
    ],
)
def test_broken_graphs_are_refused_at_load_in_one_line(tmp_path: Path, break_: str, named: str) -> None:
    path = anomalib_like(tmp_path / "model.onnx", break_=break_)
    with pytest.raises(GateContractError) as err:
        _gate(path)
    assert named in str(err.value)
    assert "\n" not in str(err.value)


def test_not_an_onnx_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a graph")
    with pytest.raises(GateContractError, match="onnxruntime cannot load it"):
        _gate(path)


def test_fixed_input_size_must_match(tmp_path: Path) -> None:
    from edge.errors import GateError

    with pytest.raises(GateError, match="input height is 64, the manifest says 32"):
        _gate(anomalib_like(tmp_path / "model.onnx"), size=(32, 64))


def test_nan_score_is_a_gate_score_error(tmp_path: Path) -> None:
    gate = _gate(anomalib_like(tmp_path / "model.onnx", break_="nan"))
    with pytest.raises(GateScoreError, match="non-finite score"):
        gate.score(_frames(1)[0])
