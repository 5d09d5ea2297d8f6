"""Compare quantization recipes on one checkpoint: bundle size, logit cosine and greedy agreement.

Run it on the ``trained`` preset: random weights say nothing about quantization error.
``edge fidelity CKPT --json out.json`` prints a table and writes the same figures.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.build.export import ExportOptions, export_bundle
from edge.build.quantize import LinearQuant, QuantRecipe, recipe

Q8 = LinearQuant("int8")


def candidate_recipes() -> dict[str, QuantRecipe]:
    """The grid the int4 defaults were chosen from (plus fp32 and int8 for scale)."""
    return {
        "fp32": recipe("fp32"),
        "int8": recipe("int8"),
        "int4 b32 sym acc4, head int8, emb int8 (default)": recipe("int4"),
        "int4 b32 sym acc0 (fp32 compute)": recipe("int4", decoder={"accuracy_level": 0}),
        "int4 b16 sym acc4": recipe("int4", decoder={"block_size": 16}),
        "int4 b64 sym acc4": recipe("int4", decoder={"block_size": 64}),
        "int4 b32 asym acc4": recipe("int4", decoder={"symmetric": False}),
        "int4 b32, head int4, emb int4": recipe("int4", lm_head="int4", embedding="int4"),
        "int4 b32, head fp32, emb fp32, mm fp32": recipe(
            "int4", lm_head="fp32", embedding="fp32", vision=LinearQuant(), audio=LinearQuant()
        ),
    }


@dataclass
class Row:
    name: str
    bytes: int
    mean_cosine: float
    min_cosine: float
    mean_agreement: float
    all_equal: bool
    per_case: dict[str, dict[str, float]]


def compare(ckpt: Path, names: list[str] | None = None, threads: int | None = None) -> list[Row]:
    rows = []
    recipes = candidate_recipes()
    for name in names or list(recipes):
        work = Path(tempfile.mkdtemp(prefix="edge-fidelity-"))
        try:
            rec = recipes[name]
            opts = ExportOptions(recipe=rec, context=2048, threads=threads)
            m = export_bundle(str(ckpt), work / "bundle", opts)
            cases = m["parity"]["cases"]
            rows.append(
                Row(
                    name=name,
                    bytes=sum(int(f["size"]) for f in m["files"].values()),
                    mean_cosine=sum(c["logits_cosine"] for c in cases) / len(cases),
                    min_cosine=min(c["logits_cosine"] for c in cases),
                    mean_agreement=sum(c["agreement"] for c in cases) / len(cases),
                    all_equal=all(c["tokens_equal"] for c in cases),
                    per_case={c["case"]: {"cosine": c["logits_cosine"], "agreement": c["agreement"]} for c in cases},
                )
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def format_rows(rows: list[Row]) -> str:
    head = f"{'recipe':<50} {'MiB':>7} {'cos mean':>9} {'cos min':>9} {'agree':>6} {'identical':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.name:<50} {r.bytes / 2**20:>7.2f} {r.mean_cosine:>9.5f} {r.min_cosine:>9.5f} "
            f"{r.mean_agreement:>6.2f} {'yes' if r.all_equal else 'no':>9}"
        )
    return "\n".join(lines)


def write_json(rows: list[Row], path: Path, meta: dict[str, Any]) -> None:
    path.write_text(json.dumps({**meta, "rows": [r.__dict__ for r in rows]}, indent=2) + "\n")
