"""Swap a graph's nodes for our kernels at load, on the serialized model: int4 ``MatMulNBits`` for
``edge.kernels::MatMulInt4``, int8 ones for ``edge.kernels::MatMulInt8`` (asked for: the decoder's LM head),
and ``GroupQueryAttention`` for ``edge.kernels::GroupAttention``.

The station has no ``onnx`` package, so this reads the model with protobuf and a seven-message subset of
``onnx.proto`` (same field numbers). Fields the subset does not name (initializers, value infos, node
attributes' tensors and subgraphs...) are kept as protobuf unknown fields and written back byte for byte.
A node is swapped only when our kernel computes exactly what it asks for (``library.takes``: bits 4,
block 32, accuracy level 4; ``takes_int8``: the same with 8 bits) and it has no zero points, ``g_idx`` or
bias. A ``GroupQueryAttention`` node is swapped when it has the seven inputs of a fused decoder's layer, only
attributes our op knows, and none of the features it leaves out (softcap, smooth softmax, rotary inside the
op). Everything else stays.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from edge.kernels.blocks import fold_image_blocks
from edge.kernels.gated import fold_gated_gelu
from edge.kernels.graph_edit import set_string
from edge.kernels.half_kv import fold_half_kv
from edge.kernels.library import ATTENTION_INPUTS, ATTENTION_OP, DOMAIN, INT8_OP, OP, takes, takes_int8

_PACKAGE = "edge_kernels_onnx_subset"


@functools.cache
def _messages() -> dict[str, Any]:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name=f"{_PACKAGE}.proto", package=_PACKAGE, syntax="proto2")

    def message(name: str, fields: list[tuple[str, int, int, int, str]]) -> None:
        msg = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name

    opt, rep = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    message(
        "AttributeProto",
        [
            ("name", 1, f.TYPE_STRING, opt, ""),
            ("f", 2, f.TYPE_FLOAT, opt, ""),
            ("i", 3, f.TYPE_INT64, opt, ""),
            ("s", 4, f.TYPE_BYTES, opt, ""),
            ("g", 6, f.TYPE_MESSAGE, opt, f".{_PACKAGE}.GraphProto"),  # an If node's branch
            ("type", 20, f.TYPE_INT32, opt, ""),  # an enum in onnx.proto: the same varint on the wire
        ],
    )
    message(
        "NodeProto",
        [
            ("input", 1, f.TYPE_STRING, rep, ""),
            ("output", 2, f.TYPE_STRING, rep, ""),
            ("op_type", 4, f.TYPE_STRING, opt, ""),
            ("attribute", 5, f.TYPE_MESSAGE, rep, f".{_PACKAGE}.AttributeProto"),
            ("domain", 7, f.TYPE_STRING, opt, ""),
        ],
    )
    # a graph input's or output's element type (the float16 KV cache, half_kv.py); the shape stays unknown bytes
    message("TensorTypeProto", [("elem_type", 1, f.TYPE_INT32, opt, "")])  # onnx's TypeProto.Tensor
    message("TypeProto", [("tensor_type", 1, f.TYPE_MESSAGE, opt, f".{_PACKAGE}.TensorTypeProto")])
    message(
        "ValueInfoProto",
        [("name", 1, f.TYPE_STRING, opt, ""), ("type", 2, f.TYPE_MESSAGE, opt, f".{_PACKAGE}.TypeProto")],
    )
    message(
        "GraphProto",
        [
            ("node", 1, f.TYPE_MESSAGE, rep, f".{_PACKAGE}.NodeProto"),
            ("input", 11, f.TYPE_MESSAGE, rep, f".{_PACKAGE}.ValueInfoProto"),
            ("output", 12, f.TYPE_MESSAGE, rep, f".{_PACKAGE}.ValueInfoProto"),
        ],
    )
    message("OperatorSetIdProto", [("domain", 1, f.TYPE_STRING, opt, ""), ("version", 2, f.TYPE_INT64, opt, "")])
    message(
        "ModelProto",
        [
            ("graph", 7, f.TYPE_MESSAGE, opt, f".{_PACKAGE}.GraphProto"),
            ("opset_import", 8, f.TYPE_MESSAGE, rep, f".{_PACKAGE}.OperatorSetIdProto"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in ("ModelProto",)
    }


def _matmul_op(node: Any, int8: bool) -> str | None:
    """MatMulInt4 or MatMulInt8 (``int8``: int8 nodes too) for a MatMulNBits node our kernels compute exactly."""
    if node.op_type != "MatMulNBits" or node.domain != "com.microsoft":
        return None
    attrs = {a.name: a.i for a in node.attribute}
    extra_inputs = [name for name in node.input[3:] if name]  # zero points, g_idx, bias
    if len(node.input) < 3 or extra_inputs:
        return None
    layout = (attrs.get("bits", 4), attrs.get("block_size", 0), attrs.get("accuracy_level", 0))
    if takes(*layout, zero_points=False):
        return OP
    return INT8_OP if int8 and takes_int8(*layout, zero_points=False) else None


# GroupQueryAttention's attributes GroupAttention computes (any value), and those it takes only at their default;
# a node with any other attribute (a newer onnxruntime's, say) stays on onnxruntime's op
_ATTENTION_ATTRS = {"num_heads", "kv_num_heads", "scale", "local_window_size", "sliding_window_cache"}
_ATTENTION_DEFAULTS = {"do_rotary": 0, "rotary_interleaved": 0, "softcap": 0.0, "smooth_softmax": 0, "qk_output": 0}


def _attention_swappable(node: Any) -> bool:
    if node.op_type != "GroupQueryAttention" or node.domain != "com.microsoft":
        return False
    attrs = {a.name: (a.f if a.name == "softcap" else a.i) for a in node.attribute}
    known = all(name in _ATTENTION_ATTRS or name in _ATTENTION_DEFAULTS for name in attrs)
    defaults = all(attrs.get(name, default) == default for name, default in _ATTENTION_DEFAULTS.items())
    cache = attrs.get("sliding_window_cache", 0) in (0, 1)
    extra_inputs = [name for name in node.input[ATTENTION_INPUTS:] if name]  # cos/sin caches, position ids...
    complete = len(node.input) >= ATTENTION_INPUTS and all(node.input[:ATTENTION_INPUTS])
    return complete and not extra_inputs and known and defaults and cache


@dataclass(frozen=True)
class Swapped:
    model: bytes  # the serialized model (the input itself when nothing was swapped)
    matmuls: int  # MatMulNBits -> MatMulInt4
    attention: int  # GroupQueryAttention -> GroupAttention
    int8: int = 0  # int8 MatMulNBits -> MatMulInt8
    image_blocks: int = 0  # layers whose image-block If branches GroupAttention took over (blocks.py)
    gated: int = 0  # Split -> Gelu -> Mul folded into GatedGelu (gated.py)
    half_kv: int = 0  # attention layers on GroupAttentionF16: their cache inputs and outputs are float16 (half_kv.py)


def swap(
    model: bytes,
    isa: str,
    attention: bool = True,
    int8: bool = False,
    image_mask: str | None = None,
    gated: bool = True,
    half_kv: bool = False,
) -> Swapped:
    """``model`` with every swappable node running our kernels' ``isa`` path (``attention``: also the attention;
    ``int8``: also the int8 matmuls, which MatMulInt8 reads once per row group: for a decoder's LM head;
    ``image_mask``: the bundle's, and the attention also takes over the image-block ``If`` branches; ``gated``:
    every GeGLU activation, Split → Gelu → Mul, becomes one GatedGelu node, ``gated.fold_gated_gelu``;
    ``half_kv``: the attention's cache becomes float16 where the whole graph can take it, ``half_kv.fold_half_kv``).

    The top-level graph only: the decoder's ``If`` branches hold no weight matmuls, and with ``image_mask`` the
    branches that make image prompts exact go (``blocks.fold_image_blocks``); without it they stay, plain ONNX.
    """
    classes = _messages()
    proto = classes["ModelProto"]()
    proto.ParseFromString(model)
    matmuls = attentions = int8s = 0
    for node in proto.graph.node:
        op = _matmul_op(node, int8)
        if op is not None:
            node.op_type, node.domain = op, DOMAIN
            del node.input[3:]
            matmuls += op == OP
            int8s += op == INT8_OP
        elif attention and _attention_swappable(node):
            node.op_type, node.domain = ATTENTION_OP, DOMAIN
            del node.input[ATTENTION_INPUTS:]
            attentions += 1
        else:
            continue
        set_string(node, "isa", isa)
    geglu = fold_gated_gelu(proto.graph, isa) if gated else 0
    if matmuls + attentions + int8s + geglu == 0:
        return Swapped(model, 0, 0)
    blocks = fold_image_blocks(proto.graph, image_mask) if attentions and image_mask else 0
    halves = fold_half_kv(proto.graph) if attentions and half_kv else 0
    if not any(opset.domain == DOMAIN for opset in proto.opset_import):
        proto.opset_import.add(domain=DOMAIN, version=1)
    return Swapped(proto.SerializeToString(), matmuls, attentions, int8s, blocks, geglu, halves)
