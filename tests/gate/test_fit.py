"""``fit_gate`` on the generated set: fit → verify → load → score, the pre-step's effect, and bad good sets."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.dataset.mvtec import labeled_images
from edge.errors import GateFitError, ImageError, ThresholdError
from edge.gate import crop_region, load_gate
from edge.gate.evaluate import evaluate_image
from edge.gate.fit import GateFitRequest, fit_gate
from edge.gate.image_fit import ImageFitOptions
from edge.gate.manifest import verify_gate


def _rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


def test_fit_verify_score(fitted_gate: Path, small_dataset: Path) -> None:
    manifest = verify_gate(fitted_gate)
    image = manifest.image
    assert image is not None and manifest.sound is not None
    assert image["source"] == "variation_model" and image["prestep"]["name"] == "register_illumination"
    assert image["calibration"]["held_out"] == 14 and image["calibration"]["held_out_false_alarms"] == 0
    assert image["good_set"]["count"] == 14 and len(image["good_set"]["sha256"]) == 64
    assert sorted(manifest.files) == sorted(
        ["image.onnx", "reference.png", "sound.npz", *(f"references/{i:02d}.jpg" for i in range(4))]
    )
    gate = load_gate(fitted_gate)
    assert gate.image is not None and gate.gate_id == manifest.gate_id
    good = [gate.image.score(_rgb(p)) for p in sorted((small_dataset / "test/good").glob("*.png"))]
    assert not any(r.label for r in good) and all(r.region is None for r in good)
    missing = gate.image.score(_rgb(small_dataset / "test/missing_feature/000.png"))
    assert missing.label and missing.score > 0.9 and missing.threshold == 0.5
    assert missing.anomaly_map is not None and missing.anomaly_map.shape == (192, 256)
    assert missing.latency_s > 0 and missing.gate_id == gate.gate_id


def test_region_lands_on_the_defect_in_frame_pixels(fitted_gate: Path, small_dataset: Path) -> None:
    gate = load_gate(fitted_gate)
    assert gate.image is not None
    hits = 0
    for item in labeled_images(small_dataset):
        if item.kind == "good" or item.mask is None:
            continue
        r = gate.image.score(_rgb(item.path))
        if not r.label:
            continue
        assert r.region is not None
        x0, y0, x1, y1 = r.region
        mask = cv2.imread(str(item.mask), cv2.IMREAD_GRAYSCALE) > 0
        hits += bool(mask[y0:y1, x0:x1].any())
        crop = crop_region(_rgb(item.path), r.region)
        assert crop.shape[0] >= min(96, 240) and crop.shape[1] >= 96
    assert hits >= 8  # of the 12 defective frames, the flagged ones point at their defect


def test_prestep_is_what_makes_thin_defects_visible(tmp_path: Path, fitted_gate: Path, small_dataset: Path) -> None:
    """The measurement behind the pre-step: without registration and illumination normalization, pose and
    lighting noise swamp the per-pixel model and the image AUROC falls towards chance."""
    bare = fit_gate(
        tmp_path / "bare",
        GateFitRequest(good_images=small_dataset / "train/good", image=ImageFitOptions(prestep=None)),
    )
    assert bare.image is not None and bare.image["prestep"] is None
    with_pre, without = load_gate(fitted_gate).image, load_gate(tmp_path / "bare").image
    assert with_pre is not None and without is not None
    images = labeled_images(small_dataset)
    full, none = evaluate_image(with_pre, images), evaluate_image(without, images)
    assert full.image_auroc >= 0.95 and full.false_alarm_rate == 0.0
    assert none.image_auroc < full.image_auroc - 0.25
    assert none.per_kind["scratch"]["auroc"] < full.per_kind["scratch"]["auroc"]


def test_threshold_override(fitted_gate: Path, small_dataset: Path) -> None:
    gate = load_gate(fitted_gate)
    assert gate.image is not None
    frames = [_rgb(i.path) for i in labeled_images(small_dataset)]
    scored = [(gate.image.score(f).score, f) for f in frames]
    score, frame = min(((s, f) for s, f in scored if 0.5 < s < 1.0), key=lambda sf: sf[0])  # flagged, unsaturated
    strict = gate.image.score(frame, threshold=(score + 1) / 2)
    assert strict.threshold == (score + 1) / 2 and strict.score == score and not strict.label
    lenient = gate.image.score(frame, threshold=score / 2)
    assert lenient.label and lenient.region is not None
    frame = _rgb(small_dataset / "test/good/000.png")
    for bad in (0.0, 1.0, -0.2, 1.5, float("nan"), float("inf")):
        with pytest.raises(ThresholdError, match="out of range"):
            gate.image.score(frame, threshold=bad)


def test_bad_frames(fitted_gate: Path) -> None:
    gate = load_gate(fitted_gate)
    assert gate.image is not None
    with pytest.raises(ImageError, match="uint8"):
        gate.image.score(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ImageError, match=r"\[H, W, 3\]"):
        gate.image.score(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ImageError, match="empty"):
        gate.image.score_jpeg(b"")
    grey = gate.image.score(np.full((240, 320), 100, np.uint8))  # grey frames are accepted
    assert grey.label  # ...and a blank frame is not a good part


def test_reference_images(fitted_gate: Path) -> None:
    gate = load_gate(fitted_gate)
    assert gate.image is not None
    refs = gate.image.reference_images(3)
    assert len(refs) == 3 and all(r.dtype == np.uint8 and r.shape == (240, 320, 3) for r in refs)
    assert len(gate.image.reference_images(10)) == 4 and gate.image.reference_images(0) == []


def test_jpeg_path_matches_the_decoded_path(fitted_gate: Path, small_dataset: Path) -> None:
    from edge.samples import jpeg_bytes

    gate = load_gate(fitted_gate)
    assert gate.image is not None
    frame = _rgb(small_dataset / "test/missing_feature/000.png")
    big = cv2.resize(frame, (1280, 960), interpolation=cv2.INTER_CUBIC)  # decoded at 1/4 scale: 320x240
    reduced = gate.image.score_jpeg(jpeg_bytes(big, quality=95))
    direct = gate.image.score(big)
    assert reduced.label == direct.label and abs(reduced.score - direct.score) < 0.1
    assert reduced.region is not None and direct.region is not None
    assert max(abs(a - b) for a, b in zip(reduced.region, direct.region, strict=True)) <= 12


def test_too_few_good_images(tmp_path: Path, small_dataset: Path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(small_dataset / "train/good/000.png", one)
    with pytest.raises(GateFitError, match=r"needs at least 8 good images, got 1"):
        fit_gate(tmp_path / "gate", GateFitRequest(good_images=one))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GateFitError, match="no good images found"):
        fit_gate(tmp_path / "gate", GateFitRequest(good_images=empty))
    with pytest.raises(GateFitError, match="does not exist"):
        fit_gate(tmp_path / "gate", GateFitRequest(good_images=tmp_path / "nowhere"))
    assert not (tmp_path / "gate").exists()  # a failed fit leaves nothing behind
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gate")]


def test_unreadable_good_image_is_named(tmp_path: Path, small_dataset: Path) -> None:
    good = tmp_path / "good"
    shutil.copytree(small_dataset / "train/good", good)
    (good / "999.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(GateFitError, match=r"999\.png: cannot read this good image"):
        fit_gate(tmp_path / "gate", GateFitRequest(good_images=good))


def test_good_images_of_different_sizes_are_resized_with_a_warning(
    tmp_path: Path, small_dataset: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = tmp_path / "good"
    shutil.copytree(small_dataset / "train/good", good)
    for p in sorted(good.glob("*.png"))[:3]:
        cv2.imwrite(str(p), cv2.resize(cv2.imread(str(p)), (400, 300), interpolation=cv2.INTER_AREA))
    with caplog.at_level(logging.WARNING, logger="edge.gate.good_set"):
        m = fit_gate(tmp_path / "gate", GateFitRequest(good_images=good))
    assert "2 different sizes (11× 320x240, 3× 400x300)" in caplog.text
    assert m.image is not None and m.image["input_size"] == [192, 256]


def test_existing_output(tmp_path: Path, small_dataset: Path, fitted_gate: Path) -> None:
    other = tmp_path / "not-a-gate"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(GateFitError, match="not a gate folder"):
        fit_gate(other, GateFitRequest(good_images=small_dataset / "train/good"))
    copy = tmp_path / "gate"
    shutil.copytree(fitted_gate, copy)
    with pytest.raises(GateFitError, match="--force"):
        fit_gate(copy, GateFitRequest(good_images=small_dataset / "train/good"))
    m = fit_gate(copy, GateFitRequest(good_images=small_dataset / "train/good", force=True))
    assert m.sound is None and json.loads((copy / "manifest.json").read_text())["gate_id"] == m.gate_id
    verify_gate(copy)
