"""The text decoder graph: per-layer KV cache in, logits of the last position and new KV out.

I/O follows onnxruntime-genai's Gemma split (``inputs_embeds``, ``attention_mask``,
``position_ids``, ``past_key_values.N.key/value`` → ``logits``, ``present.N.key/value``),
plus ``mm_token_type_ids`` for the bidirectional image-block mask. It mirrors
transformers' ``Gemma4UnifiedTextModel`` / ``create_masks_for_vision_model``
(modeling_gemma4_unified.py, 5.23):

* ``attention_mask`` covers the whole sequence so far (past + current), 1 = attend.
* Full-attention layers see every past token; their cache grows.
* Sliding layers receive at most ``window - 1`` past tokens and return the last
  ``window - 1`` of past + current, exactly like ``DynamicSlidingWindowLayer``.
  Their mask is ``sliding AND (causal OR same-image-block)``; full layers are causal only.
* An image block must lie wholly inside one call's tokens for the bidirectional part
  (the engine never splits one across prefill chunks).
* ``logits`` are returned for the last position only, softcapped, shape ``[batch, 1, vocab]``:
  a prefill never materializes ``seq × vocab`` floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from edge.build.graphs.builder import INT64_MAX, GraphBuilder
from edge.build.quantize import QuantRecipe
from edge.spec import FULL, IMAGE_MASKS, SLIDING, LayerSpec, ModelSpec

P = "model.language_model."

# transformers 5.23 builds the bidirectional image-block mask two ways:
#   "sliding": create_masks_for_vision_model (used by generate() with a static cache, and documented
#              as Gemma 4's design): sliding = window AND (causal OR block); full = causal only.
#   "all":     the generic create_masks_for_generate(block_sequence_ids=...) that the model's forward
#              falls back to (generate() with the default DynamicCache): full = causal OR block;
#              sliding = (causal AND window) OR block.
NEG = float(np.finfo(np.float32).min)


def rope_inv_freq(layer: LayerSpec) -> np.ndarray:
    """Inverse frequencies computed with torch exactly as transformers does, so parity is bitwise."""
    import torch

    dim, base = layer.head_dim, layer.rope_theta
    if layer.rope_type == "default":
        inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    else:
        angles = int(layer.partial_rotary_factor * dim // 2)
        rot = 1.0 / (base ** (torch.arange(0, 2 * angles, 2, dtype=torch.int64).to(dtype=torch.float) / dim))
        inv = torch.cat((rot, torch.zeros(dim // 2 - angles, dtype=torch.float32))) if dim // 2 > angles else rot
        inv = inv / layer.rope_factor
    return inv.numpy().astype(np.float32)


def check_image_mask(image_mask: str) -> None:
    if image_mask not in IMAGE_MASKS:
        raise ValueError(f"image_mask must be one of {', '.join(IMAGE_MASKS)}")


def block_ids(g: GraphBuilder, tt: str) -> str:
    """``get_block_sequence_ids_for_mask``: consecutive image tokens share a block id, text is -1."""
    is_img = g.op("Or", [g.op("Equal", [tt, g.const(1, np.int64)]), g.op("Equal", [tt, g.const(2, np.int64)])])
    img_i = g.op("Cast", [is_img], to=TensorProto.INT64)
    prev = g.op("Pad", [img_i, g.const([0, 1, 0, 0], np.int64)])  # shift right by one along seq
    prev = g.op("Slice", [prev, g.const([0], np.int64), g.const([-1], np.int64), g.const([1], np.int64)])
    starts = g.op("Mul", [img_i, g.op("Sub", [g.const(1, np.int64), prev])])
    gid = g.op("Sub", [g.op("CumSum", [starts, g.const(1, np.int64)]), g.const(1, np.int64)])
    return g.op("Where", [is_img, gid, g.const(-1, np.int64)])


class _Masks:
    """Additive attention masks shared by all layers of one kind, shaped ``[B, 1, 1, S, L]``."""

    def __init__(self, g: GraphBuilder, spec: ModelSpec, ids: dict[str, str], mode: str) -> None:
        self.g = g
        am = ids["attention_mask"]
        s = g.shape_dim(ids["inputs_embeds"], 1)
        t = g.shape_dim(am, 1)
        one = g.const([1], np.int64)
        zero = g.const([0], np.int64)
        q_idx = g.op("Range", [g.op("Squeeze", [g.op("Sub", [t, s])]), g.op("Squeeze", [t]), g.const(1, np.int64)])
        self.q_col = g.op("Unsqueeze", [q_idx, one])  # [S, 1]
        self.t, self.s, self.zero = t, s, zero
        self.pad = g.op("Cast", [am], to=TensorProto.BOOL)  # [B, T]
        self.block_q = block_ids(g, ids["mm_token_type_ids"])  # [B, S]
        self.window = spec.text.sliding_window
        self.mode = mode
        self.full = self._mask(ids["past_full"], sliding=False) if ids.get("past_full") else None
        self.sliding = self._mask(ids["past_sliding"], sliding=True) if ids.get("past_sliding") else None

    def _same_block(self, p: str) -> str:
        """``[B, S, L]``: query and key are in the same image block (keys from earlier calls never are)."""
        g = self.g
        batch = g.shape_dim(self.block_q, 0)
        past_ids = g.op("Expand", [g.const(-1, np.int64), g.op("Concat", [batch, p], axis=0)])
        block_k = g.op("Concat", [past_ids, self.block_q], axis=1)  # [B, L]
        bq = g.op("Unsqueeze", [self.block_q, g.const([2], np.int64)])  # [B, S, 1]
        bk = g.op("Unsqueeze", [block_k, g.const([1], np.int64)])  # [B, 1, L]
        return g.op("And", [g.op("Equal", [bq, bk]), g.op("GreaterOrEqual", [bq, g.const(0, np.int64)])])

    def _mask(self, past: str, sliding: bool) -> str:
        g = self.g
        p = g.shape_dim(past, 2)
        length = g.op("Add", [p, self.s])  # keys seen by this layer kind
        start = g.op("Sub", [self.t, length])
        k_idx = g.op("Range", [g.op("Squeeze", [start]), g.op("Squeeze", [self.t]), g.const(1, np.int64)])
        k_row = g.op("Unsqueeze", [k_idx, self.zero])  # [1, L]
        allowed = g.op("LessOrEqual", [k_row, self.q_col])  # causal [S, L]
        in_window = None
        if sliding:
            in_window = g.op("Greater", [k_row, g.op("Sub", [self.q_col, g.const(self.window, np.int64)])])
        if in_window is not None and self.mode == "all":
            allowed = g.op("And", [allowed, in_window])
        if sliding or self.mode == "all":
            allowed = g.op("Or", [allowed, self._same_block(p)])  # [B, S, L]
        if in_window is not None and self.mode == "sliding":
            allowed = g.op("And", [allowed, in_window])
        pad = g.op("Slice", [self.pad, start, g.const([INT64_MAX], np.int64), g.const([1], np.int64)])  # [B, L]
        pad = g.op("Unsqueeze", [pad, g.const([1], np.int64)])  # [B, 1, L]
        allowed = g.op("And", [allowed, pad])  # [B, S, L]
        add = g.op("Where", [allowed, g.const(0.0, np.float32), g.const(NEG, np.float32)])
        return g.op("Unsqueeze", [add, g.const([1, 2], np.int64)])  # [B, 1, 1, S, L]


def _rope_tables(g: GraphBuilder, spec: ModelSpec, position_ids: str) -> dict[tuple[str, int], tuple[str, str]]:
    """cos/sin ``[B, S, 1, head_dim]`` per (layer kind, head_dim)."""
    pos = g.op("Unsqueeze", [g.op("Cast", [position_ids], to=TensorProto.FLOAT), g.const([2], np.int64)])
    tables: dict[tuple[str, int], tuple[str, str]] = {}
    for layer in spec.text.layers:
        key = (layer.kind, layer.head_dim)
        if key in tables:
            continue
        freqs = g.op("Mul", [pos, g.const(rope_inv_freq(layer))])  # [B, S, hd/2]
        emb = g.op("Concat", [freqs, freqs], axis=-1)
        unsq = g.const([2], np.int64)
        tables[key] = (
            g.op("Unsqueeze", [g.op("Cos", [emb]), unsq]),
            g.op("Unsqueeze", [g.op("Sin", [emb]), unsq]),
        )
    return tables


def _rotate(g: GraphBuilder, x: str, cos: str, sin: str, head_dim: int) -> str:
    """``x * cos + rotate_half(x) * sin`` on ``[B, S, H, hd]``."""
    half = g.const([head_dim // 2, head_dim // 2], np.int64)
    x1, x2 = g.op("Split", [x, half], n_out=2, axis=-1)
    rotated = g.op("Concat", [g.op("Neg", [x2]), x1], axis=-1)
    return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rotated, sin])])


def _attention(g: GraphBuilder, spec: ModelSpec, i: int, layer: LayerSpec, h: str, ctx: dict[str, Any]) -> str:
    w, rec = ctx["weights"], ctx["recipe"]
    t = spec.text
    pre = f"{P}layers.{i}.self_attn."
    nh, kvh, hd = t.num_heads, layer.kv_heads, layer.head_dim
    eps = t.rms_norm_eps
    cos, sin = ctx["rope"][(layer.kind, hd)]
    heads = lambda n: g.const([0, 0, n, hd], np.int64)  # noqa: E731
    q = g.op("Reshape", [g.linear(h, w.get(pre + "q_proj.weight"), pre + "q_proj", rec.decoder), heads(nh)])
    q = _rotate(g, g.rms_norm(q, eps, g.weight(pre + "q_norm.weight", w.get(pre + "q_norm.weight"))), cos, sin, hd)
    q = g.op("Transpose", [q], perm=[0, 2, 1, 3])  # [B, nh, S, hd]
    k_raw = g.op("Reshape", [g.linear(h, w.get(pre + "k_proj.weight"), pre + "k_proj", rec.decoder), heads(kvh)])
    if layer.k_eq_v:
        v_raw = k_raw  # keys double as values, taken before k_norm and RoPE
    else:
        v_raw = g.op("Reshape", [g.linear(h, w.get(pre + "v_proj.weight"), pre + "v_proj", rec.decoder), heads(kvh)])
    k = _rotate(g, g.rms_norm(k_raw, eps, g.weight(pre + "k_norm.weight", w.get(pre + "k_norm.weight"))), cos, sin, hd)
    k = g.op("Transpose", [k], perm=[0, 2, 1, 3])
    v = g.op("Transpose", [g.rms_norm(v_raw, eps)], perm=[0, 2, 1, 3])
    keys = g.op("Concat", [ctx["past"][i][0], k], axis=2)
    values = g.op("Concat", [ctx["past"][i][1], v], axis=2)
    if layer.kind == SLIDING:
        keep = [
            g.const([-(t.sliding_window - 1)], np.int64),
            g.const([INT64_MAX], np.int64),
            g.const([2], np.int64),
        ]
        ctx["present"].append((g.op("Slice", [keys, *keep]), g.op("Slice", [values, *keep])))
    else:
        ctx["present"].append((keys, values))
    # grouped-query attention without repeating KV: [B, kvh, groups, S, hd] x [B, kvh, 1, hd, L]
    q5 = g.op("Reshape", [q, g.const([0, kvh, nh // kvh, -1, hd], np.int64)])
    k5 = g.op("Unsqueeze", [g.op("Transpose", [keys], perm=[0, 1, 3, 2]), g.const([2], np.int64)])
    v5 = g.op("Unsqueeze", [values, g.const([2], np.int64)])
    mask = ctx["masks"].sliding if layer.kind == SLIDING else ctx["masks"].full
    scores = g.op("Add", [g.op("MatMul", [q5, k5]), mask])  # attention scaling is 1.0 in Gemma 4
    out = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v5])  # [B, kvh, groups, S, hd]
    out = g.op("Transpose", [g.op("Reshape", [out, g.const([0, nh, -1, hd], np.int64)])], perm=[0, 2, 1, 3])
    out = g.op("Reshape", [out, g.const([0, 0, nh * hd], np.int64)])
    return g.linear(out, w.get(pre + "o_proj.weight"), pre + "o_proj", rec.decoder)


def _layer(g: GraphBuilder, spec: ModelSpec, i: int, x: str, ctx: dict[str, Any]) -> str:
    w, rec = ctx["weights"], ctx["recipe"]
    eps = spec.text.rms_norm_eps
    pre = f"{P}layers.{i}."
    norm = lambda v, n: g.rms_norm(v, eps, g.weight(pre + n + ".weight", w.get(pre + n + ".weight")))  # noqa: E731
    attn = _attention(g, spec, i, spec.text.layers[i], norm(x, "input_layernorm"), ctx)
    x = g.op("Add", [x, norm(attn, "post_attention_layernorm")])
    h = norm(x, "pre_feedforward_layernorm")
    gate = g.op(
        "Gelu",
        [g.linear(h, w.get(pre + "mlp.gate_proj.weight"), pre + "mlp.gate_proj", rec.decoder)],
        approximate="tanh",
    )
    up = g.linear(h, w.get(pre + "mlp.up_proj.weight"), pre + "mlp.up_proj", rec.decoder)
    down = g.linear(g.op("Mul", [gate, up]), w.get(pre + "mlp.down_proj.weight"), pre + "mlp.down_proj", rec.decoder)
    x = g.op("Add", [x, norm(down, "post_feedforward_layernorm")])
    return g.op("Mul", [x, g.weight(pre + "layer_scalar", w.get(pre + "layer_scalar"))])


def lm_head(g: GraphBuilder, spec: ModelSpec, weights: Any, recipe: QuantRecipe, last: str) -> str:
    """Softcapped logits of the normed last position: the tied embedding (or a separate LM head) as a linear."""
    t = spec.text
    head_name = (
        "lm_head.weight" if not t.tie_word_embeddings and "lm_head.weight" in weights else P + "embed_tokens.weight"
    )
    logits = g.linear(last, weights.get(head_name), "lm_head", recipe.lm_head)
    if t.final_logit_softcapping is not None:
        cap = g.const(t.final_logit_softcapping, np.float32)
        logits = g.op("Mul", [g.op("Tanh", [g.op("Div", [logits, cap])]), cap])
    return logits


def build_decoder(
    g: GraphBuilder,
    spec: ModelSpec,
    weights: Any,
    recipe: QuantRecipe,
    image_mask: str = "sliding",
    progress: Any = None,
) -> None:
    """Add the decoder to ``g``. ``weights.get(name)`` returns float32 numpy in torch layout.

    ``image_mask`` picks which of transformers' two image-block masks to reproduce (see IMAGE_MASKS).
    """
    check_image_mask(image_mask)
    t = spec.text
    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    ids = {
        "inputs_embeds": g.input("inputs_embeds", f32, ["batch", "seq", t.hidden_size]),
        "attention_mask": g.input("attention_mask", i64, ["batch", "total"]),
        "position_ids": g.input("position_ids", i64, ["batch", "seq"]),
        "mm_token_type_ids": g.input("mm_token_type_ids", i64, ["batch", "seq"]),
    }
    past = []
    for i, layer in enumerate(t.layers):
        dim = "past_sliding" if layer.kind == SLIDING else "past_full"
        shape: list[int | str] = ["batch", layer.kv_heads, dim, layer.head_dim]
        k = g.input(f"past_key_values.{i}.key", f32, shape)
        v = g.input(f"past_key_values.{i}.value", f32, shape)
        past.append((k, v))
        ids.setdefault(dim, k)
    ctx: dict[str, Any] = {
        "weights": weights,
        "recipe": recipe,
        "past": past,
        "present": [],
        "masks": _Masks(g, spec, ids, image_mask),
        "rope": _rope_tables(g, spec, ids["position_ids"]),
    }
    x = ids["inputs_embeds"]
    for i in range(len(t.layers)):
        x = _layer(g, spec, i, x, ctx)
        if progress is not None:
            progress(i + 1, len(t.layers))
    x = g.rms_norm(x, t.rms_norm_eps, g.weight(P + "norm.weight", weights.get(P + "norm.weight")))
    last = g.op("Slice", [x, g.const([-1], np.int64), g.const([INT64_MAX], np.int64), g.const([1], np.int64)])
    g.output(lm_head(g, spec, weights, recipe, last), "logits", f32, ["batch", 1, t.vocab_size])
    for i, (layer, (k, v)) in enumerate(zip(t.layers, ctx["present"], strict=True)):
        dim = "present_sliding" if layer.kind == SLIDING else "total"
        shape = ["batch", layer.kv_heads, dim, layer.head_dim]
        g.output(k, f"present.{i}.key", f32, shape)
        g.output(v, f"present.{i}.value", f32, shape)


__all__ = ["FULL", "SLIDING", "build_decoder", "lm_head", "rope_inv_freq"]
