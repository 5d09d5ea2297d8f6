"""Give the fused decoder a float16 KV cache at load: ``GroupAttention`` → ``edge.kernels::GroupAttentionF16``.

A decode step reads every cached key and value row once per layer, so at long context the cache, not the
weights, is what grows the step (the sliding layers' windows above all). GroupAttentionF16 keeps the cache in
IEEE binary16: half the bytes read and held, each row widened to fp32 in registers, all arithmetic in fp32.
This call's keys and values are rounded to binary16 (to nearest even) as the op appends them, which is the
only change to the numbers (``edge fidelity`` measures it; README, "KV cache in float16").

The bundle is unchanged: the rewrite turns each layer's cache inputs (``past_key_values.<i>.key``/``value``)
and outputs (``present.<i>.key``/``value``) into float16 tensors, so the runtime must bind float16 buffers
(``kv_cache.KVBuffers``). It applies to a graph only as a whole, and only when every attention node is our
GroupAttention and is the only reader of its layer's cache inputs and the only writer of its outputs: a graph
that still reads the cache elsewhere (an image-block ``If`` branch that was not folded, say) keeps fp32.
"""

from __future__ import annotations

from typing import Any

from edge.kernels.library import ATTENTION_OP, DOMAIN

OP = "GroupAttentionF16"
FLOAT16 = 10  # onnx.TensorProto.FLOAT16
FLOAT = 1  # onnx.TensorProto.FLOAT
_CACHE_INPUTS = (3, 4)  # past_key, past_value
_CACHE_OUTPUTS = (1, 2)  # present_key, present_value


def _reads(graph: Any, out: dict[str, int]) -> None:
    """Count every read of each value name in ``graph`` and its subgraphs (a branch's outer-scope reads too)."""
    for node in graph.node:
        for name in node.input:
            out[name] = out.get(name, 0) + 1
        for attr in node.attribute:
            if attr.HasField("g"):
                _reads(attr.g, out)


def fold_half_kv(graph: Any) -> int:
    """Make ``graph``'s KV cache float16 in place (the ``swap._messages`` subset); returns the layers changed: all
    of the graph's attention layers, or 0 when one of them cannot take it (then nothing is changed)."""
    attention = [n for n in graph.node if n.domain == DOMAIN and n.op_type == ATTENTION_OP]
    if not attention or any(n.op_type == "GroupQueryAttention" for n in graph.node):
        return 0
    inputs = {vi.name: vi for vi in graph.input}
    outputs = {vi.name: vi for vi in graph.output}
    reads: dict[str, int] = {}
    _reads(graph, reads)
    changed: list[Any] = []
    for node in attention:
        if len(node.input) <= max(_CACHE_INPUTS) or len(node.output) <= max(_CACHE_OUTPUTS):
            return 0
        past = [node.input[i] for i in _CACHE_INPUTS]
        present = [node.output[i] for i in _CACHE_OUTPUTS]
        if any(name not in inputs or reads.get(name) != 1 for name in past):
            return 0
        if any(name not in outputs or reads.get(name, 0) != 0 for name in present):
            return 0
        for vi in [inputs[name] for name in past] + [outputs[name] for name in present]:
            if not vi.HasField("type") or vi.type.tensor_type.elem_type != FLOAT:
                return 0
            changed.append(vi)
    for vi in changed:
        vi.type.tensor_type.elem_type = FLOAT16
    for node in attention:
        node.op_type = OP
    return len(attention)
