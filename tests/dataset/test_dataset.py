"""``edge fixture dataset``: the MVTec AD layout, masks that match the defects, sounds with intervals, seeds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.dataset.defects import DEFECT_KINDS, PartSpec
from edge.dataset.mvtec import labeled_clips, labeled_images
from edge.dataset.parts import Lighting, Pose, draw_canonical, render_part
from edge.dataset.sounds import SOUND_KINDS, machine_clip
from edge.dataset.writer import SIZES, file_count, write_dataset
from edge.errors import ConfigError


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_layout(small_dataset: Path) -> None:
    s = SIZES["small"]
    assert len(list((small_dataset / "train/good").glob("*.png"))) == s.train_good
    assert len(list((small_dataset / "test/good").glob("*.png"))) == s.test_good
    for kind in DEFECT_KINDS:
        images = sorted((small_dataset / "test" / kind).glob("*.png"))
        masks = sorted((small_dataset / "ground_truth" / kind).glob("*_mask.png"))
        assert len(images) == len(masks) == s.test_per_defect
        for image, mask in zip(images, masks, strict=True):
            assert mask.name == f"{image.stem}_mask.png"
            m = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
            assert m.shape == (s.height, s.width) and set(np.unique(m)) == {0, 255}
    assert not (small_dataset / "ground_truth" / "good").exists()
    for kind in SOUND_KINDS:
        for truth in (small_dataset / "sound/ground_truth" / kind).glob("*.json"):
            (start, end), *_ = json.loads(truth.read_text())["intervals"]
            assert 0 <= start < end <= s.clip_seconds
    meta = json.loads((small_dataset / "dataset.json").read_text())
    assert meta["seed"] == 0 and len(meta["frames"]) == s.train_good + s.test_good + 6 * s.test_per_defect
    poses = [f["pose"] for f in meta["frames"].values()]
    assert max(abs(p["angle_deg"]) for p in poses) > 1.5 and max(abs(p["dx"]) for p in poses) > 2


def test_reader(small_dataset: Path, tmp_path: Path) -> None:
    images = labeled_images(small_dataset)
    assert images[0].kind == "good" and images[0].mask is None
    assert {i.kind for i in images} == {"good", *DEFECT_KINDS}
    assert all(i.mask is not None for i in images if i.kind != "good")
    clips = labeled_clips(small_dataset)
    assert clips[0].kind == "good" and clips[0].intervals == ()
    assert all(c.intervals for c in clips if c.kind != "good")
    (tmp_path / "test" / "scratch").mkdir(parents=True)
    with pytest.raises(ConfigError, match="no good/ folder"):
        labeled_images(tmp_path)
    with pytest.raises(ConfigError, match="no sound test folder"):
        labeled_clips(tmp_path)


def test_seeded_and_deterministic(tmp_path: Path, small_dataset: Path) -> None:
    again = tmp_path / "again"
    calls: list[None] = []
    write_dataset(again, "small", seed=0, on_file=lambda: calls.append(None))
    assert _digest(again) == _digest(small_dataset)
    written = [p for p in again.rglob("*") if p.suffix in (".png", ".wav") and "ground_truth" not in p.parts]
    assert len(calls) == file_count("small") == len(written)  # one progress call per frame and clip
    write_dataset(again, "small", seed=1)  # replaces its own earlier output
    assert _digest(again) != _digest(small_dataset)


def test_refuses_to_overwrite_other_folders(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a data set"):
        write_dataset(tmp_path, "small")
    with pytest.raises(ConfigError, match="unknown data set size"):
        write_dataset(tmp_path / "x", "huge")
    with pytest.raises(ConfigError, match="unknown data set size"):
        file_count("huge")
    assert (tmp_path / "mine.txt").exists()


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_masks_cover_what_changed(kind: str) -> None:
    """Rendered with and without the defect at one pose: on the part, the pixels whose local mean changed
    beyond the noise (belt, texture and sensor noise differ between the two renders) lie inside the mask."""
    pose, light = Pose(4.0, -3.0, 2.0), Lighting(1.1, 0.1, 30.0)
    defect, mask = render_part(640, 480, pose, light, kind, np.random.default_rng(11))
    good, _ = render_part(640, 480, pose, light, None, np.random.default_rng(11))
    _, alpha = draw_canonical(640, 480, PartSpec())
    m = cv2.getRotationMatrix2D((320, 240), pose.angle_deg, 1.0)
    m[:, 2] += (pose.dx, pose.dy)
    part = cv2.erode(cv2.warpAffine(alpha, m, (640, 480)), np.ones((9, 9), np.uint8)) > 127
    blur = [cv2.blur(x.astype(np.float32), (5, 5)) for x in (defect, good)]
    changed = (np.abs(blur[0] - blur[1]).max(axis=2) > 20) & part
    grown = cv2.dilate(mask, np.ones((7, 7), np.uint8)) > 0
    assert mask.any() and (mask > 0).sum() < 0.05 * mask.size
    assert (changed & ~grown).sum() <= 0.02 * max(1, changed.sum())


def test_sounds() -> None:
    rng = np.random.default_rng(3)
    normal, none = machine_clip(2.0, None, rng)
    assert normal.dtype == np.float32 and normal.shape == (32_000,) and none == []
    assert np.abs(normal).max() <= 1.0
    for kind in SOUND_KINDS:
        wave, [(start, end)] = machine_clip(3.0, kind, np.random.default_rng(4))
        base, _ = machine_clip(3.0, None, np.random.default_rng(4))
        assert 0.8 <= end - start <= 1.5
        outside = np.r_[0 : int(start * 16_000) - 1, int(end * 16_000) + 1 : 48_000]
        assert not np.allclose(wave, base)
        assert kind == "dropout" or np.allclose(wave[outside], base[outside], atol=1e-6)
    with pytest.raises(ValueError, match="unknown sound anomaly"):
        machine_clip(1.0, "squeal", rng)
