"""The three small graphs: vision embedder, audio embedder and scaled token embedding.

Each mirrors one module of transformers' modeling_gemma4_unified.py (5.23):
``Gemma4UnifiedVisionEmbedder``, ``Gemma4UnifiedMultimodalEmbedder`` (audio) and
``Gemma4UnifiedTextScaledWordEmbedding``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from edge.build.graphs.builder import MS_DOMAIN, GraphBuilder
from edge.build.quantize import QuantRecipe, quantize_blocks_int4, quantize_rows_int8
from edge.build.random_weights import RandomMatrix
from edge.errors import ConfigError
from edge.spec import ModelSpec

# Names as transformers 5.23 saves them (its load-time mapping turns vision_embedder.* into
# embed_vision.*); the module-path spelling is accepted too.
V = "model.vision_embedder."
V_ALT = "model.embed_vision."
A = "model.embed_audio."
E = "model.language_model.embed_tokens.weight"


class _Aliased:
    """Look a vision tensor up under its saved name, falling back to the module path."""

    def __init__(self, w: Any) -> None:
        self.w = w

    def get(self, name: str) -> np.ndarray:
        if name.startswith(V) and name not in self.w:
            return self.w.get(V_ALT + name[len(V) :])
        return self.w.get(name)


def build_vision(g: GraphBuilder, spec: ModelSpec, w: Any, recipe: QuantRecipe) -> None:
    """Merged 48 px patches + (x, y) positions → text-width soft tokens. Padding patches are (-1, -1)."""
    v = spec.vision
    assert v is not None
    w = _Aliased(w)
    f32 = TensorProto.FLOAT
    px = g.input("pixel_values", f32, ["num_images", "num_patches", v.patch_dim])
    pos = g.input("image_position_ids", TensorProto.INT64, ["num_images", "num_patches", 2])

    def ln(x: str, name: str) -> str:
        return g.layer_norm(
            x,
            g.weight(V + name + ".weight", w.get(V + name + ".weight")),
            g.weight(V + name + ".bias", w.get(V + name + ".bias")),
            v.layer_norm_eps,
        )

    h = ln(px, "patch_ln1")
    h = g.linear(
        h,
        w.get(V + "patch_dense.weight"),
        V + "patch_dense",
        recipe.vision,
        bias=w.get(V + "patch_dense.bias"),
    )
    h = ln(h, "patch_ln2")
    # factorized 2-D position embedding: table[x, 0] + table[y, 1], zero for padding patches
    table = w.get(V + "pos_embedding")  # [posemb, 2, dim]
    clamped = g.op("Max", [pos, g.const(0, np.int64)])
    valid = g.op("Cast", [g.op("Not", [g.op("Equal", [pos, g.const(-1, np.int64)])])], to=f32)
    axis_embs = []
    for axis in (0, 1):
        idx = g.op("Gather", [clamped, g.const(axis, np.int64)], axis=-1)
        emb = g.op(
            "Gather",
            [g.weight(f"{V}pos_embedding.{'xy'[axis]}", np.ascontiguousarray(table[:, axis, :])), idx],
        )
        ok = g.op("Gather", [valid, g.const([axis], np.int64)], axis=-1)
        axis_embs.append(g.op("Mul", [emb, ok]))
    h = g.op("Add", [h, g.op("Add", axis_embs)])
    h = ln(h, "pos_norm")
    h = g.rms_norm(h, v.rms_norm_eps)
    pre = V_ALT + "embedding_projection"
    out = g.linear(h, w.get(pre + ".weight"), pre, recipe.vision)
    g.output(out, "image_features", f32, ["num_images", "num_patches", spec.text.hidden_size])


def build_audio(g: GraphBuilder, spec: ModelSpec, w: Any, recipe: QuantRecipe) -> None:
    """640-sample waveform frames → text-width soft tokens (RMSNorm without scale, then Linear)."""
    a = spec.audio
    assert a is not None
    f32 = TensorProto.FLOAT
    x = g.input("input_features", f32, ["num_audios", "num_frames", a.samples_per_token])
    h = g.rms_norm(x, a.rms_norm_eps)
    out = g.linear(h, w.get(A + "embedding_projection.weight"), A + "embedding_projection", recipe.audio)
    g.output(out, "audio_features", f32, ["num_audios", "num_frames", spec.text.hidden_size])


def build_embedding(g: GraphBuilder, spec: ModelSpec, w: Any, recipe: QuantRecipe) -> None:
    """Token ids → embeddings × sqrt(hidden), the table stored per ``recipe.embedding``."""
    t = spec.text
    f32 = TensorProto.FLOAT
    ids = g.input("input_ids", TensorProto.INT64, ["batch", "seq"])
    table = w.get(E)
    scheme = recipe.embedding
    if scheme == "fp32":
        rows = g.op("Gather", [g.weight(E, table), ids])
    elif scheme == "fp16":
        rows = g.op("Cast", [g.op("Gather", [g.weight(E + ".fp16", table.astype(np.float16)), ids])], to=f32)
    elif scheme == "int8":
        q, scale = table.rows_int8() if isinstance(table, RandomMatrix) else quantize_rows_int8(table)
        rows = g.op("Cast", [g.op("Gather", [g.weight(E + ".q8", q), ids])], to=f32)
        s = g.op("Gather", [g.weight(E + ".scales", scale), ids])
        rows = g.op("Mul", [rows, g.op("Unsqueeze", [s, g.const([-1], np.int64)])])
    elif scheme == "int4":
        bs = recipe.embedding_block_size
        packed, scale = quantize_blocks_int4(table, bs)
        data = g.weight(E + ".q4", packed, elem_type=TensorProto.INT4, dims=list(table.shape))
        rows = g.op(
            "GatherBlockQuantized",
            [data, ids, g.weight(E + ".scales", scale)],
            domain=MS_DOMAIN,
            gather_axis=0,
            quantize_axis=1,
            block_size=bs,
        )
    else:
        raise ConfigError(f"unknown embedding scheme {scheme!r}; choose fp32, fp16, int8 or int4")
    out = g.op("Mul", [rows, g.const(np.float32(t.embed_scale))])
    g.output(out, "inputs_embeds", f32, ["batch", "seq", t.hidden_size])


def check_shared_embedding(spec: ModelSpec, recipe: QuantRecipe) -> None:
    """``embedding="lm_head"`` needs a tied, symmetric int8 LM head whose blocks tile the hidden size."""
    t = spec.text
    head = recipe.lm_head
    if not t.tie_word_embeddings:
        raise ConfigError("--embedding lm_head needs tied word embeddings; this model has a separate LM head")
    if head.scheme != "int8" or not head.symmetric:
        raise ConfigError("--embedding lm_head shares the LM head's blocks, so the LM head must be symmetric int8")
    if t.hidden_size % head.block_size or head.block_size < 16 or head.block_size & (head.block_size - 1):
        raise ConfigError(
            f"--embedding lm_head needs a power-of-two block size ≥ 16 dividing the hidden size {t.hidden_size}, "
            f"got {head.block_size}"
        )


def build_shared_embedding(g: GraphBuilder, spec: ModelSpec, recipe: QuantRecipe, head: dict[str, Any]) -> None:
    """Token ids → embeddings × sqrt(hidden), gathered from the tied LM head's int8 ``MatMulNBits`` blocks.

    ``head`` holds the decoder's ``lm_head.q8`` ``[vocab, k_blocks, block]`` and ``lm_head.scales``
    initializers; the same bytes read as ``[vocab, hidden]`` uint8 (zero point 128) are what
    ``GatherBlockQuantized`` takes, so the table is stored once, in ``decoder.onnx.data``.
    """
    t = spec.text
    f32 = TensorProto.FLOAT
    check_shared_embedding(spec, recipe)
    ids = g.input("input_ids", TensorProto.INT64, ["batch", "seq"])
    data, scales = TensorProto(), TensorProto()
    data.CopyFrom(head["lm_head.q8"])
    scales.CopyFrom(head["lm_head.scales"])
    del data.dims[:]
    data.dims.extend([t.vocab_size, t.hidden_size])
    g.initializers += [data, scales]
    rows = g.op(
        "GatherBlockQuantized",
        [data.name, ids, scales.name],
        domain=MS_DOMAIN,
        bits=8,
        block_size=recipe.lm_head.block_size,
        gather_axis=0,
        quantize_axis=1,
    )
    out = g.op("Mul", [rows, g.const(np.float32(t.embed_scale))])
    g.output(out, "inputs_embeds", f32, ["batch", "seq", t.hidden_size])
