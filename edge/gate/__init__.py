"""The anomaly gate: score every frame and every audio window in milliseconds, pass only suspects on.

Station side (onnxruntime, numpy, OpenCV; never torch). The public API:

>>> from edge.gate import load_gate, crop_region
>>> gate = load_gate(Path("gate"))                  # verify + load; gate.image / gate.sound may be None
>>> r = gate.image.score(rgb, threshold=None)       # GateResult: score (0.5 = calibrated), label, region, map
>>> windows = gate.sound.score(samples)             # [SoundWindow(start_s, end_s, result)]
>>> close_up = crop_region(rgb, r.region)
"""

from __future__ import annotations

from edge.gate.image_gate import ImageGate
from edge.gate.load import Gate, load_gate
from edge.gate.result import DEFAULT_THRESHOLD, GateResult, SoundWindow, check_threshold, crop_region
from edge.gate.sound_gate import SoundGate

__all__ = [
    "DEFAULT_THRESHOLD",
    "Gate",
    "GateResult",
    "ImageGate",
    "SoundGate",
    "SoundWindow",
    "check_threshold",
    "crop_region",
    "load_gate",
]
