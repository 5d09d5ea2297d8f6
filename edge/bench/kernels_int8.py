"""``edge bench BUNDLE --kernels``, second table: the int8 weight matmuls of the vision and audio graphs.

An image prompt runs the vision graph's int8 matmuls on every patch of the image before the decoder starts
(264 rows for the ``bench`` preset's 1080p frame), so their GEMM speed is part of the time to first token.
For every distinct 8-bit ``MatMulNBits`` shape of those graphs it times, at M = ``IMAGE_ROWS`` and with
random weights of that shape, ``MatMulNBits`` against our ``MatMulInt8`` on the same bytes (its GEMM where
the path has one: ``library.INT8_GEMM_PATHS``), taking turns as the int4 table's kernels do.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edge.bench.kernels import _choice, _model, _turns_median_s, _x
from edge.kernels.library import DOMAIN, INT8_GEMM_PATHS, INT8_OP

IMAGE_ROWS = 264  # the bench preset's 1080p frame: 264 patches of 48 × 48 pixels
GRAPHS = ("vision", "audio")


def int8_shapes(bundle: Path) -> list[dict[str, Any]]:
    """Distinct 8-bit ``MatMulNBits`` shapes of the vision and audio graphs, with the graph and count."""
    import onnx

    counts: Counter[tuple[str, int, int, int, int]] = Counter()
    for graph in GRAPHS:
        path = bundle / f"{graph}.onnx"
        if not path.exists():
            continue
        for node in onnx.load(str(path), load_external_data=False).graph.node:
            a = {x.name: x.i for x in node.attribute}
            if node.op_type == "MatMulNBits" and a.get("bits") == 8:
                counts[(graph, a["K"], a["N"], a.get("block_size", 32), a.get("accuracy_level", 0))] += 1
    return [
        {"graph": g, "K": k, "N": n, "block_size": b, "accuracy_level": acc, "count": c}
        for (g, k, n, b, acc), c in sorted(counts.items())
    ]


def _nodes(shape: dict[str, Any], rng: np.random.Generator, ours: str | None) -> tuple[list[Any], list[Any]]:
    """One 8-bit MatMulNBits node of ``shape`` (or MatMulInt8 on path ``ours``) and its random weights."""
    from onnx import helper, numpy_helper

    k, n, block = shape["K"], shape["N"], shape["block_size"]
    blocks = math.ceil(k / block)
    q = rng.integers(0, 256, (n, blocks, block), dtype=np.uint8)
    s = rng.random(n * blocks, dtype=np.float32) * 0.01
    inits = [numpy_helper.from_array(q, "q"), numpy_helper.from_array(s, "s")]
    op, domain = (INT8_OP, DOMAIN) if ours else ("MatMulNBits", "com.microsoft")
    node = helper.make_node(op, ["x", "q", "s"], ["y"], domain=domain)
    attrs = {"K": k, "N": n, "bits": 8, "block_size": block, "accuracy_level": shape["accuracy_level"]}
    node.attribute.extend(helper.make_attribute(name, value) for name, value in attrs.items())
    if ours:
        node.attribute.append(helper.make_attribute("isa", ours))
    return [node], inits


def int8_table(bundle: Path, threads: int, repeats: int = 5, kernels: str | None = None) -> list[dict[str, Any]]:
    """One row per distinct int8 shape of the vision and audio graphs: GFLOP/s at M = ``IMAGE_ROWS``."""
    choice = _choice(kernels)
    rows = []
    for shape in int8_shapes(bundle):
        k, n = shape["K"], shape["N"]
        theirs = _nodes(shape, np.random.default_rng(0), None)
        models: list[tuple[bytes, Path | None]] = [(_model(*theirs, k, IMAGE_ROWS), None)]
        if choice.isa:
            ours = _nodes(shape, np.random.default_rng(0), choice.isa)
            models.append((_model(*ours, k, IMAGE_ROWS), choice.library))
        seconds = _turns_median_s(models, threads, _x(k, IMAGE_ROWS), repeats)
        flop = 2.0 * IMAGE_ROWS * k * n / 1e9
        row = {**shape, "m": IMAGE_ROWS, "kernels": choice.label, "nbits_gflop_s": flop / seconds[0]}
        if choice.isa:
            row["edge_gflop_s"] = flop / seconds[1]
            row["edge_gemm"] = choice.isa in INT8_GEMM_PATHS  # else the runtime keeps MatMulNBits there
        rows.append(row)
    return rows


def format_int8(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "  (no int8 matmuls in the vision or audio graphs)"
    ours = rows[0]["kernels"] if "edge_gflop_s" in rows[0] else "ours"
    lines = [
        f"  int8 weights (vision, audio), M = {rows[0]['m']}, GFLOP/s",
        f"  {'graph':<7} {'weight K × N':<13} {'nodes':>5}  {'MatMulNBits':>11} {ours:>15} {'ours ÷ theirs':>13}",
    ]
    for r in rows:
        edge = r.get("edge_gflop_s")
        ratio = f"{edge / r['nbits_gflop_s']:>12.2f}×" if edge else f"{'-':>13}"
        note = "" if r.get("edge_gemm", True) else "  (no GEMM on this path: the runtime keeps MatMulNBits)"
        lines.append(
            f"  {r['graph']:<7} {str(r['K']) + ' × ' + str(r['N']):<13} {r['count']:>5}  "
            f"{r['nbits_gflop_s']:>11.0f} {edge or 0:>15.0f} {ratio}{note}"
        )
    return "\n".join(lines)
