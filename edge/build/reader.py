"""Read a local Hugging Face checkpoint folder tensor by tensor, as float32 numpy.

Tensors are loaded one at a time from (possibly sharded) safetensors files, so a
12B export never holds the whole model in memory. bf16/fp16 weights are widened
to float32 per tensor.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import CheckpointError

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"


def resolve_source(source: str) -> Path:
    """The local checkpoint folder to export. edge-inspector never downloads from a model hub.

    A hub id is refused with the command that fetches it: download once on a connected host
    (after accepting the model's licence), then export the folder.
    """
    path = Path(source)
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{source}: not a folder; pass the checkpoint folder (with config.json)")
        return path
    hub = _hub_reference(source)
    if hub is not None:
        repo, revision = hub
        pin = f" --revision {revision}" if revision else ""
        download = f"hf download {repo}{pin} --local-dir checkpoints/{repo.split('/')[1]}"
        if source != repo:
            raise CheckpointError(
                f"{source}: edge export reads local folders, not hub URLs; download the model first "
                f"(after accepting its licence): {download}, then export checkpoints/{repo.split('/')[1]}"
            )
        raise CheckpointError(
            f"{source}: no such checkpoint folder. edge export reads local folders only; if this is a hub id, "
            f"download it first: {download}"
        )
    if "://" in source:
        raise CheckpointError(
            f"{source}: edge export reads local folders only; download the checkpoint first and pass its folder"
        )
    raise CheckpointError(f"{source}: no such checkpoint folder")


def _hub_reference(source: str) -> tuple[str, str | None] | None:
    """``org/name`` (and a revision) from a bare hub id or a model page URL; None for anything else.

    >>> _hub_reference("https://huggingface.co/google/gemma-4-12B-it/tree/main")
    ('google/gemma-4-12B-it', 'main')
    """
    match = re.fullmatch(
        r"(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/([\w.-]+/[\w.-]+)(?:/(?:tree|blob|resolve)/([\w.-]+).*)?/?",
        source,
    )
    if match is not None and match.group(1).split("/")[0] not in ("datasets", "spaces", "docs"):
        return match.group(1), match.group(2)
    if re.fullmatch(r"[\w.-]+/[\w.-]+", source) and not source.startswith("."):
        return source, None
    return None


class CheckpointReader:
    """Lazy access to a checkpoint's tensors by name.

    >>> r = CheckpointReader(Path("ckpt/tiny"))
    >>> r.get("model.language_model.norm.weight").shape
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.config = read_config(self.folder)
        self._open: dict[str, Any] = {}
        self._where = self._index()

    def _index(self) -> dict[str, str]:
        idx = self.folder / INDEX_NAME
        if idx.exists():
            weight_map = _read_json(idx, INDEX_NAME).get("weight_map")
            if not isinstance(weight_map, dict):
                raise CheckpointError(f"{idx}: no weight_map")
            return {str(k): str(v) for k, v in weight_map.items()}
        single = self.folder / SINGLE_NAME
        if not single.exists():
            return {}
        return dict.fromkeys(self._handle(SINGLE_NAME).keys(), SINGLE_NAME)

    def has_weights(self) -> bool:
        return bool(self._where)

    def names(self) -> list[str]:
        return sorted(self._where)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def _handle(self, file: str) -> Any:
        if file not in self._open:
            from safetensors import safe_open

            path = self.folder / file
            if not path.exists():
                raise CheckpointError(f"{path}: missing checkpoint shard")
            try:
                self._open[file] = safe_open(str(path), framework="pt")
            except Exception as exc:
                raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
        return self._open[file]

    def get(self, name: str) -> np.ndarray:
        """The tensor as a C-contiguous float32 (or integer) numpy array."""
        file = self._where.get(name)
        if file is None:
            raise CheckpointError(f"{self.folder}: tensor {name!r} is missing from the checkpoint")
        try:
            t = self._handle(file).get_tensor(name)
        except Exception as exc:
            raise CheckpointError(
                f"{self.folder / file}: cannot read tensor {name!r} ({exc}); is the file truncated?"
            ) from exc
        if t.is_floating_point():
            t = t.float()
        return np.ascontiguousarray(t.numpy())


def read_config(folder: Path) -> dict[str, Any]:
    """A checkpoint folder's ``config.json`` as a dict (CheckpointError when missing or malformed)."""
    return _read_json(Path(folder) / "config.json", "config.json")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.exists():
        raise CheckpointError(f"{path.parent}: no {what}; is this a Hugging Face checkpoint folder?")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data
