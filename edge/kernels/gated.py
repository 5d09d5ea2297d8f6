"""Fold GeGLU's Split → Gelu → Mul into ``edge.kernels::GatedGelu`` at load.

The fused decoder's MLP (``edge/build/graphs/fused.py``) runs one matmul for gate and up, then
``Split`` (last axis, two outputs) → ``Gelu(approximate="tanh")`` on the first → ``Mul`` with the second.
Split copies both halves, and Gelu and Mul each read and write again: about three times the bytes of one
pass that reads the matmul's output once and writes half of it, which is what GatedGelu does. On the
``bench`` preset the three nodes were 29 of a 506 ms image prefill (onnxruntime's profiler, Zen 4 EPYC),
and they are three of every layer's nodes in each decode step.

Nodes are folded only in exactly that shape: a two-output ``Split`` on axis -1 whose first output only the
``Gelu`` reads and whose second only the ``Mul`` reads, with the ``Gelu``'s output read only by that ``Mul``.
The halves are equal because ``Mul`` multiplies them element by element (the op checks the width is even).
"""

from __future__ import annotations

from typing import Any

from edge.kernels.graph_edit import ONNX_DOMAINS, attribute, readers, remove, set_string
from edge.kernels.library import DOMAIN

OP = "GatedGelu"


def _is_tanh_gelu(node: Any) -> bool:
    approximate = attribute(node, "approximate")
    return (
        node.op_type == "Gelu" and node.domain in ONNX_DOMAINS and approximate is not None and approximate.s == b"tanh"
    )


def _match(nodes: list[Any], at: int, read_by: dict[str, list[int]]) -> tuple[int, int] | None:
    """The positions of the Gelu and Mul that make the Split at ``at`` one GeGLU activation."""
    split = nodes[at]
    axis = attribute(split, "axis")
    if split.op_type != "Split" or split.domain not in ONNX_DOMAINS or len(split.output) != 2:
        return None
    if axis is None or axis.i != -1:
        return None
    gate, up = (read_by.get(name, []) for name in split.output)
    if len(gate) != 1 or len(up) != 1:
        return None
    g, m = gate[0], up[0]
    gelu, mul = nodes[g], nodes[m]
    if not _is_tanh_gelu(gelu) or mul.op_type != "Mul" or mul.domain not in ONNX_DOMAINS:
        return None
    if sorted(mul.input) != sorted([gelu.output[0], split.output[1]]) or read_by.get(gelu.output[0]) != [m]:
        return None
    return g, m


def fold_gated_gelu(graph: Any, isa: str) -> int:
    """Fold every GeGLU activation of ``graph`` (the ``swap._messages`` subset) into one GatedGelu node running
    the ``isa`` path, in place; returns how many were folded."""
    nodes = list(graph.node)
    read_by = readers(nodes)
    drop: list[int] = []
    for at, node in enumerate(nodes):
        found = _match(nodes, at, read_by)
        if found is None:
            continue
        mul = nodes[found[1]]
        # the Split becomes the fused node: its input is ready there, and the Mul's readers all come later
        output = mul.output[0]
        del node.input[1:]
        del node.output[:]
        node.output.append(output)
        del node.attribute[:]
        node.op_type, node.domain = OP, DOMAIN
        set_string(node, "isa", isa)
        drop.extend(found)
    remove(graph, drop)
    return len(drop) // 2
