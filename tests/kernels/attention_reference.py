"""A numpy reference for grouped-query attention over a KV cache, and one-node graphs that run
edge.kernels::GroupAttention or com.microsoft GroupQueryAttention on the same inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.kernels.reference import one_node_session

NAMES = ["query", "key", "value", "past_key", "past_value", "seqlens_k", "total_sequence_length"]


@dataclass
class Case:
    """One call: ``seq`` new positions after ``past`` cached ones, in a cache of ``capacity`` rows."""

    batch: int
    seq: int
    past: int
    capacity: int
    heads: int
    kv_heads: int
    head_dim: int

    def feeds(self, rng: np.random.Generator, magnitude: float = 1.0, half: bool = False) -> dict[str, np.ndarray]:
        """Random inputs; ``half``: the cache in float16 (GroupAttentionF16's)."""
        b, s, d = self.batch, self.seq, self.head_dim
        f = lambda *shape: (rng.standard_normal(shape) * magnitude).astype(np.float32)  # noqa: E731
        cache = np.float16 if half else np.float32
        past_k = f(b, self.kv_heads, self.capacity, d).astype(cache)
        past_v = f(b, self.kv_heads, self.capacity, d).astype(cache)
        return {
            "query": f(b, s, self.heads * d),
            "key": f(b, s, self.kv_heads * d),
            "value": f(b, s, self.kv_heads * d),
            "past_key": past_k,
            "past_value": past_v,
            "seqlens_k": np.full(b, self.past + s - 1, np.int32),
            "total_sequence_length": np.array(self.past + s, np.int32),
        }


def block_ids(token_types: np.ndarray) -> np.ndarray:
    """One call's image blocks: consecutive image or video tokens (types 1, 2) share an id, others get -1."""
    is_block = (token_types == 1) | (token_types == 2)
    starts = is_block & ~np.concatenate([[False], is_block[:-1]])
    return np.where(is_block, np.cumsum(starts) - 1, -1)


def allowed_rows(past: int, seq: int, window: int, types: np.ndarray | None, image_mask: str) -> np.ndarray:
    """``[seq, past + seq]``: which rows each query sees. Causal, within the ``window`` if there is one; with
    ``types`` (the call's mm_token_type_ids) a block's queries also see their whole block, as transformers'
    masks combine the two (``image_mask``: sliding = window AND (causal OR block), all = (causal AND window)
    OR block)."""
    rows, last = np.arange(past + seq)[None, :], past + np.arange(seq)[:, None]
    causal = rows <= last
    in_window = (rows > last - window) if window else np.ones_like(causal)
    if types is None:
        return causal & in_window
    ids = block_ids(types)
    row_ids = np.concatenate([np.full(past, -1), ids])[None, :]
    same = (ids[:, None] >= 0) & (row_ids == ids[:, None])
    if window and image_mask == "sliding":
        return in_window & (causal | same)
    return (causal & in_window) | same


def reference(
    feeds: dict[str, np.ndarray],
    heads: int,
    kv_heads: int,
    scale: float,
    window: int = 0,
    image_mask: str = "sliding",
) -> list[np.ndarray]:
    """(output, present_key, present_value) in float64: the new rows appended at ``seqlens_k + 1 − seq`` (rounded
    to float16 first when the cache is float16, as GroupAttentionF16 stores them), then
    softmax attention of each query head over its KV head's rows ``allowed_rows`` gives (causal over
    ``[0, past + s]``; with a ``window``, only the last ``window`` of them, itself included; with the feeds'
    ``mm_token_type_ids``, image blocks too)."""
    q, k, v = feeds["query"], feeds["key"], feeds["value"]
    if feeds["past_key"].dtype == np.float16:
        k, v = k.astype(np.float16), v.astype(np.float16)
    present_k = feeds["past_key"].astype(np.float64)
    present_v = feeds["past_value"].astype(np.float64)
    batch, seq, _ = q.shape
    d = present_k.shape[3]
    out = np.zeros((batch, seq, heads, d))
    group = heads // kv_heads
    for b in range(batch):
        total = int(feeds["seqlens_k"][b]) + 1
        past = total - seq
        present_k[b, :, past:total] = k[b].reshape(seq, kv_heads, d).transpose(1, 0, 2)
        present_v[b, :, past:total] = v[b].reshape(seq, kv_heads, d).transpose(1, 0, 2)
        qb = q[b].reshape(seq, heads, d).astype(np.float64)
        types = feeds["mm_token_type_ids"][b] if "mm_token_type_ids" in feeds else None
        allowed = allowed_rows(past, seq, window, types, image_mask)
        for h in range(heads):
            scores = qb[:, h] @ present_k[b, h // group, :total].T * scale
            scores = np.where(allowed, scores, -np.inf)
            p = np.exp(scores - scores.max(-1, keepdims=True))
            out[b, :, h] = (p / p.sum(-1, keepdims=True)) @ present_v[b, h // group, :total]
    return [out.reshape(batch, seq, heads * d), present_k, present_v]


def session(
    heads: int,
    kv_heads: int,
    scale: float,
    *,
    op: str = "GroupAttention",
    isa: str | None = None,
    library: Path | None = None,
    threads: int = 2,
    blocks: bool = False,
    **attrs: int | str,
) -> Any:
    """A one-node session of GroupAttention or GroupAttentionF16 (our library, the second over a float16 cache)
    or com.microsoft GroupQueryAttention; ``attrs``:
    local_window_size, sliding_window_cache, image_mask; ``blocks``: GroupAttention's eighth input,
    mm_token_type_ids."""
    from onnx import TensorProto, helper

    domain = "edge.kernels" if op.startswith("GroupAttention") else "com.microsoft"
    cache = TensorProto.FLOAT16 if op == "GroupAttentionF16" else TensorProto.FLOAT
    names = [*NAMES, "mm_token_type_ids"] if blocks else NAMES
    node = helper.make_node(
        op,
        names,
        ["output", "present_key", "present_value"],
        domain=domain,
        num_heads=heads,
        kv_num_heads=kv_heads,
        scale=scale,
        **attrs,
    )
    f, i = TensorProto.FLOAT, TensorProto.INT32
    inputs = [helper.make_tensor_value_info(n, f, None) for n in NAMES[:3]]
    inputs += [helper.make_tensor_value_info(n, cache, None) for n in NAMES[3:5]]
    inputs += [
        helper.make_tensor_value_info("seqlens_k", i, None),
        helper.make_tensor_value_info("total_sequence_length", i, []),
    ]
    if blocks:
        inputs.append(helper.make_tensor_value_info("mm_token_type_ids", TensorProto.INT64, None))
    outputs = [helper.make_tensor_value_info("output", f, None)]
    outputs += [helper.make_tensor_value_info(n, cache, None) for n in ("present_key", "present_value")]
    return one_node_session(node, inputs, outputs, isa=isa, library=library, threads=threads)
