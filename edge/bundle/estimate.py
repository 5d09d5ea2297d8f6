"""Weight sizes and MatMulNBits layouts estimated from a model's shapes and a recipe, before any bundle exists.

The exporter's layout, re-derived: ``edge plan --preset 12b`` uses it to plan a model nobody has built here,
and the export's free-space check to size the output. A built bundle records its own sizes and layouts
(``plan_for_bundle``), and a test checks the two agree on a real export.
"""

from __future__ import annotations

import math

from edge.bundle.recipe import LinearQuant, QuantRecipe, WeightMatMul
from edge.errors import ConfigError
from edge.spec import ModelSpec

LINEAR_SCHEMES = {"fp32": 32, "fp16": 16, "int8": 8, "int4": 4}


def estimate_weight_bytes(spec: ModelSpec, recipe: QuantRecipe | None) -> dict[str, int]:
    """Bytes on disk per weight family (embedding, decoder, lm_head, vision, audio) under ``recipe``."""
    rec = recipe or QuantRecipe()
    linears, small = _linear_shapes(spec), _fp32_params(spec)
    out = {}
    for fam, shapes in linears.items():
        q = _family(rec, fam)
        out[fam] = sum(_linear_bytes(k, n, q) for k, n in shapes) + 4 * small.get(fam, 0)
    t = spec.text
    out["embedding"] = _table_bytes(t.vocab_size, t.hidden_size, rec.embedding, rec.embedding_block_size)
    order = ("embedding", "decoder", "lm_head", "vision", "audio")
    return {fam: out[fam] for fam in order if fam in out}


def derived_matmuls(spec: ModelSpec, recipe: QuantRecipe) -> list[WeightMatMul]:
    """The MatMulNBits layouts the exporter writes for ``recipe``, for a plan made before any bundle exists.

    The graph a family lands in: the LM head is part of the decoder graph. A bundle records its own
    (``weight_matmuls`` in the manifest), which ``plan_for_bundle`` uses instead.
    """
    out: dict[tuple[str, int, int, LinearQuant], int] = {}
    for fam, shapes in _linear_shapes(spec).items():
        q = _family(recipe, fam)
        if q.scheme == "fp32":
            continue
        for k, n in shapes:
            key = ("decoder" if fam == "lm_head" else fam, k, n, q)
            out[key] = out.get(key, 0) + 1
    return [
        WeightMatMul(g, k, n, q.bits, q.block_size, q.accuracy_level, not q.symmetric, count)
        for (g, k, n, q), count in out.items()
    ]


def _linear_shapes(spec: ModelSpec) -> dict[str, list[tuple[int, int]]]:
    """``(K, N)`` of every MatMul weight per family, as the exporter lays them out."""
    t = spec.text
    h, inter = t.hidden_size, t.intermediate_size
    dec: list[tuple[int, int]] = []
    for lay in t.layers:
        q, kv = t.num_heads * lay.head_dim, lay.kv_heads * lay.head_dim
        dec += [(h, q), (h, kv)] + ([] if lay.k_eq_v else [(h, kv)]) + [(q, h), (h, inter), (h, inter), (inter, h)]
    out = {"decoder": dec, "lm_head": [(h, t.vocab_size)]}
    if spec.vision is not None:
        v = spec.vision
        out["vision"] = [(v.patch_dim, v.mm_embed_dim), (v.mm_embed_dim, h)]
    if spec.audio is not None:
        out["audio"] = [(spec.audio.samples_per_token, h)]
    return out


def _fp32_params(spec: ModelSpec) -> dict[str, int]:
    """Parameters that stay fp32 whatever the recipe: norms, biases, layer scalars, the vision position table."""
    t = spec.text
    out = {"decoder": sum(2 * lay.head_dim + 4 * t.hidden_size + 1 for lay in t.layers) + t.hidden_size}
    if spec.vision is not None:
        v = spec.vision
        out["vision"] = 2 * v.patch_dim + 5 * v.mm_embed_dim + 2 * v.mm_posemb_size * v.mm_embed_dim
    return out


def _family(recipe: QuantRecipe, family: str) -> LinearQuant:
    q: LinearQuant = getattr(recipe, family)
    if q.scheme not in LINEAR_SCHEMES:
        raise ConfigError(f"{family}: unknown scheme {q.scheme!r}; choose one of {', '.join(LINEAR_SCHEMES)}")
    return q


def _linear_bytes(k: int, n: int, q: LinearQuant) -> int:
    """A ``[K, N]`` weight: plain fp32/fp16, or MatMulNBits blocks along K (see ``quantize.pack_matmul_nbits``)."""
    bits = LINEAR_SCHEMES[q.scheme]
    if bits >= 16:
        return k * n * bits // 8
    k_blocks = math.ceil(k / q.block_size)
    data = n * k_blocks * math.ceil(q.block_size * bits / 8)
    scales = n * k_blocks * 4
    zero_points = 0 if q.symmetric else n * math.ceil(k_blocks / (8 // bits))
    return data + scales + zero_points


def _table_bytes(rows: int, cols: int, scheme: str, block: int) -> int:
    """The token-embedding table (``embedders.build_embedding``): per-row int8, or int4 Gather blocks."""
    if scheme == "lm_head":  # gathers the tied LM head's blocks: no table of its own
        return 0
    if scheme == "int8":
        return rows * cols + rows * 4
    if scheme == "int4":
        return rows * math.ceil(cols / 2) + rows * math.ceil(cols / block) * 4
    return rows * cols * LINEAR_SCHEMES[scheme] // 8
