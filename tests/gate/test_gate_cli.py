"""``edge fixture dataset``, ``edge gate fit|verify|eval`` through the real console entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli.main import main


def test_fit_verify_eval(tmp_path: Path, small_dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = tmp_path / "gate"
    good, sound = small_dataset / "train/good", small_dataset / "sound/train/good"
    assert main(["gate", "fit", str(gate), "--good", str(good), "--sound-good", str(sound), "--references", "2"]) == 0
    out = capsys.readouterr().out
    assert "image (variation_model, 256x192, threshold calibrated on 14 held-out good) + sound" in out
    assert main(["gate", "verify", str(gate)]) == 0
    assert "OK — gate" in capsys.readouterr().out
    report = tmp_path / "eval.json"
    assert main(["gate", "eval", str(gate), str(small_dataset), "--json", str(report)]) == 0
    table = capsys.readouterr().out
    assert "image AUROC" in table and "targets (issue 11):" in table and "1920x1080" in table
    result = json.loads(report.read_text())
    assert set(result) == {"gate", "data", "image", "sound", "latency", "targets"}
    assert set(result["targets"]) == {
        "image_auroc",
        "image_false_alarm_rate",
        "sound_auroc",
        "gate_latency_ms",
        "hd_5fps_ms",
    }
    for target in result["targets"].values():
        assert set(target) == {"value", "target", "met", "what"} and target["met"] in (True, False)
    image = result["image"]
    assert {"image_auroc", "pixel_auroc", "f1", "false_alarm_rate", "recall", "per_kind", "threshold"} <= set(image)
    assert image["good"] == 6 and image["defective"] == 12 and image["threshold"] == 0.5
    assert 0.9 <= image["image_auroc"] <= 1.0 and 0.5 < image["pixel_auroc"] <= 1.0
    assert {"auroc", "false_alarm_rate", "normal_windows", "anomalous_windows", "per_kind"} <= set(result["sound"])
    latency = result["latency"]
    assert latency["working_size"] == [256, 192] and latency["frame_size"] == [320, 240]
    for key in ("score", "prestep", "decode", "jpeg_to_score", "hd_jpeg_to_score", "sound_window"):
        assert latency[key]["cpu_ms"] > 0 and latency[key]["wall_ms"] > 0
    assert result["targets"]["gate_latency_ms"]["value"] == latency["score"]["cpu_ms"]


def test_eval_at_another_threshold_without_latency(
    tmp_path: Path, small_dataset: Path, fitted_gate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "eval.json"
    code = main(["gate", "eval", str(fitted_gate), str(small_dataset), "--threshold", "0.9", "--no-latency"])
    assert code == 0
    assert "threshold 0.90" in capsys.readouterr().out
    assert main(["gate", "eval", str(fitted_gate), str(small_dataset), "--no-latency", "--json", str(report)]) == 0
    assert json.loads(report.read_text())["targets"]["gate_latency_ms"]["met"] is None


def test_errors_are_one_line_with_exit_codes(
    tmp_path: Path, small_dataset: Path, fitted_gate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    few = tmp_path / "few"
    few.mkdir()
    (few / "a.png").write_bytes((small_dataset / "train/good/000.png").read_bytes())
    assert main(["gate", "fit", str(tmp_path / "g"), "--good", str(few)]) == 9
    err = capsys.readouterr().err
    assert "edge gate: error: the variation model needs at least 8 good images, got 1" in err
    assert main(["gate", "fit", str(tmp_path / "g")]) == 9
    assert "nothing to fit" in capsys.readouterr().err
    assert main(["gate", "eval", str(fitted_gate), str(small_dataset), "--threshold", "1.5", "--no-latency"]) == 6
    assert "out of range" in capsys.readouterr().err
    assert main(["gate", "verify", str(tmp_path / "nowhere")]) == 9
    assert "no gate here" in capsys.readouterr().err
    assert main(["gate", "eval", str(fitted_gate), str(tmp_path)]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    assert main(["gate", "fit", str(tmp_path / "g"), "--anomalib", "x.onnx", "--input-size", "big"]) == 2
    assert "expected HxW" in capsys.readouterr().err


def test_fixture_dataset_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fixture", "dataset", "--small", "--seed", "3", str(tmp_path / "data")]) == 0
    assert "32 frames (320x240)" in capsys.readouterr().out
    assert json.loads((tmp_path / "data/dataset.json").read_text())["seed"] == 3


def test_prestep_flags(tmp_path: Path, small_dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = str(small_dataset / "train/good")
    assert main(["gate", "fit", str(tmp_path / "a"), "--good", good, "--no-register", "--width", "128"]) == 0
    manifest = json.loads((tmp_path / "a/manifest.json").read_text())["image"]
    assert manifest["prestep"]["register"] is False and manifest["prestep"]["illumination"] is True
    assert manifest["input_size"] == [96, 128]
    args = ["--no-register", "--no-illumination", "--target-far", "0.05", "--references", "0"]
    assert main(["gate", "fit", str(tmp_path / "b"), "--good", good, *args]) == 0
    manifest = json.loads((tmp_path / "b/manifest.json").read_text())["image"]
    assert manifest["prestep"] is None and manifest["references"] == []
    assert manifest["calibration"]["target_false_alarm_rate"] == 0.05
    capsys.readouterr()
