"""MatMulInt8 (the decoder's int8 LM head on our kernels), each path through onnxruntime, against numpy.

The activations are quantized to int8 per block of 32 exactly as for the int4 kernels (reference
``quantize_activations``), and each block's product is exact in int32, so against that emulated product the
kernels differ only by float32 summation: 1e-5 × Σ|w|·|xq| per output. Against MatMulNBits on the same bytes
(the same activation scheme at accuracy level 4) the two agree to float32 rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.kernels.library import PATHS
from tests.kernels.reference import BLOCK, quantize_activations, session

SUM_RTOL = 1e-5


def _weights(k: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """MatMulNBits' 8-bit bytes ``[N, nb, 32]`` (every value, 0 and 255 included) and scales ``[N * nb]``."""
    nb = -(-k // BLOCK)
    q = rng.integers(0, 256, (n, nb, BLOCK), dtype=np.uint8)
    q[:, :, 0] = rng.choice(np.array([0, 128, 255], np.uint8), (n, nb))  # the extremes: |byte - 128| = 128
    s = (rng.random(n * nb, dtype=np.float32) * 0.02 + 0.001).astype(np.float32)
    return q, s


def _dequantize(q: np.ndarray, s: np.ndarray, k: int) -> np.ndarray:
    n, nb, _ = q.shape
    return ((q.astype(np.float64) - 128) * s.reshape(n, nb, 1)).reshape(n, nb * BLOCK)[:, :k]


def _run(
    x: np.ndarray, q: np.ndarray, s: np.ndarray, library: Path | None, isa: str | None = None, **kw: int
) -> np.ndarray:
    k = x.shape[-1]
    op = "MatMulInt8" if library is not None else "MatMulNBits"
    sess = session([None, k], q, s, k, op=op, isa=isa, library=library, **{"bits": 8, **kw})
    return sess.run(None, {"x": x})[0]


def _check(y: np.ndarray, x: np.ndarray, q: np.ndarray, s: np.ndarray) -> None:
    w = _dequantize(q, s, x.shape[-1])
    xq = quantize_activations(x)
    np.testing.assert_array_less(np.abs(y - xq @ w.T), SUM_RTOL * (np.abs(xq) @ np.abs(w).T) + 1e-6)


@pytest.mark.parametrize("isa", PATHS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k=st.integers(1, 700),
    n=st.one_of(st.integers(1, 70), st.integers(90, 200)),
    m=st.one_of(st.integers(1, 4), st.integers(5, 13), st.integers(90, 200)),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_path_matches_the_reference(library: Path, isa: str, k: int, n: int, m: int, seed: int) -> None:
    """Odd K and N, block tails (K % 32 ≠ 0), one to four rows per pass and more than four: row groups of the
    GEMV, or on AVX-512 VNNI the GEMM's panels (48 columns, tasks of 96 columns × 96 rows, 16-block K chunks)."""
    rng = np.random.default_rng(seed)
    q, s = _weights(k, n, rng)
    x = rng.standard_normal((m, k), dtype=np.float32) * np.float32(rng.choice([1e-3, 1.0, 30.0]))
    x[:, rng.random(k) < 0.05] = 0.0  # whole zero columns: zero blocks
    y = _run(x, q, s, library, isa)
    assert y.shape == (m, n) and y.dtype == np.float32
    _check(y, x, q, s)


@pytest.mark.parametrize("isa", PATHS)
def test_lm_head_shape_agrees_with_matmulnbits(library: Path, isa: str) -> None:
    """The bench preset's LM head at decode (K 1536, a slice of its N), against MatMulNBits on the same bytes."""
    rng = np.random.default_rng(5)
    q, s = _weights(1536, 1000, rng)
    x = rng.standard_normal((1, 1536), dtype=np.float32)
    ours, theirs = _run(x, q, s, library, isa), _run(x, q, s, None)
    _check(ours, x, q, s)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())


def test_bad_attributes_and_shapes_are_named(library: Path) -> None:
    q, s = _weights(64, 8, np.random.default_rng(0))
    x = np.ones((1, 64), np.float32)
    with pytest.raises(Exception, match="bits 8, block_size 32"):
        _run(x, q, s, library, bits=4)
    with pytest.raises(Exception, match="last dimension must be K = 64"):
        session([1, None], q, s, 64, op="MatMulInt8", library=library, bits=8).run(
            None, {"x": np.ones((1, 63), np.float32)}
        )
    with pytest.raises(Exception, match=r"B must hold N × ceil\(K / 32\) × 32 bytes"):
        _run(np.ones((1, 96), np.float32), q, s, library)
    with pytest.raises(Exception, match="unknown kernel path"):
        _run(x, q, s, library, "sse9")


@pytest.mark.parametrize("isa", PATHS)
def test_vision_shape_agrees_with_matmulnbits(library: Path, isa: str) -> None:
    """The vision graph's patch embedding at an image's 264 patches (K 6912, a slice of its N): the GEMM on
    AVX-512 VNNI. Exact against the emulated int8 product; against MatMulNBits on the same bytes as a whole,
    since at this shape it quantizes an activation block differently (on every path of ours, the GEMV ones
    too: 0.65% of the outputs, all in row 132, beyond 1e-5 of the largest; 2e-5 of the norm)."""
    rng = np.random.default_rng(6)
    q, s = _weights(6912, 100, rng)
    x = rng.standard_normal((264, 6912), dtype=np.float32)
    ours, theirs = _run(x, q, s, library, isa), _run(x, q, s, None)
    _check(ours, x, q, s)
    assert np.linalg.norm(ours - theirs) < 1e-4 * np.linalg.norm(theirs)
