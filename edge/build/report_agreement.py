"""Does constraining the output keep what the model knows? Structured vs free-text defect on `trained` samples.

The ``trained`` preset learned to read a defect from an image block and a sound from an audio clip (each
defect and each sound has its own signature, see ``fixtures/training.py``), and to name them in prose and
in the station's built-in report. Here each sample is drawn as the corpus draws them: a part with one of
the corpus defects, or a good part (a quarter), shown as an image block, and half of the samples also
carry a machine sound. The model answers once in free text and once under the inspection-report schema
(with the corpus's defect list as the ``defect_type`` enum), and the two are compared: the defect the prose
names (``none`` for "No defect found") against the report's ``defect_type``. Agreement near 1 means the
grammar only chose the format, not the answer; a grammar that picked the answer (say, the first enum
value) agrees in about one sample of nine.

>>> measure_agreement(Engine.load("trained-int4/"), samples=80)["agreement"]
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge.build.fixtures.corpus import DEFECTS, PROMPTS, SOUNDS
from edge.build.fixtures.training import _signature
from edge.runtime.engine import Engine, GenerationParams
from edge.runtime.image import PreparedImage
from edge.station.report import default_report_schema

NO_DEFECT = "none"
GOOD_SHARE = 0.25  # as in the corpus (fixtures/corpus.py)
JSON_PROMPT = "Report the defect as JSON."
PROSE_PROMPTS = tuple(p for p in PROMPTS if p != JSON_PROMPT)


@dataclass(frozen=True)
class AgreementRow:
    """One sample: what was shown, the defect the prose named, the report's defect_type."""

    truth: str
    sound: str | None
    free_text: str | None  # None: the prose names no corpus defect and does not say the part is good
    structured: str | None  # None: no valid report (report_error says why)
    report_error: str


def defect_image(defect: str, rng: random.Random, k: int = 9) -> PreparedImage:
    """An image block as the trained preset saw them: the defect's signature plus noise, on a 3×3 grid."""
    base = _signature("image", defect, 6912)
    noise = np.random.default_rng(rng.randrange(1 << 30)).random((k, 6912), dtype=np.float32)
    side = 3 if k == 9 else 2
    pos = np.array([(i % side, i // side) for i in range(k)], dtype=np.int64)
    return PreparedImage((0.7 * base + 0.3 * noise).astype(np.float32), pos, k, (48 * side, 48 * side))


def sound_clip(sound: str, frames: int = 3) -> np.ndarray:
    """A 16 kHz waveform whose audio frames are the sound's signature, as the trained preset heard them."""
    return np.tile(_signature("audio", sound, 640) - 0.5, frames).astype(np.float32)


def named_defect(text: str) -> str | None:
    """The first corpus defect a free-text answer names (longest names first: 'missing screw' before 'screw'),
    ``none`` for a part it calls good, else None."""
    hits = [(text.find(d), d) for d in sorted(DEFECTS, key=len, reverse=True) if d in text]
    if hits:
        return min(hits)[1]
    return NO_DEFECT if "No defect found" in text else None


def measure_agreement(engine: Engine, samples: int = 80, seed: int = 1, max_new_tokens: int = 200) -> dict[str, Any]:
    """Free text vs structured report on ``samples`` corpus-like image (and audio) prompts, greedy."""
    rng = random.Random(seed)
    schema = engine.compile_schema(json.dumps(default_report_schema(DEFECTS)))
    rows = []
    for i in range(samples):
        truth = NO_DEFECT if rng.random() < GOOD_SHARE else rng.choice(DEFECTS)
        image = defect_image(truth, rng, k=rng.choice((4, 6, 9)))
        sound = rng.choice(SOUNDS) if i % 2 else None
        audio = [sound_clip(sound, rng.choice((3, 5)))] if sound else []
        free = engine.generate(
            rng.choice(PROSE_PROMPTS), images=[image], audio=audio, params=GenerationParams(max_new_tokens=64)
        )
        report = engine.generate(
            JSON_PROMPT,
            images=[image],
            audio=audio,
            params=GenerationParams(max_new_tokens=max_new_tokens, schema=schema),
        )
        typed = report.report.get("defect_type") if isinstance(report.report, dict) else None
        rows.append(AgreementRow(truth, sound, named_defect(free.text), typed, report.report_error))
    named = [r for r in rows if r.free_text is not None]
    return {
        "samples": samples,
        "seed": seed,
        "free_text_names_a_defect": len(named),
        "agreement": sum(r.structured == r.free_text for r in named) / len(named) if named else 0.0,
        "free_text_correct": sum(r.free_text == r.truth for r in rows) / samples,
        "structured_correct": sum(r.structured == r.truth for r in rows) / samples,
        "valid_reports": sum(r.structured is not None for r in rows) / samples,
        "rows": [asdict(r) for r in rows],
    }


def format_agreement(result: dict[str, Any]) -> str:
    """The lines ``edge fidelity --report-agreement`` prints."""
    return "\n".join(
        [
            f"samples                               {result['samples']} (seed {result['seed']})",
            f"free text names a defect or 'good'    {result['free_text_names_a_defect']}",
            f"structured defect_type agrees         {result['agreement']:.2f}",
            f"free text correct                     {result['free_text_correct']:.2f}",
            f"structured report correct             {result['structured_correct']:.2f}",
            f"valid reports                         {result['valid_reports']:.2f}",
        ]
    )
