"""Structured inspection reports: the built-in JSON Schema, and the digest that ties a report to its inputs.

The built-in report is what a line controller, an MES or a quality database can act on without parsing
prose: is it a defect, which kind, where, how bad, what to do. Its ``defect_type`` enum comes from the
station's own defect list (config ``defect_types``) plus ``none`` and ``other``. Property order is the
order the model writes them: the decision first, the prose last.

The inputs digest is a SHA-256 over exactly what the model was given: every image and audio clip as
received, the prompt and system text, the schema and the generation options (seed included), each
length-prefixed so that no two different inputs hash alike. Run the same request again with greedy
decoding and the report comes back byte for byte, under the same digest.

>>> schema = default_report_schema(["scratch", "dent"])
>>> d = InputsDigest(); d.add("prompt", b"Describe."); d.hexdigest()

``python -m edge.station.report [DEFECT ...]`` prints the built-in schema (for those defect types).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_DEFECTS = (
    "scratch",
    "dent",
    "crack",
    "burr",
    "discoloration",
    "contamination",
    "missing feature",
    "misprint",
    "misalignment",
)
REGIONS = (
    "none",
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
    "whole part",
)
SEVERITIES = ("none", "minor", "major", "critical")
ACTIONS = ("continue", "log and continue", "rework", "scrap", "stop line")
DESCRIPTION_MAX_CHARS = 240
# Tokens a built-in report needs at most, reserved when a structured request sets no max_new_tokens: the
# fixed keys and longest enum values (~200 bytes) plus the description; a byte-level tokenizer spends at most
# one token per byte, so the JSON escapes of the description are what this covers generously.
DEFAULT_REPORT_TOKENS = 384


def default_report_schema(defect_types: Sequence[str] = DEFAULT_DEFECTS) -> dict[str, Any]:
    kinds = [d for d in dict.fromkeys(t.strip() for t in defect_types) if d and d not in ("none", "other")]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "edge-inspector inspection report",
        "type": "object",
        "properties": {
            "anomaly": {"type": "boolean", "description": "true if the part is not good"},
            "defect_type": {"enum": [*kinds, "other", "none"]},
            "location": {
                "type": "object",
                "properties": {
                    "region": {"enum": list(REGIONS)},
                    "box": {
                        "description": "x0, y0, x1, y1 in 0..1 of the frame's width and height",
                        "type": "array",
                        "items": {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.001},
                        "minItems": 4,
                        "maxItems": 4,
                    },
                },
                "required": ["region"],
                "additionalProperties": False,
            },
            "severity": {"enum": list(SEVERITIES)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.01},
            "recommended_action": {"enum": list(ACTIONS)},
            "description": {"type": "string", "maxLength": DESCRIPTION_MAX_CHARS},
        },
        "required": [
            "anomaly",
            "defect_type",
            "location",
            "severity",
            "confidence",
            "recommended_action",
            "description",
        ],
        "additionalProperties": False,
    }


class InputsDigest:
    """SHA-256 over named, length-prefixed parts, in the order they are added."""

    def __init__(self) -> None:
        self._h = hashlib.sha256(b"edge-inspector inputs v1\n")

    def add(self, name: str, data: bytes) -> None:
        self._h.update(f"{name}:{len(data)}:".encode())
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def inputs_sha256(
    images: Sequence[Any], audio: Sequence[bytes], prompt: str, system: str | None, schema: str, options: str
) -> str:
    """The digest of one description's inputs (see the module docstring); ``images`` are pending images
    (their ``kind`` and ``data`` as received) or decoded arrays."""
    d = InputsDigest()
    for im in images:
        if isinstance(im, np.ndarray):  # first: an array has a ``data`` attribute too (a memoryview)
            d.add(f"image array {im.shape} {im.dtype}", im.tobytes())
        else:
            d.add(f"image {im.kind}", im.data)
    for data in audio:
        d.add("audio", data)
    d.add("prompt", prompt.encode())
    d.add("system", (system or "").encode())
    d.add("schema", schema.encode())
    d.add("options", options.encode())
    return d.hexdigest()


def options_text(params: Any, max_soft_tokens: int | None) -> str:
    """The generation options that decide the output, as one canonical line (seed included)."""
    s = params.sampling
    return (
        f"max_new_tokens={params.max_new_tokens} min_new_tokens={params.min_new_tokens} "
        f"temperature={s.temperature!r} top_k={s.top_k} top_p={s.top_p!r} seed={s.seed} "
        f"max_soft_tokens={max_soft_tokens}"
    )


if __name__ == "__main__":
    print(json.dumps(default_report_schema(sys.argv[1:] or DEFAULT_DEFECTS), indent=2))
