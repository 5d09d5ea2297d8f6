"""``edge fixture dataset OUT``: write the generated inspection set in the MVTec AD layout, plus machine sounds.

    OUT/train/good/000.png                      good parts to fit a gate on
    OUT/test/good/000.png, test/<kind>/000.png  good and defective parts to evaluate it
    OUT/ground_truth/<kind>/000_mask.png        the defect's pixels (255), as MVTec AD stores them
    OUT/sound/train/good/000.wav                normal machine sound, 16 kHz mono 16-bit
    OUT/sound/test/good/000.wav, sound/test/<kind>/000.wav
    OUT/sound/ground_truth/<kind>/000.json      {"intervals": [[start_s, end_s]]}: where the anomaly sounds
    OUT/dataset.json                            generator, seed, sizes, and each frame's pose and lighting

Every file is a pure function of the seed, the size preset and its place in the layout.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.dataset.defects import DEFECT_KINDS
from edge.dataset.parts import Lighting, Pose, render_part
from edge.dataset.sounds import SAMPLE_RATE, SOUND_KINDS, machine_clip
from edge.errors import ConfigError
from edge.samples import wav_bytes


@dataclass(frozen=True)
class DatasetSize:
    """How much to generate: frame size, images per split, and sound clips per split."""

    width: int
    height: int
    train_good: int
    test_good: int
    test_per_defect: int
    clip_seconds: float
    sound_train: int
    sound_test_good: int
    sound_test_per_kind: int


SIZES = {
    "default": DatasetSize(640, 480, 100, 100, 15, 3.0, 40, 40, 10),
    "small": DatasetSize(320, 240, 14, 6, 2, 2.0, 10, 4, 2),
}


def file_count(size: str) -> int:
    """How many frames and clips ``write_dataset`` writes for ``size`` (a progress bar's total)."""
    s = _size(size)
    frames = s.train_good + s.test_good + s.test_per_defect * len(DEFECT_KINDS)
    return frames + s.sound_train + s.sound_test_good + s.sound_test_per_kind * len(SOUND_KINDS)


def _size(size: str) -> DatasetSize:
    if size not in SIZES:
        raise ConfigError(f"unknown data set size {size!r}; use one of {', '.join(SIZES)}")
    return SIZES[size]


def write_dataset(
    out: Path, size: str = "default", seed: int = 0, on_file: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Write the data set to ``out`` (replaced if it holds a previous one); returns what ``dataset.json`` says.

    ``on_file`` is called after each frame and clip (``file_count(size)`` calls in all), for progress.
    """
    s = _size(size)
    if out.exists():
        if not (out / "dataset.json").is_file() and any(out.iterdir()):
            raise ConfigError(f"{out}: exists and is not a data set written by `edge fixture dataset`; pick another")
        shutil.rmtree(out)
    frames: dict[str, Any] = {}
    splits = [("train", "good", s.train_good), ("test", "good", s.test_good)]
    splits += [("test", kind, s.test_per_defect) for kind in DEFECT_KINDS]
    for split_id, (split, kind, count) in enumerate(splits):
        folder = out / split / kind
        folder.mkdir(parents=True)
        for i in range(count):
            for attempt in range(8):  # a defect drawn too faint to change any pixel is drawn again
                rng = np.random.default_rng([seed, 1, split_id, i, attempt])
                pose, light = _pose(rng, s.width), _lighting(rng, i, count)
                rgb, mask = render_part(s.width, s.height, pose, light, None if kind == "good" else kind, rng)
                if kind == "good" or mask.any():
                    break
            name = f"{i:03d}"
            _imwrite(folder / f"{name}.png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if kind != "good":
                (out / "ground_truth" / kind).mkdir(parents=True, exist_ok=True)
                _imwrite(out / "ground_truth" / kind / f"{name}_mask.png", mask)
            frames[f"{split}/{kind}/{name}.png"] = {"pose": asdict(pose), "lighting": asdict(light)}
            if on_file is not None:
                on_file()
    sounds = [("train", "good", s.sound_train), ("test", "good", s.sound_test_good)]
    sounds += [("test", kind, s.sound_test_per_kind) for kind in SOUND_KINDS]
    for split_id, (split, kind, count) in enumerate(sounds):
        folder = out / "sound" / split / kind
        folder.mkdir(parents=True)
        for i in range(count):
            rng = np.random.default_rng([seed, 2, split_id, i])
            wave, intervals = machine_clip(s.clip_seconds, None if kind == "good" else kind, rng)
            (folder / f"{i:03d}.wav").write_bytes(wav_bytes(wave, SAMPLE_RATE))
            if kind != "good":
                truth = out / "sound" / "ground_truth" / kind
                truth.mkdir(parents=True, exist_ok=True)
                (truth / f"{i:03d}.json").write_text(json.dumps({"intervals": [list(iv) for iv in intervals]}) + "\n")
            if on_file is not None:
                on_file()
    meta = {"generator": "edge fixture dataset", "size": size, "seed": seed, **asdict(s), "frames": frames}
    (out / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _pose(rng: np.random.Generator, width: int) -> Pose:
    """Where a part lands in the fixture: up to ±8 px (at 640 px) and ±3 degrees."""
    shift = 8.0 * width / 640
    return Pose(float(rng.uniform(-shift, shift)), float(rng.uniform(-shift, shift)), float(rng.uniform(-3, 3)))


def _lighting(rng: np.random.Generator, i: int, count: int) -> Lighting:
    """Gain 0.8–1.2, and a side light whose direction drifts round once over a split, at 5–20 % per half frame."""
    direction = 360.0 * i / max(count, 1) + float(rng.normal(0, 10))
    return Lighting(float(rng.uniform(0.8, 1.2)), float(rng.uniform(0.05, 0.2)), direction)


def _imwrite(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img):
        raise ConfigError(f"{path}: cannot write the image (is the folder writable?)")


__all__ = ["SIZES", "DatasetSize", "write_dataset"]
