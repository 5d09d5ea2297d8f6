"""Weight quantization recipes and the packed layouts onnxruntime's contrib ops read.

The packing itself is done by onnxruntime's own C++ kernels (the ones its
``MatMulNBitsQuantizer`` calls), one weight at a time, so the exporter can
quantize while streaming a checkpoint instead of rewriting a finished fp32 graph.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from edge.bundle.recipe import SCHEMES, LinearQuant, QuantRecipe
from edge.errors import ConfigError

# LinearQuant and QuantRecipe live on the station side (edge/bundle/recipe.py): the manifest records them


def recipe(name: str, **overrides: Any) -> QuantRecipe:
    """The default recipe for ``--quant NAME``, with per-family overrides.

    int4 defaults (block 32, symmetric, accuracy level 4; LM head and embedding int8;
    vision and audio projections int8) were chosen by measuring the ``trained`` preset:
    see the README's recipe comparison.
    """
    if name == "fp32":
        base = QuantRecipe(name="fp32")
    elif name == "int8":
        q8 = LinearQuant("int8", block_size=32, symmetric=True, accuracy_level=4)
        base = QuantRecipe(name="int8", decoder=q8, lm_head=q8, embedding="int8", vision=q8, audio=q8)
    elif name == "int4":
        q4 = LinearQuant("int4", block_size=32, symmetric=True, accuracy_level=4)
        q8 = LinearQuant("int8", block_size=32, symmetric=True, accuracy_level=4)
        base = QuantRecipe(name="int4", decoder=q4, lm_head=q8, embedding="int8", vision=q8, audio=q8)
    else:
        raise ConfigError(f"unknown quantization {name!r}; choose one of: {', '.join(SCHEMES)}")
    dec = overrides.pop("decoder", {}) or {}
    head = overrides.pop("lm_head", None)
    out = replace(base, **overrides)
    if dec:
        out = replace(out, decoder=replace(out.decoder, **dec))
    if head is not None:
        out = replace(out, lm_head=head if isinstance(head, LinearQuant) else _linear(head, out.decoder))
    return out


def _linear(scheme: str, like: LinearQuant) -> LinearQuant:
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}")
    if scheme == "fp32":
        return LinearQuant()
    return replace(like, scheme=scheme)


def pack_matmul_nbits(w_kn: np.ndarray, q: LinearQuant) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Quantize a ``[K, N]`` MatMul weight for ``com.microsoft.MatMulNBits``.

    Returns ``(packed [N, k_blocks, blob], scales [N, k_blocks], zero_points or None)``.
    """
    from onnxruntime.capi._pybind_state import quantize_matmul_4bits, quantize_matmul_8bits

    w = np.ascontiguousarray(w_kn, dtype=np.float32)
    k, n = w.shape
    bs = q.block_size
    k_blocks = (k + bs - 1) // bs
    per_byte = 8 // q.bits
    if k_blocks * bs != k:
        w = np.ascontiguousarray(np.pad(w, ((0, k_blocks * bs - k), (0, 0))))
    packed = np.zeros((n, k_blocks, (bs + per_byte - 1) // per_byte), dtype=np.uint8)
    zero_points = np.zeros((n, (k_blocks + per_byte - 1) // per_byte), dtype=np.uint8)
    scales = np.zeros((n, k_blocks), dtype=np.float32)
    kernel = quantize_matmul_4bits if q.bits == 4 else quantize_matmul_8bits
    kernel(packed, w, scales, zero_points, bs, n, k, q.symmetric)
    return packed, scales, (None if q.symmetric else zero_points)


def quantize_rows_int8(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8 for an embedding table: ``table ≈ q * scale[:, None]``."""
    amax = np.abs(table).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(table / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def quantize_blocks_int4(table: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int4 blocks along the last axis, packed two per byte (low nibble first).

    The layout of ``com.microsoft.GatherBlockQuantized`` with ``quantize_axis`` = last and
    signed int4 data: values in [-8, 7], ``table ≈ q * scale`` per block.
    """
    rows, cols = table.shape
    if cols % block_size:
        raise ConfigError(f"embedding width {cols} is not a multiple of the int4 block size {block_size}")
    blocks = table.reshape(rows, cols // block_size, block_size)
    amax = np.abs(blocks).max(axis=2)
    scale = np.where(amax > 0, amax / 7.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(blocks / scale[:, :, None]), -8, 7).astype(np.int8).reshape(rows, cols)
    nibbles = (q & 0x0F).astype(np.uint8)
    packed = (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).astype(np.uint8)
    return packed, scale
