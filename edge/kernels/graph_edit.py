"""What the load-time graph rewrites share (``swap.py``, ``blocks.py``, ``gated.py``): they edit the top-level
graph of ``swap._messages``' onnx subset in place, by node position."""

from __future__ import annotations

from typing import Any

STRING_ATTRIBUTE = 3  # onnx.AttributeProto.STRING
ONNX_DOMAINS = ("", "ai.onnx")  # the standard operator set's domain, either spelling


def attribute(node: Any, name: str) -> Any | None:
    """The node's attribute ``name``, or None."""
    return next((a for a in node.attribute if a.name == name), None)


def set_string(node: Any, name: str, value: str) -> None:
    """Add a string attribute to the node."""
    node.attribute.add(name=name, s=value.encode(), type=STRING_ATTRIBUTE)


def readers(nodes: list[Any]) -> dict[str, list[int]]:
    """The positions of the nodes that read each value (as a top-level input: a branch's outer reads are not)."""
    out: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            out.setdefault(name, []).append(i)
    return out


def remove(graph: Any, positions: list[int]) -> None:
    """Delete the graph's nodes at ``positions`` (the others keep their order)."""
    for i in sorted(positions, reverse=True):
        del graph.node[i]
