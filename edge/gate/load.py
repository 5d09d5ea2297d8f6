"""Load a verified gate folder into scoring objects: ``load_gate(folder) -> Gate``.

>>> gate = load_gate(Path("/opt/edge-inspector/gate"))      # verifies every byte first
>>> gate.gate_id, gate.image is not None, gate.sound is not None
>>> r = gate.image.score(rgb); windows = gate.sound.score(samples)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from edge.errors import GateSchemaError
from edge.gate.calibration import Calibration
from edge.gate.image_gate import ImageGate
from edge.gate.manifest import GateManifest, load_gate_manifest, verify_gate
from edge.gate.melspec import MelParams
from edge.gate.prestep import Prestep, PrestepParams
from edge.gate.sound_gate import SoundGate, SoundModel


@dataclass(frozen=True)
class Gate:
    """A loaded gate: an image gate, a sound gate, or both, under one ``gate_id``.

    >>> gate = load_gate(Path("gate"))
    >>> gate.image.score(frame).score
    """

    gate_id: str
    folder: Path
    manifest: GateManifest
    image: ImageGate | None
    sound: SoundGate | None


def load_gate(folder: Path, *, verify: bool = True, threads: int = 1) -> Gate:
    """Verify (unless ``verify=False``) and load the gate in ``folder``; ``threads`` per onnxruntime session."""
    folder = Path(folder)
    manifest = verify_gate(folder) if verify else load_gate_manifest(folder)
    image = _image(folder, manifest, threads) if manifest.image else None
    sound = _sound(folder, manifest) if manifest.sound else None
    return Gate(manifest.gate_id, folder, manifest, image, sound)


def _image(folder: Path, manifest: GateManifest, threads: int) -> ImageGate:
    section = manifest.image or {}
    size = _field(section, "input_size", list, "image")
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise GateSchemaError(f"image.input_size: expected [height, width] positive integers, got {size!r}")
    knot = _field(section, "score_knot", float, "image")
    if not 0.0 < knot < 1.0:
        raise GateSchemaError(f"image.score_knot: must be inside (0, 1), got {knot}")
    prestep = None
    if section.get("prestep") is not None:
        params = PrestepParams.from_dict(_field(section, "prestep", dict, "image"))
        path = folder / section["prestep"]["reference"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise GateSchemaError(f"{path}: the pre-step reference image cannot be read")
        prestep = Prestep(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), params)
    return ImageGate(
        folder / _field(section, "graph", str, "image"),
        gate_id=manifest.gate_id,
        input_size=(size[0], size[1]),
        prestep=prestep,
        score_knot=knot,
        references=[folder / r for r in section.get("references", [])],
        threads=threads,
    )


def _sound(folder: Path, manifest: GateManifest) -> SoundGate:
    section = manifest.sound or {}
    mel = MelParams.from_dict(_field(section, "features", dict, "sound"))
    quantile = _field(section, "quantile", float, "sound")
    window = _field(section, "window_seconds", float, "sound")
    if not (0.0 < quantile <= 1.0 and window > 0):
        raise GateSchemaError(f"sound: quantile {quantile} must be in (0, 1] and window_seconds {window} positive")
    return SoundGate(
        SoundModel.load(folder / _field(section, "params", str, "sound"), mel.n_mels),
        mel,
        window_seconds=window,
        quantile=quantile,
        calibration=Calibration.from_dict(_field(section, "calibration", dict, "sound"), "sound"),
        gate_id=manifest.gate_id,
    )


def _field(section: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = section.get(name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise GateSchemaError(f"{where}.{name}: expected {kind.__name__}, got {value!r}")
    return value


__all__ = ["Gate", "load_gate"]
