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
from edge.build.parity import CASES, check_bundle
from edge.build.quantize import LinearQuant, QuantRecipe, recipe

Q8 = LinearQuant("int8")


def candidate_recipes() -> dict[str, QuantRecipe]:
    """The grid the int4 defaults were chosen from (plus fp32 and int8 for scale)."""
    return {
        "fp32": recipe("fp32"),
        "int8": recipe("int8"),
        "int4 b32 sym acc4 (default)": recipe("int4"),
        "int4 default on MatMulNBits": recipe("int4"),
        "int4 default, KV cache float32": recipe("int4"),
        "int4 default, reference decoder": recipe("int4"),
        "int4 b32 sym acc0 (fp32 compute)": recipe("int4", decoder={"accuracy_level": 0}),
        "int4 b16 sym acc4": recipe("int4", decoder={"block_size": 16}),
        "int4 b64 sym acc4": recipe("int4", decoder={"block_size": 64}),
        "int4 b128 sym acc4": recipe("int4", decoder={"block_size": 128}),
        "int4 b32 asym acc4": recipe("int4", decoder={"symmetric": False}),
        "int4 b32, head int4 (emb int8)": recipe("int4", lm_head="int4"),
        "int4 b32, emb int4 (head int8)": recipe("int4", embedding="int4"),
        "int4 b32, emb fp16 (head int8)": recipe("int4", embedding="fp16"),
        "int4 b32, emb gathers the int8 head": recipe("int4", embedding="lm_head"),
        "int4 b32, head/emb/mm fp32": recipe(
            "int4", lm_head="fp32", embedding="fp32", vision=LinearQuant(), audio=LinearQuant()
        ),
    }


@dataclass
class Row:
    name: str
    bytes: int
    tf_cosine: float
    tf_top1: float
    tf_kl: float
    min_first_cosine: float
    greedy_agreement: float
    all_equal: bool
    per_case: dict[str, dict[str, float]]


FIDELITY_CASES = (*CASES, *(f"corpus-{i}" for i in range(15)))
FIDELITY_TOKENS = 48


def compare(ckpt: Path, names: list[str] | None = None, threads: int | None = None) -> list[Row]:
    """Export each recipe and score it against transformers fp32 on 20 prompts x 48 teacher-forced steps."""
    rows = []
    recipes = candidate_recipes()
    for name in names or list(recipes):
        work = Path(tempfile.mkdtemp(prefix="edge-fidelity-"))
        try:
            rec = recipes[name]
            decoder = "reference" if "reference decoder" in name else "fused"
            opts = ExportOptions(recipe=rec, context=2048, parity=False, decoder=decoder)
            m = export_bundle(str(ckpt), work / "bundle", opts)
            p = check_bundle(
                work / "bundle",
                ckpt,
                exact=False,
                new_tokens=FIDELITY_TOKENS,
                cases=FIDELITY_CASES,
                threads=threads,
                kernels="off" if "MatMulNBits" in name else None,  # the others run our kernels where they load
                kv_cache="float32" if "KV cache float32" in name else None,  # else float16 with our attention
            )
            cases = p["cases"]
            rows.append(
                Row(
                    name=name,
                    bytes=sum(int(f["size"]) for f in m["files"].values()),
                    tf_cosine=p["tf_mean_cosine"],
                    tf_top1=p["tf_top1_agreement"],
                    tf_kl=p["tf_mean_kl"],
                    min_first_cosine=min(c["logits_cosine"] for c in cases),
                    greedy_agreement=p["mean_agreement"],
                    all_equal=p["all_tokens_equal"],
                    per_case={
                        c["case"]: {k: c[k] for k in ("tf_mean_cosine", "tf_top1_agreement", "tf_mean_kl", "agreement")}
                        for c in cases
                    },
                )
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def format_rows(rows: list[Row]) -> str:
    """Teacher-forced figures over 20 prompts x 48 steps, then greedy prefix agreement (1.00 = all 48 tokens)."""
    head = f"{'recipe':<42} {'MiB':>6} {'TF cosine':>10} {'TF top-1':>9} {'TF KL':>9} {'greedy':>7} {'identical':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.name:<42} {r.bytes / 2**20:>6.2f} {r.tf_cosine:>10.6f} {r.tf_top1:>9.3f} {r.tf_kl:>9.2e} "
            f"{r.greedy_agreement:>7.2f} {'yes' if r.all_equal else 'no':>9}"
        )
    return "\n".join(lines)


def write_json(rows: list[Row], path: Path, meta: dict[str, Any]) -> None:
    path.write_text(json.dumps({**meta, "rows": [r.__dict__ for r in rows]}, indent=2) + "\n")
