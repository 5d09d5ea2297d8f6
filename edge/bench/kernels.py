"""``edge bench BUNDLE --kernels``: the weight-matmul kernels on the decoder's own shapes, side by side.

The decoder's speed is almost all its int4 weight matmuls (see the README's Performance section). For
every distinct 4-bit weight shape of the bundle's decoder it times, with random weights of that shape:

- at M = 1 (a decode step), onnxruntime's ``MatMulNBits`` with the bundle's attributes and our
  ``MatMulInt4`` (edge/kernels, the micro-kernel ``EDGE_KERNELS`` selects) on the same bytes, on enough
  copies of the matrix to stream past the caches: the weight bytes each reads per second; the two take
  turns of several calls (here and at prefill), so a shared machine's load falls on both alike. Beside
  them, in the same turns, our ``ReadBytes``: a plain read of the same bytes (weights and scales) through
  the same kind of session and thread pool, the read rate the GEMV is read against with the same statistic
  (the separate bandwidth probe is a best-of reading of other bytes, minutes away);
- at M = the image prompt (a prefill), four kernels on the same matrix: ``MatMulNBits`` as the bundle
  runs it, our ``MatMulInt4``, MLAS's int8 GEMM (``DynamicQuantizeMatMul`` on pre-packed int8 weights:
  the speed an int4 kernel that widens to int8 in registers can approach), and fp32 ``MatMul`` (the
  class of kernel PyTorch eager uses).

The int8 GEMM is a reference, not an option: it needs an int8 copy of every weight (twice the int4
bundle, which a 12B model on a 16 GB station cannot afford), and widening the int4 weights to int8
inside the graph at run time costs more than it saves (``DequantizeLinear`` + ``QuantizeLinear``
before ``MatMulInteger``: 1.4× slower than ``MatMulNBits`` at M = 290 and 5× at M = 64, measured).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edge.kernels.library import DOMAIN, ENV, OP, KernelChoice, choose_kernels
from edge.kernels.swap import Swapped, swap

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


def _cpu_session(model: Any, threads: int, cwd: Path | None = None, library: Path | None = None) -> Any:
    """An onnxruntime CPU session on ``model`` (a ModelProto or its bytes); ``cwd`` is where its external data lies.

    A model given as bytes finds external data relative to the working directory. ``library``: a
    custom-op library to register (our kernels).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    if library is not None:
        opts.register_custom_ops_library(str(library))
    data = model if isinstance(model, bytes) else model.SerializeToString()
    with contextlib.chdir(cwd or Path.cwd()):
        return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _model(nodes: list[Any], inits: list[Any], k: int, m: int) -> bytes:
    """A serialized graph of ``nodes`` on input ``x`` ``[m, k]``, with ``inits`` as its initializers."""
    from onnx import TensorProto, helper

    def out_type(node: Any) -> int:
        return TensorProto.INT64 if node.op_type == "ReadBytes" else TensorProto.FLOAT

    outs = [helper.make_tensor_value_info(n.output[0], out_type(n), None) for n in nodes]
    graph = helper.make_graph(nodes, "kernels", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])], outs)
    graph.initializer.extend(inits)
    opsets = [helper.make_opsetid(d, v) for d, v in (("", 21), ("com.microsoft", 1), (DOMAIN, 1))]
    # onnx 1.20 writes IR version 14 by default; onnxruntime 1.31 reads at most 13
    return bytes(helper.make_model(graph, opset_imports=opsets, ir_version=10).SerializeToString())


def _session(nodes: list[Any], inits: list[Any], k: int, m: int, threads: int, library: Path | None = None) -> Any:
    return _cpu_session(_model(nodes, inits, k, m), threads, library=library)


def _median_s(sess: Any, feeds: dict[str, np.ndarray], repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``sess.run`` after ``warmup`` runs (the first one also pre-packs weights)."""
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


TURNS = 3  # each kernel's turns in _turns_median_s
TURN_WARMUP = 3  # untimed calls that open each turn


def _turns_median_s(
    models: list[tuple[bytes, Path | None]],
    threads: int,
    feeds: dict[str, np.ndarray],
    repeats: int,
    cwd: Path | None = None,
) -> list[float]:
    """Median seconds of a session's ``run`` on each ``(model, custom-op library)``, the kernels taking turns.

    Each kernel gets ``TURNS`` turns, and only one session exists at a time: a turn opens a session, makes
    ``TURN_WARMUP`` untimed calls and ``repeats`` timed ones back to back (as a decode step calls its matmuls),
    then closes it, which stops its thread pool. Turns put both kernels under the same load on a shared
    machine. Both sessions alive and taking turns call by call (one untimed call before each timed one)
    halved both kernels' figures on 2-core VMs (the AVX2 EPYC; on the Zen 4 EPYC at M = 1 9.4-12.4 GB/s for
    ``MatMulNBits`` and 11-13 for ours, against 15-21 and 19-26 with one session at a time; ours at M = 288
    199-315 GFLOP/s against 440-553), and turns of a few calls with both alive did not fix it: the idle
    session's workers keep spinning on a core for milliseconds after its last call.
    """
    times: list[list[float]] = [[] for _ in models]
    for _ in range(TURNS):
        for (model, library), out in zip(models, times, strict=True):
            sess = _cpu_session(model, threads, cwd=cwd, library=library)
            for _ in range(TURN_WARMUP):
                sess.run(None, feeds)
            for _ in range(repeats):
                t = time.perf_counter()
                sess.run(None, feeds)
                out.append(time.perf_counter() - t)
            del sess
    return [statistics.median(t) for t in times]


def _choice(kernels: str | None) -> KernelChoice:
    """Our kernel path for ``kernels`` (an ``EDGE_KERNELS`` value), or the environment's when None, as sessions do."""
    return choose_kernels(kernels if kernels is not None else os.environ.get(ENV))


def _x(k: int, m: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).standard_normal((m, k), dtype=np.float32)}


def matmul_ceiling(bundle: Path, threads: int, repeats: int = 20, kernels: str | None = None) -> dict[str, Any]:
    """Steps/s of the decoder's weight matmuls alone (every MatMulNBits/MatMul node once, M = 1).

    A graph with just those nodes, on the bundle's own weight file, run like one decode step on the
    kernels the engine runs (``kernels`` as EDGE_KERNELS; None reads it): the fastest these kernels
    stream the weights, whatever the rest of the graph does. On our kernels, the same graph with every
    node a ``ReadBytes`` of its weights and scales takes turns with it (``read_steps_per_s``): how fast
    this process reads those bytes at all, measured the same way at the same time.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(bundle / "decoder.onnx"), load_external_data=False)
    inits = {i.name: i for i in model.graph.initializer}
    nodes: list[Any] = []
    inputs: dict[str, Any] = {}
    outputs: list[Any] = []
    used: set[str] = set()
    for node in model.graph.node:
        if node.op_type not in ("MatMulNBits", "MatMul") or node.input[1] not in inits:
            continue
        w = inits[node.input[1]]
        k = next((a.i for a in node.attribute if a.name == "K"), None) if node.op_type == "MatMulNBits" else w.dims[0]
        name = f"x{k}"
        inputs.setdefault(name, helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1, k]))
        out = node.output[0] + "_ceiling"
        nodes.append(helper.make_node(node.op_type, [name, *node.input[1:]], [out], domain=node.domain))
        nodes[-1].attribute.extend(node.attribute)
        outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, None))
        used.update(node.input[1:])
    graph = helper.make_graph(nodes, "ceiling", list(inputs.values()), outputs, [inits[n] for n in used])
    ceiling = helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    choice = _choice(kernels)
    # as the runtime swaps the decoder: its int4 nodes and its int8 LM head
    done = (
        swap(ceiling.SerializeToString(), choice.isa, attention=False, int8=True) if choice.isa else Swapped(b"", 0, 0)
    )
    swapped = done.matmuls
    feeds = {name: np.random.default_rng(0).standard_normal((1, 1, int(name[1:])), dtype=np.float32) for name in inputs}
    # on the bundle's own weight file; ReadBytes (our library) reads a node's weights and scales, so a graph
    # with other weight inputs (zero points, fp32 MatMul) gets no read ceiling
    matmuls = (done.model, choice.library) if swapped else (ceiling.SerializeToString(), None)
    readable = all(n.op_type == "MatMulNBits" and len([i for i in n.input if i]) == 3 for n in nodes)
    if not swapped or not readable or choice.isa is None:
        sess = _cpu_session(matmuls[0], threads, cwd=bundle, library=matmuls[1])
        steps = 1.0 / _median_s(sess, feeds, repeats, warmup=3)
        label = choice.label if swapped else "matmulnbits"
        return {"steps_per_s": steps, "nodes": len(nodes), "kernels": label, "read_steps_per_s": None}
    reads = _reads(nodes, choice.isa)
    graph = helper.make_graph(
        reads,
        "read ceiling",
        list(inputs.values()),
        [helper.make_tensor_value_info(n.output[0], TensorProto.INT64, None) for n in reads],
        [inits[n] for n in used],
    )
    read = helper.make_model(graph, opset_imports=[*model.opset_import, helper.make_opsetid(DOMAIN, 1)])
    read.ir_version = model.ir_version
    step_s, read_s = _turns_median_s(
        [matmuls, (read.SerializeToString(), choice.library)], threads, feeds, repeats, bundle
    )
    return {
        "steps_per_s": 1.0 / step_s,
        "nodes": len(nodes),
        "kernels": choice.label,
        "read_steps_per_s": 1.0 / read_s,
    }


def _ours(nodes: list[Any], isa: str) -> list[Any]:
    """The same nodes on our kernel: MatMulInt4 reads exactly MatMulNBits' inputs and attributes."""
    from onnx import helper

    out = []
    for node in nodes:
        new = helper.make_node(OP, list(node.input), list(node.output), domain=DOMAIN)
        new.attribute.extend(node.attribute)
        new.attribute.append(helper.make_attribute("isa", isa))
        out.append(new)
    return out


def _reads(nodes: list[Any], isa: str) -> list[Any]:
    """One ReadBytes node per MatMulNBits node, on its weights and scales: reading the bytes, and nothing else."""
    from onnx import helper

    return [
        helper.make_node("ReadBytes", list(node.input[1:3]), [node.output[0]], domain=DOMAIN, isa=isa) for node in nodes
    ]


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


def kernel_table(
    bundle: Path, threads: int, repeats: int = 5, prefill_m: int = PREFILL_M, kernels: str | None = None
) -> list[dict[str, Any]]:
    """One row per distinct decoder weight shape: M = 1 bytes/s and M = ``prefill_m`` GFLOP/s per kernel.

    ``kernels``: which of our micro-kernels (``EDGE_KERNELS`` values; None reads ``EDGE_KERNELS``, unset = auto;
    ``off`` = leave ours out).
    """
    from onnx import helper, numpy_helper

    choice = _choice(kernels)
    rows = []
    rng = np.random.default_rng(0)
    for shape in decoder_shapes(bundle):
        k, n = shape["K"], shape["N"]
        blocks = math.ceil(k / shape["block_size"])
        one = n * blocks * (shape["block_size"] // 2 + 4)  # packed int4 + one fp32 scale per block
        copies = min(MAX_COPIES, max(1, math.ceil(CACHE_BYTES / one)))
        nodes, inits = _nbits(shape, copies, rng)
        row: dict[str, Any] = {**shape, "prefill_m": prefill_m, "kernels": choice.label}

        models: list[tuple[bytes, Path | None]] = [(_model(nodes, inits, k, 1), None)]
        if choice.isa:
            models.append((_model(_ours(nodes, choice.isa), inits, k, 1), choice.library))
            models.append((_model(_reads(nodes, choice.isa), inits, k, 1), choice.library))
        del nodes, inits
        decode_s = [s / copies for s in _turns_median_s(models, threads, _x(k, 1), repeats)]
        row.update(decode_bytes_per_s=one / decode_s[0], decode_us=decode_s[0] * 1e6)
        if choice.isa:
            row["edge_decode_bytes_per_s"] = one / decode_s[1]
            row["read_bytes_per_s"] = one / decode_s[2]
        del models

        flop = 2.0 * prefill_m * k * n / 1e9
        nodes, inits = _nbits(shape, 1, rng)
        models = [(_model(nodes, inits, k, prefill_m), None)]
        if choice.isa:
            models.append((_model(_ours(nodes, choice.isa), inits, k, prefill_m), choice.library))
        prefill_s = _turns_median_s(models, threads, _x(k, prefill_m), repeats)
        row["nbits_gflop_s"] = flop / prefill_s[0]
        if choice.isa:
            row["edge_gflop_s"] = flop / prefill_s[1]
        w8 = numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), "w8")
        s8 = numpy_helper.from_array(rng.random(n, dtype=np.float32) * 0.01, "s8")
        node = helper.make_node("DynamicQuantizeMatMul", ["x", "w8", "s8"], ["y"], domain="com.microsoft")
        sess = _session([node], [w8, s8], k, prefill_m, threads)
        row["int8_gflop_s"] = flop / _median_s(sess, _x(k, prefill_m), repeats)
        w32 = numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "w32")
        sess = _session([helper.make_node("MatMul", ["x", "w32"], ["y"])], [w32], k, prefill_m, threads)
        row["fp32_gflop_s"] = flop / _median_s(sess, _x(k, prefill_m), repeats)
        rows.append(row)
    return rows


def format_kernels(rows: list[dict[str, Any]], bandwidth_bytes_s: float | None = None) -> str:
    m = rows[0]["prefill_m"] if rows else PREFILL_M
    ours = rows[0]["kernels"] if rows and "edge_gflop_s" in rows[0] else None

    def share(bytes_s: float | None) -> str:
        if bytes_s is None:
            return f"{'-':>15}"
        pct = f" ({bytes_s / bandwidth_bytes_s:.0%})" if bandwidth_bytes_s else ""
        return f"{bytes_s / 1e9:>5.1f} GB/s{pct:<6}"

    def of_read(r: dict[str, Any]) -> str:
        read = r.get("read_bytes_per_s")
        return f"{'-':>15}" if read is None else f"{read / 1e9:>5.1f} GB/s ({r['edge_decode_bytes_per_s'] / read:.0%})"

    lines = [
        f"  {'weight K × N':<15} {'nodes':>5}  {'decode, M = 1':>49}  {'prefill, M = ' + str(m) + ', GFLOP/s':>50}",
        f"  {'':<15} {'':>5}  {'MatMulNBits':>16} {ours or 'ours':>16} {'read (ours ÷)':>15}  {'MatMulNBits':>11}"
        f" {ours or 'ours':>15} {'int8 GEMM':>9} {'fp32':>5} {'ours ÷ int4':>11}",
    ]
    for r in rows:
        edge = r.get("edge_gflop_s")
        lines.append(
            f"  {str(r['K']) + ' × ' + str(r['N']):<15} {r['count']:>5}  "
            f"{share(r['decode_bytes_per_s'])} {share(r.get('edge_decode_bytes_per_s'))} {of_read(r)}  "
            f"{r['nbits_gflop_s']:>11.0f} {edge or 0:>15.0f} {r['int8_gflop_s']:>9.0f} {r['fp32_gflop_s']:>5.0f}"
            f" {(edge or 0) / r['nbits_gflop_s']:>10.2f}×"
        )
    if bandwidth_bytes_s:
        lines.append(f"  read bandwidth, same run (best of 3): {bandwidth_bytes_s / 1e9:.1f} GB/s")
    if rows and "read_bytes_per_s" in rows[0]:
        lines.append(
            "  read: ReadBytes over the same bytes, in the same turns and thread pool (ours ÷ read in brackets)"
        )
    return "\n".join(lines)
