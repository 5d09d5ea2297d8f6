"""What a description sees: the frame, a close-up of what the gate saw, good references, the audio, a hint.

When the gate asked for the description, the model gets the full frame, a crop around the anomalous
region (Gemma 4 takes several images), optionally a few good reference frames from the gate's good set
(at a small soft-token budget, k-shot as anomalib's VLM detector does), and one sentence with the gate's
score and region, so that it looks where the gate looked.

>>> req = build_request(settings, frame, audio_window, gate_result)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.station.engine import Crop, Request
from edge.station.inputs import SessionSettings
from edge.station.report import inputs_sha256, options_text


def gate_hint(gate: Any, frame_size: tuple[int, int] | None, references: int) -> str:
    """One or two sentences telling the model what the gate found (``frame_size`` = (width, height))."""
    if gate is None:
        return ""
    verdict = "flagged" if gate.label else "passed"
    what = f"An anomaly detector {verdict} this input: score {gate.score:.2f} (threshold {gate.threshold:.2f})."
    if gate.region is not None and frame_size is not None:
        x0, y0, x1, y1 = gate.region
        w, h = frame_size
        what += (
            f" The suspect region is x {x0}-{x1}, y {y0}-{y1} of the {w}x{h} frame; the second image is a "
            "close-up of it."
        )
    if references:
        what += f" The last {references} image(s) show good parts for comparison."
    return what


def frame_size(image: Any) -> tuple[int, int] | None:
    if isinstance(image, np.ndarray):
        return int(image.shape[1]), int(image.shape[0])
    w, h = getattr(image, "width", None), getattr(image, "height", None)
    return (int(w), int(h)) if w and h else None


def build_request(settings: SessionSettings, image: Any | None, audio: np.ndarray | None, gate: Any) -> Request:
    """The request for one description of ``image`` (None: audio alone) with ``audio`` and the gate's result."""
    images: list[Any] = []
    if image is not None:
        images.append(image)
        if gate is not None and gate.region is not None:
            images.append(Crop(image, gate.region))
    refs = list(settings.references) if gate is not None and image is not None else []
    images += refs
    hint = gate_hint(gate, frame_size(image) if image is not None else None, len(refs))
    prompt = f"{hint} {settings.prompt}".strip() if hint else settings.prompt
    clips = [audio] if audio is not None else []
    schema = getattr(getattr(settings.params, "schema", None), "text", "")
    digest = inputs_sha256(
        [im for im in images if hasattr(im, "data") or isinstance(im, np.ndarray)],
        [a.tobytes() for a in clips],
        prompt,
        settings.system,
        schema,
        options_text(settings.params, settings.max_soft_tokens) if settings.params is not None else "",
    )
    return Request(prompt, images, clips, settings.system, settings.params, settings.max_soft_tokens, digest)


def with_gate(req: Request, gate: Any, references: tuple[Any, ...]) -> Request:
    """A Describe request whose first image the gate scored: its close-up, the references, and the hint."""
    if not req.images:
        return req
    first = req.images[0]
    images = [first]
    if gate.region is not None:
        images.append(Crop(first, gate.region))
    images += req.images[1:]
    refs = list(references) if gate.label else []
    hint = gate_hint(gate, frame_size(first), len(refs))
    prompt = f"{hint} {req.prompt}".strip()
    return Request(prompt, images + refs, req.audio, req.system, req.params, req.max_soft_tokens, req.inputs_sha256)
