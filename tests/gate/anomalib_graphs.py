"""Hand-built ONNX graphs in anomalib's export contract (and broken ones), for contract tests.

The working graph mimics what anomalib's exports compute around their model: an anomaly map (here the mean
absolute distance of each pixel from mid-grey, over the channels), the image score as the map's maximum,
anomalib's frozen normalization ``clip((x − thr) / (max − min) + 0.5, 0, 1)`` and the label/mask at 0.5.
Variants: score ``[B]`` (PatchCore) or ``[B, 1]`` (PaDiM in 2.6.2), batch dynamic or fixed (2.7's PatchCore: 2),
and broken ones the loader must refuse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

THRESHOLD, SPAN = 0.2, 0.4  # raw units: a map value of 0.2 above mid-grey is the threshold


def anomalib_like(
    path: Path,
    *,
    size: tuple[int, int] = (64, 64),
    batch: int | None = None,
    score_2d: bool = False,
    break_: str | None = None,
    threshold: float = THRESHOLD,
    span: float = SPAN,
    dynamic_size: bool = False,
    external_data: bool = False,
) -> Path:
    """Write the graph to ``path``. ``break_``: ``missing_output``, ``label_float``, ``map_rank3``, ``input_name``,
    ``input_rank``, ``order``, ``nan`` (a score that is NaN), or ``map_shape_lies`` (declares no output shapes
    and returns a map without its size-1 dimensions)."""
    h, w = size
    b: int | str = batch if batch is not None else "B"
    gh: int | str = "H" if dynamic_size else h
    gw: int | str = "W" if dynamic_size else w
    consts = {
        "grey": np.array(0.5, np.float32),
        "thr": np.array(threshold, np.float32),
        "inv_span": np.array(1 / span, np.float32),
        "half": np.array(0.5, np.float32),
        "zero": np.array(0.0, np.float32),
        "one": np.array(1.0, np.float32),
        "score_shape": np.array([-1, 1], np.int64),
        "squeeze_axes": np.array([1], np.int64),
        "image_shape": np.array([-1, 3, h, w], np.int64),
    }
    nodes = [
        helper.make_node("Sub", ["x", "grey"], ["centred"]),
        helper.make_node("Abs", ["centred"], ["dist"]),
        helper.make_node("ReduceMean", ["dist"], ["raw_map"], axes=[1], keepdims=1),
        helper.make_node("ReduceMax", ["raw_map"], ["raw_score"], axes=[1, 2, 3], keepdims=0),
    ]
    for raw, out in (("raw_score", "score_n"), ("raw_map", "map_n")):
        nodes += [
            helper.make_node("Sub", [raw, "thr"], [f"{out}_c"]),
            helper.make_node("Mul", [f"{out}_c", "inv_span"], [f"{out}_s"]),
            helper.make_node("Add", [f"{out}_s", "half"], [f"{out}_h"]),
            helper.make_node("Clip", [f"{out}_h", "zero", "one"], [out]),
        ]
    if break_ == "nan":
        consts["nan"] = np.array(np.nan, np.float32)
        nodes.append(helper.make_node("Mul", ["score_n", "nan"], ["score_x"]))
    else:
        nodes.append(helper.make_node("Identity", ["score_n"], ["score_x"]))
    if score_2d:
        nodes.append(helper.make_node("Reshape", ["score_x", "score_shape"], ["pred_score"]))
    else:
        nodes.append(helper.make_node("Identity", ["score_x"], ["pred_score"]))
    nodes += [
        helper.make_node("Greater", ["pred_score", "half"], ["pred_label"]),
        helper.make_node("Greater", ["map_n", "half"], ["pred_mask"]),
    ]
    map_out = "anomaly_map"
    if break_ == "map_rank3":
        nodes.append(helper.make_node("Squeeze", ["map_n", "squeeze_axes"], ["anomaly_map"]))
    elif break_ == "map_shape_lies":  # Squeeze without axes: the rank depends on B, so only a run can tell
        nodes.append(helper.make_node("Squeeze", ["map_n"], ["anomaly_map"]))
    else:
        nodes.append(helper.make_node("Identity", ["map_n"], [map_out]))
    score_shape = [b, 1] if score_2d else [b]
    outputs = [
        helper.make_tensor_value_info("pred_score", TensorProto.FLOAT, score_shape),
        helper.make_tensor_value_info("pred_label", TensorProto.BOOL, score_shape),
        helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, [b, 1, gh, gw]),
        helper.make_tensor_value_info("pred_mask", TensorProto.BOOL, [b, 1, gh, gw]),
    ]
    input_name = "input"
    input_shape: list[int | str] = [b, 3, gh, gw]
    if break_ == "missing_output":
        outputs = outputs[:3]
    elif break_ == "label_float":
        nodes = [n for n in nodes if n.output[0] != "pred_label"]
        nodes.append(helper.make_node("Identity", ["pred_score"], ["pred_label"]))
        outputs[1] = helper.make_tensor_value_info("pred_label", TensorProto.FLOAT, score_shape)
    elif break_ == "map_rank3":
        outputs[2] = helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, [b, h, w])
    elif break_ == "map_shape_lies":
        outputs = [helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type, None) for o in outputs]
    elif break_ == "order":
        outputs[0], outputs[2] = outputs[2], outputs[0]
    elif break_ == "input_name":
        input_name = "image"
    elif break_ == "input_rank":
        input_shape = [b, 3, h * w]
    if break_ == "input_rank":
        nodes.insert(0, helper.make_node("Reshape", [input_name, "image_shape"], ["x"]))
    else:
        nodes.insert(0, helper.make_node("Identity", [input_name], ["x"]))
    graph = helper.make_graph(
        nodes,
        "anomalib_like",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
        outputs,
        initializer=[numpy_helper.from_array(v, name=k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # onnx writes IR 14 by default; onnxruntime 1.31 reads at most 13
    if external_data:  # as large exports are saved: weights in a side file the graph names
        onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data", size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path


def expected_score(rgb: np.ndarray, threshold: float = THRESHOLD, span: float = SPAN) -> float:
    """What the working graph gives for a frame that is already at its input size (numpy twin, for checks)."""
    x = rgb.astype(np.float32) / 255
    raw = float(np.abs(x - 0.5).mean(axis=2).max())
    return float(np.clip((raw - threshold) / span + 0.5, 0, 1))


__all__ = ["SPAN", "THRESHOLD", "anomalib_like", "expected_score"]
