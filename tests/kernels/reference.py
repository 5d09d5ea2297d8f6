"""Plain numpy references for the int4 kernels, and tiny graphs that run one MatMulInt4 or MatMulNBits node.

Two references: ``exact`` multiplies the fp32 activations with the dequantized weights in float64 (what the
node means); ``emulated`` first quantizes the activations to int8 blocks exactly as the kernels do
(scale = max|x| / 127, x × (1 / scale) rounded half to even, all in float32), so the kernels must match it up
to float32 summation order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BLOCK = 32


def random_weights(k: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """MatMulNBits' stored bytes for a ``[K, N]`` weight: packed nibbles ``[N, nb, 16]`` and scales ``[N * nb]``."""
    nb = -(-k // BLOCK)
    q = rng.integers(0, 256, (n, nb, BLOCK // 2), dtype=np.uint8)
    s = (rng.random(n * nb, dtype=np.float32) * 0.02 + 0.001).astype(np.float32)
    return q, s


def dequantize(q: np.ndarray, s: np.ndarray, k: int) -> np.ndarray:
    """``[N, K]`` float64 weights: (nibble − 8) × scale, low nibble first."""
    n, nb, _ = q.shape
    w = np.empty((n, nb, BLOCK), np.float64)
    w[:, :, 0::2] = q & 0x0F
    w[:, :, 1::2] = q >> 4
    w = (w - 8) * s.reshape(n, nb, 1)
    return w.reshape(n, nb * BLOCK)[:, :k]


def exact(x: np.ndarray, q: np.ndarray, s: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) @ dequantize(q, s, x.shape[-1]).T


def quantize_activations(x: np.ndarray) -> np.ndarray:
    """``x`` as the kernels see it: int8 per block of 32 times the block's float32 scale (float64 result)."""
    m, k = x.shape
    nb = -(-k // BLOCK)
    padded = np.zeros((m, nb * BLOCK), np.float32)
    padded[:, :k] = x
    blocks = padded.reshape(m, nb, BLOCK)
    scale = (np.abs(blocks).max(-1, keepdims=True) / np.float32(127)).astype(np.float32)
    inv = np.divide(np.float32(1), scale, out=np.zeros_like(scale), where=scale != 0).astype(np.float32)
    codes = np.clip(np.rint(blocks * inv), -127, 127)
    return (codes.astype(np.float64) * scale.astype(np.float64)).reshape(m, nb * BLOCK)[:, :k]


def emulated(x: np.ndarray, q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernels' result in float64, and the magnitude of the float32 terms they sum per output (the scale of
    their rounding). The kernels fold the zero point: per block they compute sw·(Σ nib·xq − 8·Σ xq), two terms
    that cancel where the weights sit near 0 (nib = 8), so the magnitude counts them, not only |w|·|xq|:
    |sw·nib| ≤ |w| + 8·sw, and 8·sw·|Σ xq| ≤ 8·sw·Σ|xq|, so Σ |xq|·(|w| + 16·sw) bounds them."""
    k = x.shape[-1]
    xq = quantize_activations(x)
    w = dequantize(q, s, k)
    n, nb, _ = q.shape
    sw = np.repeat(s.reshape(n, nb).astype(np.float64), BLOCK, axis=1)[:, :k]
    return xq @ w.T, np.abs(xq) @ (np.abs(w) + 16 * sw).T


def session(
    x_shape: list[Any],
    q: np.ndarray,
    s: np.ndarray,
    k: int,
    *,
    op: str = "MatMulInt4",
    isa: str | None = None,
    library: Path | None = None,
    threads: int = 2,
    **attrs: int,
) -> Any:
    """A one-node onnxruntime session: MatMulInt4 or MatMulInt8 (our library) or com.microsoft MatMulNBits on
    these bytes (``bits=8`` for int8 ones)."""
    from onnx import TensorProto, helper, numpy_helper

    domain = "com.microsoft" if op == "MatMulNBits" else "edge.kernels"
    n = q.shape[0]
    node = helper.make_node(
        op,
        ["x", "q", "s"],
        ["y"],
        domain=domain,
        **{"K": k, "N": n, "bits": 4, "block_size": BLOCK, "accuracy_level": 4, **attrs},
    )
    return one_node_session(
        node,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        isa=isa,
        library=library,
        threads=threads,
        initializers=[numpy_helper.from_array(q, "q"), numpy_helper.from_array(s, "s")],
    )


def one_node_session(
    node: Any,
    inputs: list[Any],
    outputs: list[Any],
    *,
    isa: str | None,
    library: Path | None,
    threads: int,
    initializers: list[Any] | None = None,
) -> Any:
    """An onnxruntime session on a graph of one node (with ``isa`` as its attribute when given), our library
    registered when ``library`` is."""
    import onnxruntime as ort
    from onnx import helper

    if isa is not None:
        node.attribute.append(helper.make_attribute("isa", isa))
    graph = helper.make_graph([node], "one", inputs, outputs, initializers or [])
    # onnx 1.20 writes IR version 14 by default; onnxruntime 1.31 reads at most 13
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(node.domain, 1)], ir_version=10
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    if library is not None:
        opts.register_custom_ops_library(str(library))
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
