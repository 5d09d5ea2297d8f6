"""Does constraining the output keep what the model knows? Structured vs free-text defect on `trained` samples.

The ``trained`` preset learned to read a defect from an image block (each defect has its own pixel
signature, see ``fixtures/training.py``) and to name it in prose. Here each sample is one such image; the
model answers once in free text and once under the inspection-report schema (with the corpus's defect list
as the ``defect_type`` enum), and the two defects are compared. Agreement near the free-text accuracy means
the grammar only chose the format, not the answer.

>>> measure_agreement(Engine("trained-int4/"), samples=40)["agreement"]
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np

from edge.build.fixtures.corpus import DEFECTS
from edge.build.fixtures.training import _signature
from edge.runtime.engine import Engine, GenerationParams
from edge.runtime.image import PreparedImage
from edge.station.report import default_report_schema


def defect_image(defect: str, rng: random.Random, k: int = 9) -> PreparedImage:
    """An image block as the trained preset saw them: the defect's signature plus noise, on a 3×3 grid."""
    base = _signature("image", defect, 6912)
    noise = np.random.default_rng(rng.randrange(1 << 30)).random((k, 6912), dtype=np.float32)
    side = 3 if k == 9 else 2
    pos = np.array([(i % side, i // side) for i in range(k)], dtype=np.int64)
    return PreparedImage((0.7 * base + 0.3 * noise).astype(np.float32), pos, k, (48 * side, 48 * side))


def named_defect(text: str) -> str | None:
    """The first corpus defect a free-text answer names (longest names first: 'missing screw' before 'screw')."""
    hits = [(text.find(d), d) for d in sorted(DEFECTS, key=len, reverse=True) if d in text]
    return min(hits)[1] if hits else None


def measure_agreement(engine: Engine, samples: int = 40, seed: int = 1, max_new_tokens: int = 160) -> dict[str, Any]:
    rng = random.Random(seed)
    schema = engine.compile_schema(json.dumps(default_report_schema(DEFECTS)))
    rows = []
    for _ in range(samples):
        truth = rng.choice(DEFECTS)
        image = defect_image(truth, rng)
        free = engine.generate(
            "Describe any defect in this part.", images=[image], params=GenerationParams(max_new_tokens=64)
        )
        report = engine.generate(
            "Report the defect as JSON.",
            images=[image],
            params=GenerationParams(max_new_tokens=max_new_tokens, schema=schema),
        )
        said = named_defect(free.text)
        typed = report.report.get("defect_type") if isinstance(report.report, dict) else None
        rows.append({"truth": truth, "free_text": said, "structured": typed, "report_error": report.report_error})
    named = [r for r in rows if r["free_text"] is not None]
    agree = sum(r["structured"] == r["free_text"] for r in named)
    return {
        "samples": samples,
        "free_text_names_a_defect": len(named),
        "agreement": agree / len(named) if named else 0.0,
        "free_text_correct": sum(r["free_text"] == r["truth"] for r in rows) / samples,
        "structured_correct": sum(r["structured"] == r["truth"] for r in rows) / samples,
        "valid_reports": sum(r["structured"] is not None for r in rows) / samples,
        "rows": rows,
    }
