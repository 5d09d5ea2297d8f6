"""Swapping MatMulNBits for MatMulInt4 on a real exported decoder, through protobuf with onnx's field numbers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
import pytest

from edge.kernels.library import DOMAIN, OP
from edge.kernels.swap import swap_matmul_nbits


def _ops(model: onnx.ModelProto) -> Counter[tuple[str, str, int]]:
    out: Counter[tuple[str, str, int]] = Counter()
    for node in model.graph.node:
        bits = next((a.i for a in node.attribute if a.name == "bits"), 0)
        out[(node.domain, node.op_type, bits)] += 1
    return out


def test_every_int4_node_is_swapped_and_nothing_else_changes(int4_bundle: Path) -> None:
    raw = (int4_bundle / "decoder.onnx").read_bytes()
    before = onnx.load_from_string(raw)
    swapped_bytes, count = swap_matmul_nbits(raw, "avx2")
    after = onnx.load_from_string(swapped_bytes)
    ops_before, ops_after = _ops(before), _ops(after)
    int4 = ops_before[("com.microsoft", "MatMulNBits", 4)]
    assert int4 > 0 and count == int4
    assert ops_after[(DOMAIN, OP, 4)] == int4 and ("com.microsoft", "MatMulNBits", 4) not in ops_after
    assert ops_after[("com.microsoft", "MatMulNBits", 8)] == ops_before[("com.microsoft", "MatMulNBits", 8)] > 0
    assert any(o.domain == DOMAIN and o.version == 1 for o in after.opset_import)
    # everything the subset does not name survives byte for byte: initializers, subgraphs, value infos, metadata
    for b, a in zip(before.graph.node, after.graph.node, strict=True):
        assert list(b.input)[:3] == list(a.input)[:3] and list(b.output) == list(a.output)
        if a.op_type == OP:
            assert {x.name: x for x in a.attribute}["isa"].s == b"avx2"
            a.op_type, a.domain = b.op_type, b.domain
            del a.attribute[-1]
        assert a == b
    assert after.graph.initializer == before.graph.initializer
    assert after.ir_version == before.ir_version and after.metadata_props == before.metadata_props


@pytest.mark.parametrize(("attrs", "inputs"), [({"accuracy_level": 0}, 3), ({"block_size": 64}, 3), ({}, 4)])
def test_nodes_our_kernel_does_not_compute_exactly_stay(attrs: dict[str, int], inputs: int) -> None:
    from onnx import TensorProto, helper

    names = ["x", "q", "s", "zp"][:inputs]
    node = helper.make_node(
        "MatMulNBits",
        names,
        ["y"],
        domain="com.microsoft",
        **{"K": 64, "N": 8, "bits": 4, "block_size": 32, "accuracy_level": 4, **attrs},
    )
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])], [])
    raw = helper.make_model(graph).SerializeToString()
    assert swap_matmul_nbits(raw, "scalar") == (raw, 0)
