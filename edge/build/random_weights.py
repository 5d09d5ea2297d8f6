"""Random weights at a config's real shapes, generated already quantized.

``edge export --random-weights CONFIG_FOLDER`` builds a bundle for memory and speed work (the
12B proof in ``edge bench --preset 12b``) without a checkpoint and without ever holding fp32
weights: every large matrix is a :class:`RandomMatrix` placeholder that the graph builder turns
straight into random MatMulNBits blocks or int8 rows, one tensor at a time. Small tensors
(norms, biases, position tables) are ordinary float32 arrays. Tensor names and shapes come from
transformers' own module tree on the meta device, so they are exactly what a real checkpoint has.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BIG = 1 << 20  # elements; 2-D tensors at least this large are generated quantized
WEIGHT_STD = 0.02  # the initializer range of Gemma configs


@dataclass(frozen=True)
class RandomMatrix:
    """A torch-layout ``[out, in]`` weight that only exists once quantized."""

    shape: tuple[int, int]
    seed: int

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def matmul_nbits(self, bits: int, block_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Random ``(packed [N, k_blocks, blob], scales [N, k_blocks])`` for symmetric MatMulNBits."""
        n, k = self.shape
        k_blocks = -(-k // block_size)
        rng = self._rng()
        packed = rng.integers(0, 256, size=(n, k_blocks, block_size * bits // 8), dtype=np.uint8)
        levels = 2 ** (bits - 1)  # uniform codes in [-levels, levels) have a std of ≈ levels / √3
        scale = WEIGHT_STD * np.sqrt(3.0) / levels
        scales = (scale * (0.5 + rng.random((n, k_blocks), dtype=np.float32))).astype(np.float32)
        return packed, scales

    def rows_int8(self) -> tuple[np.ndarray, np.ndarray]:
        """Random per-row int8 codes and scales, the layout of an int8 embedding table."""
        rows, _ = self.shape
        rng = self._rng()
        codes = rng.integers(-127, 128, size=self.shape, dtype=np.int8)
        scales = (WEIGHT_STD * np.sqrt(3.0) / 127 * (0.5 + rng.random(rows, dtype=np.float32))).astype(np.float32)
        return codes, scales


def stack_rows(parts: Sequence[Any]) -> Any:
    """``np.concatenate(parts, axis=0)`` for torch-layout weights, placeholders included."""
    if not any(isinstance(p, RandomMatrix) for p in parts):
        return np.concatenate(parts, axis=0)
    cols = {p.shape[1] for p in parts}
    if len(cols) != 1:
        raise ValueError(f"cannot stack weights with different input widths {sorted(cols)}")
    seed = zlib.crc32(repr([getattr(p, "seed", 0) for p in parts]).encode())
    return RandomMatrix((sum(p.shape[0] for p in parts), cols.pop()), seed)


class RandomReader:
    """Drop-in for CheckpointReader: ``config``, ``names()``, ``in``, ``get(name)``, ``has_weights()``."""

    def __init__(self, folder: Path, big: int | None = None) -> None:
        from edge.build.reader import read_config

        self.folder = Path(folder)
        self.config = read_config(self.folder)
        self.big = BIG if big is None else big
        self._shapes = _shapes(self.config)

    def has_weights(self) -> bool:
        return True

    def names(self) -> list[str]:
        return list(self._shapes)

    def __contains__(self, name: str) -> bool:
        return name in self._shapes

    def get(self, name: str) -> Any:
        if name not in self._shapes:
            raise KeyError(name)
        shape = self._shapes[name]
        seed = zlib.crc32(name.encode())
        if len(shape) == 2 and shape[0] * shape[1] >= self.big:
            return RandomMatrix((shape[0], shape[1]), seed)
        rng = np.random.default_rng(seed)
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "layer_scalar" or (("norm" in name or "_ln" in name) and leaf == "weight"):
            return (1.0 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
        return (WEIGHT_STD * rng.standard_normal(shape)).astype(np.float32)


def _shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every state-dict tensor of the model a config describes, under saved and module names."""
    import json
    import tempfile

    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(config))
        cfg = AutoConfig.from_pretrained(tmp)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(cfg)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    # transformers 5.23 saves the vision embedder under another prefix than its module path
    for name, shape in list(shapes.items()):
        if name.startswith("model.embed_vision."):
            rest = name[len("model.embed_vision.") :]
            shapes.setdefault("model.vision_embedder." + rest, shape)
            shapes.setdefault("model.embed_vision." + rest.replace("multimodal_embedder.", ""), shape)
    return shapes
