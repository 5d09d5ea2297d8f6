"""``edge bench BUNDLE --kernels``: onnxruntime's weight-matmul kernels on the decoder's own shapes.

The decoder's speed is almost all ``MatMulNBits`` (see the README's Performance section), so this
table is where a faster kernel would show. For every distinct 4-bit weight shape of the bundle's
decoder it times, with random weights of that shape:

- at M = 1 (a decode step), ``MatMulNBits`` with the bundle's attributes, on enough copies of the
  matrix to stream past the caches: the weight bytes it reads per second;
- at M = the image prompt (a prefill), three kernels on the same matrix: ``MatMulNBits`` as the
  bundle runs it, MLAS's int8 GEMM (``DynamicQuantizeMatMul`` on pre-packed int8 weights: what an
  int4 kernel that widens to int8 in registers could approach), and fp32 ``MatMul`` (the class of
  kernel PyTorch eager uses).

The int8 GEMM is a reference, not an option: it needs an int8 copy of every weight (twice the int4
bundle, which a 12B model on a 16 GB station cannot afford), and widening the int4 weights to int8
inside the graph at run time costs more than it saves (``DequantizeLinear`` + ``QuantizeLinear``
before ``MatMulInteger``: 1.4× slower than ``MatMulNBits`` at M = 290 and 5× at M = 64, measured).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

CACHE_BYTES = 256 << 20  # M = 1 copies stream at least this much, far past the 32 MiB L3 here
MAX_COPIES = 256  # ...unless the matrix is tiny (test bundles): then the figure is a cache figure
PREFILL_M = 288  # about the bench image prompt (287 tokens)


def decoder_shapes(bundle: Path) -> list[dict[str, int]]:
    """Distinct 4-bit ``MatMulNBits`` shapes of the decoder, with how often each occurs."""
    import onnx

    model = onnx.load(str(bundle / "decoder.onnx"), load_external_data=False)
    counts: Counter[tuple[int, int, int, int]] = Counter()
    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            continue
        a = {x.name: x.i for x in node.attribute}
        if a.get("bits", 4) == 4:
            counts[(a["K"], a["N"], a.get("block_size", 32), a.get("accuracy_level", 0))] += 1
    return [
        {"K": k, "N": n, "block_size": b, "accuracy_level": acc, "count": c}
        for (k, n, b, acc), c in sorted(counts.items())
    ]


def _session(nodes: list[Any], inits: list[Any], k: int, m: int, threads: int) -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    outs = [helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None) for n in nodes]
    graph = helper.make_graph(nodes, "kernels", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])], outs)
    graph.initializer.extend(inits)
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _median_s(sess: Any, k: int, m: int, repeats: int) -> float:
    feeds = {"x": np.random.default_rng(1).standard_normal((m, k), dtype=np.float32)}
    sess.run(None, feeds)  # warm-up (and pre-packing)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _nbits(shape: dict[str, int], copies: int, rng: np.random.Generator) -> tuple[list[Any], list[Any]]:
    """``copies`` MatMulNBits nodes of one shape (symmetric int4, fp32 scales, the bundle's attributes)."""
    from onnx import helper, numpy_helper

    k, n, block = shape["K"], shape["N"], shape["block_size"]
    blocks = math.ceil(k / block)
    nodes: list[Any] = []
    inits: list[Any] = []
    for i in range(copies):
        q = rng.integers(0, 256, (n, blocks, block // 2), dtype=np.uint8)
        s = rng.random(n * blocks, dtype=np.float32) * 0.01
        inits += [numpy_helper.from_array(q, f"q{i}"), numpy_helper.from_array(s, f"s{i}")]
        node = helper.make_node("MatMulNBits", ["x", f"q{i}", f"s{i}"], [f"y{i}"], domain="com.microsoft")
        node.attribute.extend(
            helper.make_attribute(name, value)
            for name, value in (
                ("K", k),
                ("N", n),
                ("bits", 4),
                ("block_size", block),
                ("accuracy_level", shape["accuracy_level"]),
            )
        )
        nodes.append(node)
    return nodes, inits


def kernel_table(bundle: Path, threads: int, repeats: int = 5, prefill_m: int = PREFILL_M) -> list[dict[str, Any]]:
    """One row per distinct decoder weight shape: M = 1 bytes/s and M = ``prefill_m`` GFLOP/s per kernel."""
    from onnx import helper, numpy_helper

    rows = []
    rng = np.random.default_rng(0)
    for shape in decoder_shapes(bundle):
        k, n = shape["K"], shape["N"]
        blocks = math.ceil(k / shape["block_size"])
        one = n * blocks * (shape["block_size"] // 2 + 4)  # packed int4 + one fp32 scale per block
        copies = min(MAX_COPIES, max(1, math.ceil(CACHE_BYTES / one)))
        nodes, inits = _nbits(shape, copies, rng)
        decode_s = _median_s(_session(nodes, inits, k, 1, threads), k, 1, repeats) / copies
        row: dict[str, Any] = {**shape, "decode_bytes_per_s": one / decode_s, "decode_us": decode_s * 1e6}
        del nodes, inits

        flops = 2.0 * prefill_m * k * n
        nodes, inits = _nbits(shape, 1, rng)
        row["nbits_gflop_s"] = (
            flops / _median_s(_session(nodes, inits, k, prefill_m, threads), k, prefill_m, repeats) / 1e9
        )
        w8 = numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), "w8")
        s8 = numpy_helper.from_array(rng.random(n, dtype=np.float32) * 0.01, "s8")
        node = helper.make_node("DynamicQuantizeMatMul", ["x", "w8", "s8"], ["y"], domain="com.microsoft")
        row["int8_gflop_s"] = (
            flops / _median_s(_session([node], [w8, s8], k, prefill_m, threads), k, prefill_m, repeats) / 1e9
        )
        w32 = numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "w32")
        node = helper.make_node("MatMul", ["x", "w32"], ["y"])
        row["fp32_gflop_s"] = (
            flops / _median_s(_session([node], [w32], k, prefill_m, threads), k, prefill_m, repeats) / 1e9
        )
        row["prefill_m"] = prefill_m
        rows.append(row)
    return rows


def format_kernels(rows: list[dict[str, Any]], bandwidth_bytes_s: float | None = None) -> str:
    m = rows[0]["prefill_m"] if rows else PREFILL_M
    lines = [
        f"  {'weight K × N':<15} {'nodes':>5}  {'decode, M = 1':>20}  {'prefill, M = ' + str(m) + ', GFLOP/s':>34}",
        f"  {'':<15} {'':>5}  {'MatMulNBits':>20}  {'MatMulNBits':>11} {'int8 GEMM':>9} {'fp32':>5}"
        f" {'int8 ÷ int4':>11}",
    ]
    for r in rows:
        share = f" ({r['decode_bytes_per_s'] / bandwidth_bytes_s:.0%})" if bandwidth_bytes_s else ""
        lines.append(
            f"  {str(r['K']) + ' × ' + str(r['N']):<15} {r['count']:>5}  "
            f"{r['decode_bytes_per_s'] / 1e9:>9.1f} GB/s{share:<6}  {r['nbits_gflop_s']:>11.0f} "
            f"{r['int8_gflop_s']:>9.0f} {r['fp32_gflop_s']:>5.0f} {r['int8_gflop_s'] / r['nbits_gflop_s']:>10.2f}×"
        )
    if bandwidth_bytes_s:
        lines.append(f"  read bandwidth, same run (best of 3): {bandwidth_bytes_s / 1e9:.1f} GB/s")
    return "\n".join(lines)
