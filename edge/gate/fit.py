"""``edge gate fit``: build a gate folder (image and/or sound) and write its manifest, atomically.

The folder is built next to ``out`` and renamed into place, so a failed fit never leaves half a gate.

>>> manifest = fit_gate(Path("gate"), GateFitRequest(good_images=Path("DATA/train/good")))
>>> manifest.gate_id
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edge import __version__
from edge.bundle.manifest import MANIFEST_NAME, file_table
from edge.errors import GateFitError
from edge.gate.anomalib_wrap import AnomalibOptions, wrap_anomalib
from edge.gate.good_set import IMAGE_SUFFIXES, SOUND_SUFFIXES, fingerprint, list_samples
from edge.gate.image_fit import ImageFitOptions, fit_variation_gate
from edge.gate.manifest import GATE_KIND, GateManifest, write_gate_manifest
from edge.gate.sound_fit import SoundFitOptions, fit_sound_gate


@dataclass(frozen=True)
class GateFitRequest:
    """What to fit: good images (a variation model, or calibration of ``anomalib_model``), good sound, or both."""

    good_images: Path | None = None
    good_sounds: Path | None = None
    anomalib_model: Path | None = None
    image: ImageFitOptions = field(default_factory=ImageFitOptions)
    anomalib: AnomalibOptions = field(default_factory=AnomalibOptions)
    sound: SoundFitOptions = field(default_factory=SoundFitOptions)
    force: bool = False


def fit_gate(out: Path, request: GateFitRequest) -> GateManifest:
    """Fit the gate ``request`` describes into the folder ``out``; returns its manifest."""
    if request.good_images is None and request.good_sounds is None and request.anomalib_model is None:
        raise GateFitError("nothing to fit: give good images (--good), good sound (--sound-good) or --anomalib")
    _check_out(out, request.force)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        image = sound = None
        if request.anomalib_model is not None or request.good_images is not None:
            paths = list_samples(request.good_images, IMAGE_SUFFIXES, "good images") if request.good_images else None
            if request.anomalib_model is not None:
                image = wrap_anomalib(request.anomalib_model, work, paths, request.anomalib)
            else:
                assert paths is not None
                image = fit_variation_gate(paths, work, request.image)
            image["good_set"] = {**fingerprint(paths), "folder": str(request.good_images)} if paths else None
        if request.good_sounds is not None:
            wavs = list_samples(request.good_sounds, SOUND_SUFFIXES, "good recordings")
            sound = fit_sound_gate(wavs, work, request.sound)
            sound["good_set"] = {**fingerprint(wavs), "folder": str(request.good_sounds)}
        names = [p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file() and p.name != MANIFEST_NAME]
        manifest = write_gate_manifest(
            work,
            {
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "tools": _tools(),
                "image": image,
                "sound": sound,
                "files": file_table(work, names),
            },
        )
        os.chmod(work, 0o755)  # mkdtemp makes 0700; the station daemon may run as another user
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _check_out(out: Path, force: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    manifest = out / MANIFEST_NAME
    is_gate = manifest.is_file() and GATE_KIND in manifest.read_text(encoding="utf-8", errors="replace")
    if not is_gate:
        raise GateFitError(f"{out}: exists and is not a gate folder; choose another output path")
    if not force:
        raise GateFitError(f"{out}: a gate already exists there; pass --force to replace it")


def _tools() -> dict[str, str]:
    import cv2
    import numpy as np
    import onnxruntime as ort

    tools = {"edge-inspector": __version__, "onnxruntime": ort.__version__, "opencv": cv2.__version__}
    tools["numpy"] = np.__version__
    try:
        import onnx

        tools["onnx"] = onnx.__version__
    except ModuleNotFoundError:  # wrapping an anomalib graph without writing one needs no onnx
        pass
    return tools


__all__ = ["GateFitRequest", "fit_gate"]
