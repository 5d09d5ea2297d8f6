"""Fold a fused decoder's image-block ``If`` branches into ``edge.kernels::GroupAttention`` at load.

``GroupQueryAttention`` is causal only, so the fused graph (``edge/build/graphs/fused.py``) makes an image
prompt exact with two ``If`` nodes around each layer that needs it: the first copies the resident window of
past keys and values before the cache update (and passes this call's keys and values through, to order the
two), the second recomputes the layer's attention with the full image-block mask in plain ONNX ops. Text-only
calls take both ``else`` branches, which only pass their input through.

Our ``GroupAttention`` computes the image-block mask itself from the call's ``mm_token_type_ids`` (its
optional eighth input, with the bundle's ``image_mask`` as an attribute), so here both ``If`` nodes go: the
op reads the keys and values the first one passed through, and writes the output the second one produced.
On the ``bench`` preset the branches were 57 of a 654 ms image prefill (onnxruntime's profiler, Zen 4 EPYC).

A layer is folded only when its nodes have exactly that shape: the first ``If`` with four outputs whose last
two are the op's key and value and whose ``else`` branch passes two outer values through, the second ``If``
the only reader of the op's output, with an ``else`` branch that passes it through, both on one condition,
and nothing else at the top level reading the first one's window copies. Anything else stays as exported.
"""

from __future__ import annotations

from typing import Any

from edge.kernels.graph_edit import ONNX_DOMAINS, attribute, readers, remove, set_string
from edge.kernels.library import ATTENTION_INPUTS, ATTENTION_OP, DOMAIN
from edge.spec import IMAGE_MASKS

TOKEN_TYPES = "mm_token_type_ids"  # the fused decoder's input the op derives the blocks from


def _passed_through(node: Any) -> list[str | None] | None:
    """The outer values an ``If`` node's ``else`` branch returns unchanged (Identity), one per output, or None
    for an output it computes (the window copies' empty slices)."""
    else_branch = attribute(node, "else_branch")
    if else_branch is None or not else_branch.HasField("g"):
        return None
    branch = else_branch.g
    made = {out: inner for inner in branch.node for out in inner.output}
    names: list[str | None] = []
    for value in branch.output:
        name: str | None = value.name
        while name in made:  # follow the branch's Identity nodes out to the outer value
            inner = made[name]
            identity = inner.op_type == "Identity" and inner.domain in ONNX_DOMAINS and len(inner.input) == 1
            name = inner.input[0] if identity else None
        names.append(name if name != value.name else None)
    return names


def _foldable(
    nodes: list[Any], at: int, producers: dict[str, int], read_by: dict[str, list[int]], passes: dict[str, int]
) -> tuple[int, int, str, str] | None:
    """The positions of the two ``If`` nodes of the attention node at ``at`` and the key and value the first
    passes through, when they have exactly the fused graph's shape. ``passes``: a one-output ``If`` node's
    position by the value its ``else`` branch passes through (a branch reads outer values by name, so they are
    not among the node's inputs)."""
    attention = nodes[at]
    i = producers.get(attention.input[1])
    if i is None or nodes[i].op_type != "If" or len(nodes[i].output) != 4:
        return None
    first = nodes[i]
    if list(first.output[2:]) != list(attention.input[1:3]):
        return None
    through = _passed_through(first)
    if through is None or through[2] is None or through[3] is None:
        return None
    j = passes.get(attention.output[0])
    if j is None or nodes[j].input[:1] != first.input[:1] or read_by.get(attention.output[0]):
        return None
    if any(read_by.get(name) for name in first.output[:2]):
        return None
    return i, j, through[2], through[3]


def fold_image_blocks(graph: Any, image_mask: str) -> int:
    """Fold every foldable layer's two ``If`` nodes into its ``GroupAttention`` node, in place; returns how
    many layers were folded. ``graph`` is the swapped model's top-level graph (``swap._messages`` subset)."""
    if image_mask not in IMAGE_MASKS:
        raise ValueError(f"image_mask must be one of {', '.join(IMAGE_MASKS)}, not {image_mask!r}")
    if TOKEN_TYPES not in {value.name for value in graph.input}:
        return 0
    nodes = list(graph.node)
    producers = {out: i for i, node in enumerate(nodes) for out in node.output}
    read_by = readers(nodes)
    passes = {}
    for i, node in enumerate(nodes):
        through = _passed_through(node) if node.op_type == "If" and len(node.output) == 1 else None
        if through and through[0] is not None:
            passes[through[0]] = i
    drop: list[int] = []
    for at, node in enumerate(nodes):
        if node.op_type != ATTENTION_OP or node.domain != DOMAIN or len(node.input) != ATTENTION_INPUTS:
            continue
        found = _foldable(nodes, at, producers, read_by, passes)
        if found is None:
            continue
        first, second, key, value = found
        node.input[1], node.input[2] = key, value
        node.output[0] = nodes[second].output[0]
        node.input.append(TOKEN_TYPES)
        set_string(node, "image_mask", image_mask)
        drop += [first, second]
    remove(graph, drop)
    return len(drop) // 2
