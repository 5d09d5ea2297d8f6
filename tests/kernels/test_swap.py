"""Swapping MatMulNBits for MatMulInt4 on a real exported decoder, through protobuf with onnx's field numbers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
import pytest

from edge.kernels.library import DOMAIN, INT8_OP, OP
from edge.kernels.swap import swap


def _ops(model: onnx.ModelProto) -> Counter[tuple[str, str, int]]:
    out: Counter[tuple[str, str, int]] = Counter()
    for node in model.graph.node:
        bits = next((a.i for a in node.attribute if a.name == "bits"), 0)
        out[(node.domain, node.op_type, bits)] += 1
    return out


def test_every_int4_node_is_swapped_and_nothing_else_changes(int4_bundle: Path) -> None:
    raw = (int4_bundle / "decoder.onnx").read_bytes()
    before = onnx.load_from_string(raw)
    done = swap(raw, "avx2", attention=False, gated=False)
    swapped_bytes, count = done.model, done.matmuls
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


def test_the_int8_lm_head_is_swapped_when_asked(int4_bundle: Path) -> None:
    """int8 MatMulNBits nodes become MatMulInt8 only with int8=True (the runtime asks for the decoder's)."""
    raw = (int4_bundle / "decoder.onnx").read_bytes()
    before = _ops(onnx.load_from_string(raw))
    int8 = before[("com.microsoft", "MatMulNBits", 8)]
    assert int8 == 1  # the LM head
    assert swap(raw, "avx2", attention=False).int8 == 0
    done = swap(raw, "avx2", attention=False, int8=True)
    after = _ops(onnx.load_from_string(done.model))
    assert done.int8 == int8 and after[(DOMAIN, INT8_OP, 8)] == int8
    assert ("com.microsoft", "MatMulNBits", 8) not in after
    assert done.matmuls == before[("com.microsoft", "MatMulNBits", 4)] == after[(DOMAIN, OP, 4)]


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize(("attrs", "inputs"), [({"accuracy_level": 0}, 3), ({"block_size": 64}, 3), ({}, 4)])
def test_nodes_our_kernel_does_not_compute_exactly_stay(attrs: dict[str, int], inputs: int, bits: int) -> None:
    from onnx import TensorProto, helper

    names = ["x", "q", "s", "zp"][:inputs]
    node = helper.make_node(
        "MatMulNBits",
        names,
        ["y"],
        domain="com.microsoft",
        **{"K": 64, "N": 8, "bits": bits, "block_size": 32, "accuracy_level": 4, **attrs},
    )
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])], [])
    raw = helper.make_model(graph).SerializeToString()
    done = swap(raw, "scalar", attention=False, int8=True)
    assert (done.model, done.matmuls, done.int8) == (raw, 0, 0)


def test_every_attention_layer_is_swapped(int4_bundle: Path) -> None:
    from edge.kernels.library import ATTENTION_OP

    raw = (int4_bundle / "decoder.onnx").read_bytes()
    before = onnx.load_from_string(raw)
    done = swap(raw, "scalar")
    after = onnx.load_from_string(done.model)
    gqa = [n for n in before.graph.node if n.op_type == "GroupQueryAttention"]
    assert len(gqa) == 6 and done.attention == 6  # the tiny preset: [S, S, F, S, S, F]
    ours = [n for n in after.graph.node if n.op_type == ATTENTION_OP and n.domain == DOMAIN]
    assert [list(n.output) for n in ours] == [list(n.output) for n in gqa]
    windows = [{a.name: a.i for a in n.attribute}.get("local_window_size", -1) for n in ours]
    assert windows == [16, 16, -1, 16, 16, -1]  # attributes kept: the op reads them
    assert [{a.name: a for a in n.attribute}["scale"].f for n in ours] == [1.0] * 6
    assert not any(n.op_type == "GroupQueryAttention" for n in after.graph.node)
    assert swap(raw, "scalar", attention=False).attention == 0


@pytest.mark.parametrize(
    "attrs",
    [{"softcap": 30.0}, {"do_rotary": 1}, {"smooth_softmax": 1}, {"sliding_window_cache": 2}, {"k_quant_type": 1}],
)
def test_attention_our_op_does_not_compute_exactly_stays(attrs: dict[str, float]) -> None:
    from onnx import TensorProto, helper

    names = ["q", "k", "v", "pk", "pv", "lens", "total"]
    node = helper.make_node(
        "GroupQueryAttention", names, ["o", "ppk", "ppv"], domain="com.microsoft", num_heads=2, kv_num_heads=1, **attrs
    )
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("q", TensorProto.FLOAT, None)], [])
    raw = helper.make_model(graph).SerializeToString()
    assert swap(raw, "scalar").attention == 0
    node = graph.node[0]  # make_graph copied it
    node.attribute.clear()
    node.attribute.extend([helper.make_attribute("num_heads", 2), helper.make_attribute("kv_num_heads", 1)])
    assert swap(helper.make_model(graph).SerializeToString(), "scalar").attention == 1
    node.input.append("cos_cache")
    assert swap(helper.make_model(graph).SerializeToString(), "scalar").attention == 0


@pytest.mark.parametrize("image_mask", ["sliding", "all"])
def test_image_block_branches_fold_into_our_attention(int4_bundle: Path, image_mask: str) -> None:
    """Each sliding layer's two If nodes go (the tiny bundle is exported with the sliding mask): our op reads
    the keys and values the first passed through, writes the output the second produced, and takes the call's
    mm_token_type_ids and the bundle's mask. Without a mask, or on onnxruntime's attention, they stay."""
    from edge.kernels.library import ATTENTION_OP

    raw = (int4_bundle / "decoder.onnx").read_bytes()
    before = onnx.load_from_string(raw)
    ifs = [n for n in before.graph.node if n.op_type == "If"]
    assert len(ifs) == 8  # 2 for each of the 4 sliding layers
    done = swap(raw, "scalar", image_mask=image_mask)
    after = onnx.load_from_string(done.model)
    assert done.image_blocks == 4 and not any(n.op_type == "If" for n in after.graph.node)
    known = {v.name for v in after.graph.input} | {t.name for t in after.graph.initializer} | {""}
    for node in after.graph.node:  # every name still produced before it is read
        assert set(node.input) <= known, node.name
        known |= set(node.output)
    ours = [n for n in after.graph.node if n.op_type == ATTENTION_OP]
    folded = [n for n in ours if len(n.input) == 8]
    assert [n.input[7] for n in folded] == ["mm_token_type_ids"] * 4
    assert {next(a.s for a in n.attribute if a.name == "image_mask") for n in folded} == {image_mask.encode()}
    assert {n.output[0] for n in folded} == {n.output[0] for n in ifs if len(n.output) == 1}
    passed = {n.output[2]: n for n in ifs if len(n.output) == 4}
    assert not {i for n in folded for i in n.input[1:3]} & set(passed)  # the If's inputs, not its outputs
    assert swap(raw, "scalar").image_blocks == 0
    assert swap(raw, "scalar", attention=False, image_mask=image_mask).image_blocks == 0
    with pytest.raises(ValueError, match="image_mask must be one of sliding, all, not 'causal'"):
        swap(raw, "scalar", image_mask="causal")


def test_geglu_activations_fold_into_gated_gelu(int4_bundle: Path) -> None:
    """Every layer's Split → Gelu(tanh) → Mul becomes one GatedGelu on the gate/up matmul's output, writing the
    Mul's output; the other Splits (the fused Q/K/V) stay."""
    raw = (int4_bundle / "decoder.onnx").read_bytes()
    before = onnx.load_from_string(raw)
    done = swap(raw, "scalar")
    after = onnx.load_from_string(done.model)
    gelus = [n for n in before.graph.node if n.op_type == "Gelu"]
    assert len(gelus) == 6 and done.gated == 6
    ours = [n for n in after.graph.node if n.op_type == "GatedGelu" and n.domain == DOMAIN]
    producers = {o: n for n in after.graph.node for o in n.output}
    assert [producers[n.input[0]].op_type for n in ours] == ["MatMulInt4"] * 6
    muls = {o for n in before.graph.node if n.op_type == "Mul" for o in n.output}
    assert {n.output[0] for n in ours} <= muls
    assert not any(n.op_type == "Gelu" for n in after.graph.node)
    splits = sum(n.op_type == "Split" for n in before.graph.node)
    assert sum(n.op_type == "Split" for n in after.graph.node) == splits - 6
    assert {next(a.s for a in n.attribute if a.name == "isa") for n in ours} == {b"scalar"}
    assert swap(raw, "scalar", gated=False).gated == 0


def test_the_kv_cache_becomes_float16_with_every_attention_layer(int4_bundle: Path) -> None:
    """With the image-block branches folded, every attention node is our op and the only reader of its cache:
    each becomes GroupAttentionF16 and its layer's cache inputs and outputs float16 (shapes kept); nothing else
    changes type. With a branch still reading the cache (no mask), or onnxruntime's attention, nothing changes."""
    from edge.kernels.half_kv import OP as HALF_OP

    raw = (int4_bundle / "decoder.onnx").read_bytes()
    before = onnx.load_from_string(raw)
    done = swap(raw, "scalar", image_mask="sliding", half_kv=True)
    after = onnx.load_from_string(done.model)
    layers = sum(n.op_type == "GroupQueryAttention" for n in before.graph.node)
    assert layers == 6 and done.half_kv == layers
    assert sum(n.op_type == HALF_OP and n.domain == DOMAIN for n in after.graph.node) == layers
    cache = {n.input[i] for n in after.graph.node if n.op_type == HALF_OP for i in (3, 4)}
    cache |= {n.output[i] for n in after.graph.node if n.op_type == HALF_OP for i in (1, 2)}
    assert len(cache) == 4 * layers
    old = {v.name: v.type for v in [*before.graph.input, *before.graph.output]}
    for v in [*after.graph.input, *after.graph.output]:
        want = onnx.TensorProto.FLOAT16 if v.name in cache else old[v.name].tensor_type.elem_type
        assert v.type.tensor_type.elem_type == want, v.name
        assert v.type.tensor_type.shape == old[v.name].tensor_type.shape
    assert swap(raw, "scalar", image_mask="sliding").half_kv == 0  # not asked for
    assert swap(raw, "scalar", half_kv=True).half_kv == 0  # the If branches still read the fp32 cache
    assert swap(raw, "scalar", attention=False, image_mask="sliding", half_kv=True).half_kv == 0
