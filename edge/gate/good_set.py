"""The good samples a gate is fitted on: list them, read them with clear errors, and fingerprint the set.

>>> paths = list_samples(Path("DATA/train/good"), IMAGE_SUFFIXES, "good images")
>>> frames, size = read_images(paths, width=256)       # all resized to one working size
>>> record = fingerprint(paths)                        # {"count", "bytes", "sha256"} for the manifest
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.bundle.manifest import hash_file
from edge.errors import GateFitError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SOUND_SUFFIXES = (".wav",)


def list_samples(folder: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Files directly in ``folder`` with one of ``suffixes`` (case-insensitive), sorted by name."""
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise GateFitError(f"{folder}: the {what} folder {state}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise GateFitError(f"{folder}: no {what} found (looked for {', '.join(suffixes)})")
    return files


def read_images(paths: list[Path], width: int, height: int | None = None) -> tuple[list[np.ndarray], tuple[int, int]]:
    """Decode every image to RGB ``uint8`` at the working size (``width`` × ``height``; ``height`` from the first
    image's aspect ratio when not given). Images of another size than the first are resized with a warning."""
    frames: list[np.ndarray] = []
    sizes: dict[tuple[int, int], int] = {}
    size: tuple[int, int] | None = None
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise GateFitError(f"{path}: cannot read this good image (corrupt, or not an image); remove or replace it")
        h, w = bgr.shape[:2]
        sizes[(w, h)] = sizes.get((w, h), 0) + 1
        if size is None:
            size = (width, height or max(8, round(h * width / w)))
        frames.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, interpolation=cv2.INTER_AREA))
    if len(sizes) > 1:
        listing = ", ".join(f"{n}× {w}x{h}" for (w, h), n in sorted(sizes.items(), key=lambda kv: -kv[1]))
        log.warning(
            "the good images have %d different sizes (%s); all are resized to the working size %dx%d. "
            "Frames from one camera should all have one size: check the folder",
            len(sizes),
            listing,
            *size,  # type: ignore[misc]
        )
    assert size is not None  # paths is never empty (list_samples)
    return frames, size


def fingerprint(paths: list[Path]) -> dict[str, Any]:
    """Count, total bytes and a sha256 over the sorted ``name:sha256`` lines of the good set."""
    lines = sorted(f"{p.name}:{hash_file(p)}\n" for p in paths)
    return {
        "count": len(paths),
        "bytes": sum(p.stat().st_size for p in paths),
        "sha256": hashlib.sha256("".join(lines).encode()).hexdigest(),
    }


__all__ = ["IMAGE_SUFFIXES", "SOUND_SUFFIXES", "fingerprint", "list_samples", "read_images"]
