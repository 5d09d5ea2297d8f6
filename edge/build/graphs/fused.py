"""The fast decoder graph: onnxruntime's fused contrib ops over a KV cache the runtime owns.

Same model as ``decoder.py`` (the reference graph), built for speed on a CPU station:

* **KV cache in place.** Each layer's cache is a buffer the runtime allocates once and binds
  as both ``past_key_values.N.*`` and ``present.N.*`` (IOBinding), so
  ``com.microsoft.GroupQueryAttention`` appends to it in place: no per-step copy.
  Full-attention layers hold ``kv_capacity`` rows (the context). Sliding layers hold a
  window-sized buffer (``sliding_window_cache=1``, capacity ≥ window) that the operator
  compacts itself; the resident rows follow its documented layout ``L(T)``.
* **Fused ops.** One ``MatMulNBits`` (or MatMul) for Q/K/V and one for gate/up;
  ``SimplifiedLayerNormalization`` / ``SkipSimplifiedLayerNormalization`` for Gemma's RMSNorm
  (weight ``w``, not ``1 + w``); ``RotaryEmbedding`` with cos/sin of this call's positions
  (partial rotary on full layers is exact: its inverse frequencies are zero past the rotated
  part); ``GroupQueryAttention`` with the sliding window, scale 1.0.
* **Images stay exact.** ``GroupQueryAttention`` is causal, but tokens of one image block attend
  to each other both ways (see ``decoder.IMAGE_MASKS``). When a call holds image tokens, the layers
  that need it take an ``If`` branch: before the cache is updated, it copies the resident window
  of past keys/values (the copy is ordered before the update by passing K/V through the same
  ``If``); after the update, it recomputes that layer's attention explicitly with the full mask.
  Text-only calls (every decode step) skip both branches. Where the station runs our attention
  kernel, it computes that mask itself and both branches go at load (``edge/kernels/blocks.py``).

Inputs: ``inputs_embeds [1, seq, hidden]``, ``position_ids [1, seq]`` (absolute, contiguous:
the first one is the number of tokens already cached), ``mm_token_type_ids [1, seq]``, and the
cache buffers. Batch is 1. Outputs: ``logits [1, 1, vocab]`` (last position, softcapped) and
``present.N.*`` (the same buffers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from edge.build.graphs.builder import INT64_MAX, MS_DOMAIN, GraphBuilder
from edge.build.graphs.decoder import NEG, P, block_ids, check_image_mask, lm_head, rope_inv_freq
from edge.build.quantize import QuantRecipe
from edge.build.random_weights import stack_rows
from edge.spec import SLIDING, LayerSpec, ModelSpec

F32, I64, I32 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32
FULL_CAPACITY = "kv_capacity"
SLIDING_CAPACITY = "kv_window_capacity"


class _Call:
    """Per-call values shared by every layer."""

    def __init__(self, g: GraphBuilder, spec: ModelSpec, ids: dict[str, str]) -> None:
        self.g = g
        pos = ids["position_ids"]
        zero, one = g.const([0], np.int64), g.const([1], np.int64)
        self.seq = g.shape_dim(ids["inputs_embeds"], 1)  # S, [1]
        pos_row = g.op("Squeeze", [pos, zero])  # [S]
        self.past = g.op("Slice", [pos_row, zero, one])  # P = first position, [1]
        self.total = g.op("Add", [self.past, self.seq])  # T, [1]
        self.seqlens = g.op("Cast", [g.op("Sub", [self.total, one])], to=I32)  # [1]
        self.total_i32 = g.op("Cast", [g.op("Squeeze", [self.total, zero])], to=I32)  # scalar
        self.q_pos = pos_row
        self.blocks = g.op("Squeeze", [block_ids(g, ids["mm_token_type_ids"]), zero])  # [S], -1 = text
        any_image = g.op(
            "ReduceMax",
            [g.op("Cast", [g.op("GreaterOrEqual", [self.blocks, g.const(0, np.int64)])], to=I64)],
            keepdims=0,
        )
        self.has_block = g.op("Cast", [any_image], to=TensorProto.BOOL)
        self.rot_pos = g.op(
            "Unsqueeze",
            [g.op("Range", [g.const(0, np.int64), g.op("Squeeze", [self.seq, zero]), g.const(1, np.int64)]), zero],
        )
        pos_f = g.op("Unsqueeze", [g.op("Cast", [pos_row], to=F32), one])  # [S, 1]
        self.rope: dict[tuple[str, int], tuple[str, str]] = {}
        for layer in spec.text.layers:
            key = (layer.kind, layer.head_dim)
            if key not in self.rope:
                freqs = g.op("Mul", [pos_f, g.const(rope_inv_freq(layer)[None, :])])  # [S, hd/2]
                self.rope[key] = (g.op("Cos", [freqs]), g.op("Sin", [freqs]))


def _norm(g: GraphBuilder, x: str, weight: str, eps: float) -> str:
    return g.op("SimplifiedLayerNormalization", [x, weight], axis=-1, epsilon=eps, stash_type=1)


def _past_window(
    g: GraphBuilder, call: _Call, spec: ModelSpec, layer: LayerSpec, past_k: str, past_v: str
) -> tuple[str, str]:
    """The cached rows a query of this call can attend to, copied before the cache is updated."""
    zero, one, two = g.const([0], np.int64), g.const([1], np.int64), g.const([2], np.int64)
    p = call.past
    if layer.kind == SLIDING:
        w = spec.text.sliding_window
        cap = g.shape_dim(past_k, 2)
        evict = g.op("Sub", [cap, g.const([w - 1], np.int64)])  # G = C - W + 1
        over = g.op("Sub", [p, cap])
        steps = g.op("Div", [g.op("Add", [over, g.op("Sub", [evict, one])]), evict])  # ceil((P - C) / G)
        resident = g.op("Where", [g.op("LessOrEqual", [p, cap]), p, g.op("Sub", [p, g.op("Mul", [evict, steps])])])
        n = g.op("Min", [resident, g.const([w - 1], np.int64)])
        start = g.op("Sub", [resident, n])
        end = resident
    else:
        start, end = zero, p  # full layers never evict: rows [0, P)
    return g.op("Slice", [past_k, start, end, two]), g.op("Slice", [past_v, start, end, two])


def _explicit_attention(
    g: GraphBuilder,
    call: _Call,
    spec: ModelSpec,
    layer: LayerSpec,
    mode: str,
    qkv: tuple[str, str, str],
    window: tuple[str, str],
) -> str:
    """Attention of this call's queries over (past window + this call) with the exact image-block mask."""
    nh, kvh, hd = spec.text.num_heads, layer.kv_heads, layer.head_dim
    q3, k3, v3 = qkv
    bnsh = lambda x, heads: g.op(  # noqa: E731
        "Transpose", [g.op("Reshape", [x, g.const([0, 0, heads, hd], np.int64)])], perm=[0, 2, 1, 3]
    )
    keys = g.op("Concat", [window[0], bnsh(k3, kvh)], axis=2)  # [1, kvh, n + S, hd]
    values = g.op("Concat", [window[1], bnsh(v3, kvh)], axis=2)
    n = g.shape_dim(window[0], 2)
    zero = g.const([0], np.int64)
    sq = lambda x: g.op("Squeeze", [x, zero])  # noqa: E731
    k_pos = g.op("Range", [sq(g.op("Sub", [call.past, n])), sq(call.total), g.const(1, np.int64)])  # [L]
    k_blocks = g.op("Concat", [g.op("Expand", [g.const([-1], np.int64), n]), call.blocks], axis=0)  # [L]
    qp = g.op("Unsqueeze", [call.q_pos, g.const([1], np.int64)])  # [S, 1]
    kp = g.op("Unsqueeze", [k_pos, zero])  # [1, L]
    causal = g.op("LessOrEqual", [kp, qp])
    qb = g.op("Unsqueeze", [call.blocks, g.const([1], np.int64)])
    same = g.op(
        "And",
        [g.op("Equal", [qb, g.op("Unsqueeze", [k_blocks, zero])]), g.op("GreaterOrEqual", [qb, g.const(0, np.int64)])],
    )
    if layer.kind == SLIDING:
        in_window = g.op("Greater", [kp, g.op("Sub", [qp, g.const(spec.text.sliding_window, np.int64)])])
        if mode == "sliding":
            allowed = g.op("And", [in_window, g.op("Or", [causal, same])])
        else:
            allowed = g.op("Or", [g.op("And", [causal, in_window]), same])
    else:  # only reached in "all" mode
        allowed = g.op("Or", [causal, same])
    mask = g.op("Where", [allowed, g.const(0.0, np.float32), g.const(NEG, np.float32)])  # [S, L]
    q5 = g.op("Reshape", [bnsh(q3, nh), g.const([0, kvh, nh // kvh, -1, hd], np.int64)])
    k5 = g.op("Unsqueeze", [g.op("Transpose", [keys], perm=[0, 1, 3, 2]), g.const([2], np.int64)])
    v5 = g.op("Unsqueeze", [values, g.const([2], np.int64)])
    scores = g.op("Add", [g.op("MatMul", [q5, k5]), mask])  # Gemma 4's attention scaling is 1.0
    out = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v5])  # [1, kvh, groups, S, hd]
    out = g.op("Transpose", [g.op("Reshape", [out, g.const([0, nh, -1, hd], np.int64)])], perm=[0, 2, 1, 3])
    return g.op("Reshape", [out, g.const([0, 0, nh * hd], np.int64)])


def _attention(g: GraphBuilder, spec: ModelSpec, i: int, layer: LayerSpec, h: str, ctx: dict[str, Any]) -> str:
    w, rec, call = ctx["weights"], ctx["recipe"], ctx["call"]
    t = spec.text
    pre = f"{P}layers.{i}.self_attn."
    nh, kvh, hd, eps = t.num_heads, layer.kv_heads, layer.head_dim, t.rms_norm_eps
    parts = [w.get(pre + "q_proj.weight"), w.get(pre + "k_proj.weight")]
    if not layer.k_eq_v:
        parts.append(w.get(pre + "v_proj.weight"))
    fused = g.linear(h, stack_rows(parts), pre + "qkv_proj", rec.decoder)
    sizes = [nh * hd, kvh * hd] + ([] if layer.k_eq_v else [kvh * hd])
    split = g.op("Split", [fused, g.const(sizes, np.int64)], n_out=len(sizes), axis=-1)
    q_raw, k_raw = split[0], split[1]
    v_raw = k_raw if layer.k_eq_v else split[2]  # full layers: keys double as values, before k_norm and RoPE
    heads = lambda x, n: g.op("Reshape", [x, g.const([0, 0, n, hd], np.int64)])  # noqa: E731
    flat = lambda x, n: g.op("Reshape", [x, g.const([0, 0, n * hd], np.int64)])  # noqa: E731
    cos, sin = call.rope[(layer.kind, hd)]

    def rotate(x: str, heads_n: int) -> str:
        return g.op(
            "RotaryEmbedding", [x, call.rot_pos, cos, sin], domain=MS_DOMAIN, num_heads=heads_n, rotary_embedding_dim=hd
        )

    q_norm = g.weight(pre + "q_norm.weight", w.get(pre + "q_norm.weight"))
    k_norm = g.weight(pre + "k_norm.weight", w.get(pre + "k_norm.weight"))
    q = rotate(flat(_norm(g, heads(q_raw, nh), q_norm, eps), nh), nh)
    k = rotate(flat(_norm(g, heads(k_raw, kvh), k_norm, eps), kvh), kvh)
    v = flat(_norm(g, heads(v_raw, kvh), g.const(np.ones(hd, np.float32)), eps), kvh)
    past_k, past_v = ctx["past"][i]
    exact_blocks = layer.kind == SLIDING or ctx["image_mask"] == "all"
    if exact_blocks:
        # copy the window before GroupQueryAttention updates the cache; K/V pass through to order the two
        then = g.branch()
        win = _past_window(then, call, spec, layer, past_k, past_v)
        other = g.branch()
        empty = other.op("Slice", [past_k, g.const([0], np.int64), g.const([0], np.int64), g.const([2], np.int64)])
        outs = [(win[0], F32), (win[1], F32), (then.op("Identity", [k]), F32), (then.op("Identity", [v]), F32)]
        else_outs = [(empty, F32), (empty, F32), (other.op("Identity", [k]), F32), (other.op("Identity", [v]), F32)]
        win_k, win_v, k, v = g.op(
            "If", [call.has_block], n_out=4, then_branch=then.graph(outs), else_branch=other.graph(else_outs)
        )
    attrs: dict[str, Any] = {"num_heads": nh, "kv_num_heads": kvh, "scale": 1.0}
    if layer.kind == SLIDING:
        attrs.update(local_window_size=t.sliding_window, sliding_window_cache=1)
    # the cache outputs are graph outputs by name, so a bound buffer is the operator's own output (in place)
    out = g.fresh("attention")
    g.node(
        "GroupQueryAttention",
        [q, k, v, past_k, past_v, call.seqlens, call.total_i32],
        [out, f"present.{i}.key", f"present.{i}.value"],
        domain=MS_DOMAIN,
        **attrs,
    )
    if exact_blocks:
        then = g.branch()
        exact = _explicit_attention(then, call, spec, layer, ctx["image_mask"], (q, k, v), (win_k, win_v))
        other = g.branch()
        out = g.op(
            "If",
            [call.has_block],
            then_branch=then.graph([(exact, F32)]),
            else_branch=other.graph([(other.op("Identity", [out]), F32)]),
        )
    return g.linear(out, w.get(pre + "o_proj.weight"), pre + "o_proj", rec.decoder)


def _layer(g: GraphBuilder, spec: ModelSpec, i: int, x: str, ctx: dict[str, Any]) -> str:
    w, rec = ctx["weights"], ctx["recipe"]
    eps = spec.text.rms_norm_eps
    pre = f"{P}layers.{i}."
    weight = lambda n: g.weight(pre + n + ".weight", w.get(pre + n + ".weight"))  # noqa: E731
    attn = _attention(g, spec, i, spec.text.layers[i], _norm(g, x, weight("input_layernorm"), eps), ctx)
    post = _norm(g, attn, weight("post_attention_layernorm"), eps)
    h, mid = g.fresh("skipnorm"), g.fresh("residual")
    g.node(
        "SkipSimplifiedLayerNormalization",
        [post, x, weight("pre_feedforward_layernorm")],
        [h, "", "", mid],
        domain=MS_DOMAIN,
        epsilon=eps,
    )
    inter = spec.text.intermediate_size
    gate_up = stack_rows([w.get(pre + "mlp.gate_proj.weight"), w.get(pre + "mlp.up_proj.weight")])
    gu = g.linear(h, gate_up, pre + "mlp.gate_up_proj", rec.decoder)
    gate, up = g.op("Split", [gu, g.const([inter, inter], np.int64)], n_out=2, axis=-1)
    act = g.op("Mul", [g.op("Gelu", [gate], approximate="tanh"), up])
    down = g.linear(act, w.get(pre + "mlp.down_proj.weight"), pre + "mlp.down_proj", rec.decoder)
    x = g.op("Add", [mid, _norm(g, down, weight("post_feedforward_layernorm"), eps)])
    return g.op("Mul", [x, g.weight(pre + "layer_scalar", w.get(pre + "layer_scalar"))])


def build_fused_decoder(
    g: GraphBuilder,
    spec: ModelSpec,
    weights: Any,
    recipe: QuantRecipe,
    image_mask: str = "sliding",
    progress: Any = None,
) -> None:
    """Add the fast decoder to ``g``. ``weights.get(name)`` returns float32 numpy in torch layout."""
    check_image_mask(image_mask)
    t = spec.text
    ids = {
        "inputs_embeds": g.input("inputs_embeds", F32, [1, "seq", t.hidden_size]),
        "position_ids": g.input("position_ids", I64, [1, "seq"]),
        "mm_token_type_ids": g.input("mm_token_type_ids", I64, [1, "seq"]),
    }
    past = []
    for i, layer in enumerate(t.layers):
        cap = SLIDING_CAPACITY if layer.kind == SLIDING else FULL_CAPACITY
        shape: list[int | str] = [1, layer.kv_heads, cap, layer.head_dim]
        past.append(
            (g.input(f"past_key_values.{i}.key", F32, shape), g.input(f"past_key_values.{i}.value", F32, shape))
        )
    ctx: dict[str, Any] = {
        "weights": weights,
        "recipe": recipe,
        "past": past,
        "image_mask": image_mask,
        "call": _Call(g, spec, ids),
    }
    x = ids["inputs_embeds"]
    for i in range(len(t.layers)):
        x = _layer(g, spec, i, x, ctx)
        if progress is not None:
            progress(i + 1, len(t.layers))
    last = g.op("Slice", [x, g.const([-1], np.int64), g.const([INT64_MAX], np.int64), g.const([1], np.int64)])
    last = _norm(g, last, g.weight(P + "norm.weight", weights.get(P + "norm.weight")), t.rms_norm_eps)
    g.output(lm_head(g, spec, weights, recipe, last), "logits", F32, [1, 1, t.vocab_size])
    for i, layer in enumerate(t.layers):
        cap = SLIDING_CAPACITY if layer.kind == SLIDING else FULL_CAPACITY
        for part in ("key", "value"):
            g.declare_output(f"present.{i}.{part}", F32, [1, layer.kv_heads, cap, layer.head_dim])


__all__ = ["FULL_CAPACITY", "SLIDING_CAPACITY", "build_fused_decoder"]
