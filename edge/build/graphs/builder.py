"""A small ONNX graph builder that streams large weights straight to external data.

Weights go to ``<graph>.onnx.data`` as soon as they are added, page-aligned so
onnxruntime can memory-map them, which keeps a 12B export's memory bounded by
one tensor. Small tensors stay inline in the model proto.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge.errors import ConfigError

OPSET = 21
MS_DOMAIN = "com.microsoft"
INLINE_LIMIT = 64 * 1024  # bytes; larger initializers are external
ALIGN = 64 * 1024  # allocation granularity on Windows; a multiple of Linux's page size
INT64_MAX = np.iinfo(np.int64).max

_NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.bool_): TensorProto.BOOL,
}


class GraphBuilder:
    """Accumulates nodes and initializers; ``save`` writes ``<name>.onnx`` (+ ``.data``).

    >>> g = GraphBuilder("audio", out_dir)
    >>> x = g.input("input_features", TensorProto.FLOAT, ["batch", "frames", 640])
    >>> g.output(g.op("Relu", [x]), "y", TensorProto.FLOAT, ["batch", "frames", 640])
    >>> g.save()
    """

    def __init__(self, name: str, out_dir: Path) -> None:
        self.name = name
        self.out_dir = Path(out_dir)
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.initializers: list[TensorProto] = []
        self._consts: dict[tuple[Any, ...], str] = {}
        self._counter = 0
        self.data_name = f"{name}.onnx.data"
        self._data_path = self.out_dir / self.data_name
        self._data: BinaryIO | None = None  # opened lazily: graphs without big weights get no data file
        self._offset = 0
        self.weight_bytes = 0

    def __enter__(self) -> GraphBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the external data file (``save`` does this too; safe to call twice)."""
        if self._data is not None:
            self._data.close()

    # -- naming ---------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    # -- graph interface ----------------------------------------------------------------------
    def input(self, name: str, elem_type: int, shape: list[int | str]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, value: str, name: str, elem_type: int, shape: list[int | str]) -> None:
        self.nodes.append(helper.make_node("Identity", [value], [name], name=f"out_{name}"))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def declare_output(self, name: str, elem_type: int, shape: list[int | str]) -> None:
        """A graph output produced under its own name by a node (no Identity in between)."""
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def op(self, op_type: str, inputs: list[str], *, n_out: int = 1, domain: str = "", **attrs: Any) -> Any:
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=outs[0], domain=domain or None, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value: Any, dtype: Any = None) -> str:
        """A small constant, de-duplicated by value."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            name = self.fresh("const")
            self.initializers.append(numpy_helper.from_array(arr, name))
            self._consts[key] = name
        return self._consts[key]

    def weight(self, name: str, arr: np.ndarray, elem_type: int | None = None, dims: list[int] | None = None) -> str:
        """A named initializer; big ones are appended to the external data file right away.

        ``elem_type``/``dims`` override the numpy view (packed int4 data is stored as uint8 bytes).
        """
        arr = np.ascontiguousarray(arr)
        etype = elem_type if elem_type is not None else _NP_TO_ONNX[arr.dtype]
        shape = list(arr.shape) if dims is None else dims
        raw = arr.tobytes()
        self.weight_bytes += len(raw)
        if len(raw) <= INLINE_LIMIT:
            t = helper.make_tensor(name, etype, shape, raw, raw=True)
        else:
            t = TensorProto(name=name, data_type=etype, dims=shape)
            offset = self._write(raw)
            t.data_location = TensorProto.EXTERNAL
            for key, val in (
                ("location", self.data_name),
                ("offset", str(offset)),
                ("length", str(len(raw))),
            ):
                entry = t.external_data.add()
                entry.key, entry.value = key, val
        self.initializers.append(t)
        return name

    def _write(self, raw: bytes) -> int:
        if self._data is None:
            self._data = open(self._data_path, "wb")  # noqa: SIM115 - closed in save()
        data = self._data
        pad = (-self._offset) % ALIGN
        if pad:
            data.write(b"\0" * pad)
            self._offset += pad
        offset = self._offset
        data.write(raw)
        self._offset += len(raw)
        return offset

    def save(self, doc: str = "") -> Path:
        self.close()
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
            producer_name="edge-inspector",
            doc_string=doc,
        )
        model.ir_version = 10
        path = self.out_dir / f"{self.name}.onnx"
        with open(path, "wb") as f:
            f.write(model.SerializeToString())
        return path

    def files(self) -> list[str]:
        names = [f"{self.name}.onnx"]
        if self._data_path.exists():
            names.append(self.data_name)
        return names

    def node(self, op_type: str, inputs: list[str], outputs: list[str], *, domain: str = "", **attrs: Any) -> None:
        """A node with caller-chosen output names (``""`` skips an optional output)."""
        named = next(o for o in outputs if o)
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=named, domain=domain or None, **attrs))

    def branch(self) -> Branch:
        """A subgraph body (``If`` branches): its own nodes; names, constants and weights shared with this graph."""
        return Branch(self)

    # -- common blocks --------------------------------------------------------------------------
    def rms_norm(self, x: str, eps: float, weight: str | None = None) -> str:
        """Gemma's RMSNorm: ``x * (mean(x²) + eps) ** -0.5 * w`` (w itself, not 1 + w)."""
        sq = self.op("Mul", [x, x])
        mean = self.op("ReduceMean", [sq, self.const([-1], np.int64)], keepdims=1)
        inv = self.op("Pow", [self.op("Add", [mean, self.const(eps, np.float32)]), self.const(-0.5, np.float32)])
        y = self.op("Mul", [x, inv])
        return self.op("Mul", [y, weight]) if weight is not None else y

    def layer_norm(self, x: str, weight: str, bias: str, eps: float) -> str:
        return self.op("LayerNormalization", [x, weight, bias], axis=-1, epsilon=eps)

    def shape_dim(self, x: str, axis: int) -> str:
        """``x.shape[axis]`` as a 1-element int64 tensor."""
        return self.op("Shape", [x], start=axis, end=axis + 1)

    def linear(self, x: str, w_out_in: np.ndarray, name: str, q: Any, bias: np.ndarray | None = None) -> str:
        """``x @ W.T (+ b)`` for a torch-layout ``[out, in]`` weight, quantized per ``q`` (a LinearQuant)."""
        from edge.build.quantize import pack_matmul_nbits
        from edge.build.random_weights import RandomMatrix

        if isinstance(w_out_in, RandomMatrix):  # random weights are generated already quantized
            if q.scheme == "fp32" or not q.symmetric:
                raise ConfigError("random-weight bundles are built with symmetric int4/int8 weights only")
            n, k = w_out_in.shape
            packed, scales = w_out_in.matmul_nbits(q.bits, q.block_size)
            zp = None
        else:
            w_kn = np.ascontiguousarray(w_out_in.T)
            k, n = w_kn.shape
            if q.scheme != "fp32":
                packed, scales, zp = pack_matmul_nbits(w_kn, q)
        if q.scheme == "fp32":
            y = self.op("MatMul", [x, self.weight(name, w_kn.astype(np.float32))])
        else:
            ins = [x, self.weight(f"{name}.q{q.bits}", packed), self.weight(f"{name}.scales", scales)]
            if zp is not None:
                ins.append(self.weight(f"{name}.zero_points", zp))
            attrs: dict[str, Any] = {"K": k, "N": n, "bits": q.bits, "block_size": q.block_size}
            if q.accuracy_level:
                attrs["accuracy_level"] = q.accuracy_level
            y = self.op("MatMulNBits", ins, domain=MS_DOMAIN, **attrs)
        if bias is not None:
            y = self.op("Add", [y, self.weight(f"{name}.bias", bias.astype(np.float32))])
        return y


class Branch(GraphBuilder):
    """Nodes of one ``If`` branch. Outer values (inputs, constants, weights) are visible by name."""

    def __init__(self, parent: GraphBuilder) -> None:  # shares the parent's state instead of its own
        self.parent = parent
        self.name = parent.name
        self.nodes = []
        self.outputs = []

    def fresh(self, hint: str) -> str:
        return self.parent.fresh(hint)

    def const(self, value: Any, dtype: Any = None) -> str:
        return self.parent.const(value, dtype)

    def weight(self, name: str, arr: np.ndarray, elem_type: int | None = None, dims: list[int] | None = None) -> str:
        return self.parent.weight(name, arr, elem_type, dims)

    def graph(self, results: Sequence[tuple[str, int]]) -> onnx.GraphProto:
        """The branch as a GraphProto returning ``results`` (value, elem_type), in order."""
        outs = []
        for value, etype in results:
            name = self.fresh("branch_out")
            self.nodes.append(helper.make_node("Identity", [value], [name], name=name))
            outs.append(helper.make_tensor_value_info(name, etype, None))
        return helper.make_graph(self.nodes, self.fresh("branch"), [], outs)


def graph_io(path: Path) -> dict[str, Any]:
    """A graph's inputs and outputs as manifest entries: name, dtype, shape (symbolic dims as names)."""
    model = onnx.load(str(path), load_external_data=False)

    def entries(values: Any) -> list[dict[str, Any]]:
        out = []
        for v in values:
            tt = v.type.tensor_type
            dims = [d.dim_param if d.dim_param else int(d.dim_value) for d in tt.shape.dim]
            out.append({"name": v.name, "dtype": helper.tensor_dtype_to_np_dtype(tt.elem_type).name, "shape": dims})
        return out

    return {"inputs": entries(model.graph.input), "outputs": entries(model.graph.output)}


def weight_matmuls(path: Path, graph: str) -> list[dict[str, Any]]:
    """A graph's MatMulNBits layouts with their node counts, as the manifest's ``weight_matmuls`` entries."""
    model = onnx.load(str(path), load_external_data=False)
    counts: Counter[tuple[int, ...]] = Counter()
    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            continue
        a = {x.name: x.i for x in node.attribute}
        zero_points = int(len(node.input) > 3 and bool(node.input[3]))
        counts[(a["K"], a["N"], a.get("bits", 4), a["block_size"], a.get("accuracy_level", 0), zero_points)] += 1
    keys = ("k", "n", "bits", "block_size", "accuracy_level", "zero_points")
    return [
        {"graph": graph, **dict(zip(keys, layout, strict=True)), "zero_points": bool(layout[-1]), "count": count}
        for layout, count in sorted(counts.items())
    ]
