"""Write the variation model as an ONNX graph in anomalib's export contract (needs the ``onnx`` package).

Input ``input`` float32 ``[B, 3, H, W]`` (B dynamic, H×W the working size); outputs, in order, ``pred_score``
``[B]``, ``pred_label`` ``[B]``, ``anomaly_map`` ``[B, 1, H, W]``, ``pred_mask`` ``[B, 1, H, W]``. The
normalization is anomalib's, frozen as constants: ``clip((raw − threshold) / span + 0.5, 0, 1)``, so 0.5 is the
calibrated threshold. ``normalization=None`` leaves the raw deviation unclipped (used while calibrating).

>>> model = variation_model(stats, Normalization(threshold=7.9, span=9.2))
>>> onnx.save(model, "gate/image.onnx")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge.gate.variation import VariationStats, gaussian_kernel

if TYPE_CHECKING:
    import onnx

OPSET = 17
IR_VERSION = 8  # onnx ≥ 1.20 writes IR 14 by default; onnxruntime 1.31 reads at most 13


@dataclass(frozen=True)
class Normalization:
    """anomalib's min-max normalization around the threshold: ``(raw − threshold) / span + 0.5``, clipped."""

    threshold: float
    span: float


def variation_model(stats: VariationStats, normalization: Normalization | None) -> onnx.ModelProto:
    """The ONNX model computing the variation model's deviation map and score (see :mod:`edge.gate.variation`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    _, h, w = stats.lo.shape
    kernel = gaussian_kernel(stats.params.smooth_sigma)
    r = kernel.shape[0] // 2
    consts = {
        "lo": stats.lo[None],
        "hi": stats.hi[None],
        "inv_sigma": stats.inv_sigma[None],
        "zero": np.zeros((), np.float32),
        "kernel": kernel[None, None],
        "pads": np.array([0, 0, r, r, 0, 0, r, r], np.int64),
    }
    nodes = [
        helper.make_node("Sub", ["lo", "input"], ["below"]),
        helper.make_node("Sub", ["input", "hi"], ["above"]),
        helper.make_node("Max", ["below", "above", "zero"], ["outside"]),
        helper.make_node("Mul", ["outside", "inv_sigma"], ["z"]),
        helper.make_node("ReduceMax", ["z"], ["z_max"], axes=[1], keepdims=1),
        helper.make_node("Pad", ["z_max", "pads"], ["z_pad"], mode="edge"),
        helper.make_node("Conv", ["z_pad", "kernel"], ["raw_map"]),
        helper.make_node("ReduceMax", ["raw_map"], ["raw_score"], axes=[1, 2, 3], keepdims=0),
    ]
    if normalization is None:
        nodes += [
            helper.make_node("Identity", ["raw_score"], ["pred_score"]),
            helper.make_node("Identity", ["raw_map"], ["anomaly_map"]),
        ]
    else:
        consts.update(
            offset=np.array(-normalization.threshold, np.float32),
            scale=np.array(1.0 / normalization.span, np.float32),
            half=np.array(0.5, np.float32),
            one=np.array(1.0, np.float32),
        )
        for raw, out in (("raw_score", "pred_score"), ("raw_map", "anomaly_map")):
            nodes += [
                helper.make_node("Add", [raw, "offset"], [f"{out}_c"]),
                helper.make_node("Mul", [f"{out}_c", "scale"], [f"{out}_s"]),
                helper.make_node("Add", [f"{out}_s", "half"], [f"{out}_h"]),
                helper.make_node("Clip", [f"{out}_h", "zero", "one"], [out]),
            ]
    half = "half" if normalization is not None else "zero"
    nodes += [
        helper.make_node("Greater", ["pred_score", half], ["pred_label"]),
        helper.make_node("Greater", ["anomaly_map", half], ["pred_mask"]),
    ]
    graph = helper.make_graph(
        nodes,
        "edge_inspector_variation_model",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["B", 3, h, w])],
        [
            helper.make_tensor_value_info("pred_score", TensorProto.FLOAT, ["B"]),
            helper.make_tensor_value_info("pred_label", TensorProto.BOOL, ["B"]),
            helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["B", 1, h, w]),
            helper.make_tensor_value_info("pred_mask", TensorProto.BOOL, ["B", 1, h, w]),
        ],
        initializer=[numpy_helper.from_array(v, name=k) for k, v in consts.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edge-inspector gate fit"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


__all__ = ["IR_VERSION", "OPSET", "Normalization", "variation_model"]
