"""Every micro-kernel path of MatMulInt4, run through onnxruntime, against the numpy references.

Tolerance (documented in the README): the kernels quantize activations to int8 per block of 32, so against
the exact product they may be off by at most sum(|w|) × scale / 2 per block (half an int8 step), and
against the emulated int8 product only by float32 summation: 1e-5 × sum(|terms|), the terms as the kernels
sum them (with the zero point folded in: see reference.emulated).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import ConfigError
from edge.kernels.library import PATHS, resolve
from tests.kernels.reference import BLOCK, dequantize, emulated, exact, random_weights, session

SUM_RTOL = 1e-5


def _check(y: np.ndarray, x: np.ndarray, q: np.ndarray, s: np.ndarray) -> None:
    want, magnitude = emulated(x, q, s)
    np.testing.assert_array_less(np.abs(y - want), SUM_RTOL * magnitude + 1e-6)
    # the int8 bound against the exact product: half a step of each block's activation scale
    k = x.shape[-1]
    nb = -(-k // BLOCK)
    padded = np.zeros((x.shape[0], nb * BLOCK))
    padded[:, :k] = np.abs(x)
    half_step = (padded.reshape(x.shape[0], nb, BLOCK).max(-1) / 127 / 2).repeat(BLOCK, -1)[:, :k]
    bound = half_step @ np.abs(dequantize(q, s, k)).T
    np.testing.assert_array_less(np.abs(y - exact(x, q, s)), bound * (1 + 1e-4) + SUM_RTOL * magnitude + 1e-6)


@pytest.mark.parametrize("isa", PATHS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k=st.integers(1, 300),
    n=st.integers(1, 70),
    m=st.one_of(st.integers(1, 9), st.integers(10, 600)),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_path_matches_the_reference(library: Path, isa: str, k: int, n: int, m: int, seed: int) -> None:
    """Odd K and N, block tails (K % 32 ≠ 0), decode (M ≤ 4: GEMV) and prefill (M > 4: GEMM) sizes."""
    rng = np.random.default_rng(seed)
    q, s = random_weights(k, n, rng)
    x = rng.standard_normal((m, k), dtype=np.float32) * np.float32(rng.choice([1e-3, 1.0, 30.0]))
    x[:, rng.random(k) < 0.05] = 0.0  # whole zero columns: zero blocks and zero scales
    y = session([None, k], q, s, k, isa=isa, library=library).run(None, {"x": x})[0]
    assert y.shape == (m, n) and y.dtype == np.float32
    _check(y, x, q, s)


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize(("m", "k", "n"), [(1, 1536, 2048), (3, 6144, 96), (288, 1536, 160), (7, 4000, 49)])
def test_decoder_sized_shapes(library: Path, isa: str, m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m + k + n)
    q, s = random_weights(k, n, rng)
    x = rng.standard_normal((1, m, k), dtype=np.float32)  # the decoder's [batch, sequence, K]
    y = session([1, None, k], q, s, k, isa=isa, library=library).run(None, {"x": x})[0]
    assert y.shape == (1, m, n)
    _check(y[0], x[0], q, s)


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("k", [1, 33, 40, 97, 130])
@pytest.mark.parametrize("m", [1, 5, 97])
def test_partial_block_next_to_padding_blocks(library: Path, isa: str, k: int, m: int) -> None:
    """A row's partial last block shares a group of 4 blocks with zero padding blocks (K = 40: blocks 2, 3)."""
    rng = np.random.default_rng(k * 1000 + m)
    q, s = random_weights(k, 37, rng)
    x = rng.standard_normal((m, k), dtype=np.float32)
    y = session([None, k], q, s, k, isa=isa, library=library).run(None, {"x": x})[0]
    _check(y, x, q, s)


@pytest.mark.parametrize(
    ("m", "k", "n", "sibling"),
    [(1, 1536, 96, "avx2"), (4, 4000, 49, "avx2"), (97, 130, 37, "avx512vnni"), (288, 1536, 70, "avx512vnni")],
)
def test_avxvnni_is_bit_identical_to_its_siblings(library: Path, m: int, k: int, n: int, sibling: str) -> None:
    """AVX-VNNI's GEMV sums what AVX2's does, and its GEMM what AVX-512 VNNI's does, in the same order."""
    try:
        for isa in ("avxvnni", sibling):
            resolve(library, isa)
    except ConfigError as exc:
        pytest.skip(f"this CPU cannot run both paths: {exc}")
    rng = np.random.default_rng(m * k + n)
    q, s = random_weights(k, n, rng)
    x = rng.standard_normal((m, k), dtype=np.float32)
    ours, theirs = (
        session([None, k], q, s, k, isa=isa, library=library).run(None, {"x": x})[0] for isa in ("avxvnni", sibling)
    )
    np.testing.assert_array_equal(ours, theirs)


def test_agrees_with_matmulnbits_at_decode(library: Path) -> None:
    """Same bytes, same int8 activation scheme as MatMulNBits at accuracy level 4: equal up to float32 rounding."""
    rng = np.random.default_rng(7)
    k, n = 1536, 256
    q, s = random_weights(k, n, rng)
    x = rng.standard_normal((1, k), dtype=np.float32)
    ours = session([1, k], q, s, k, library=library).run(None, {"x": x})[0]
    theirs = session([1, k], q, s, k, op="MatMulNBits").run(None, {"x": x})[0]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())


def test_empty_sequence(library: Path) -> None:
    q, s = random_weights(64, 8, np.random.default_rng(0))
    y = session([1, None, 64], q, s, 64, library=library).run(None, {"x": np.zeros((1, 0, 64), np.float32)})[0]
    assert y.shape == (1, 0, 8)


def test_bad_attributes_and_shapes_are_named(library: Path) -> None:
    q, s = random_weights(64, 8, np.random.default_rng(0))
    x = np.ones((1, 64), np.float32)
    with pytest.raises(Exception, match="bits 4, block_size 32"):
        session([1, 64], q, s, 64, library=library, bits=8).run(None, {"x": x})
    with pytest.raises(Exception, match="last dimension must be K = 64"):
        session([1, None], q, s, 64, library=library).run(None, {"x": np.ones((1, 63), np.float32)})
    with pytest.raises(Exception, match=r"B must hold N × ceil\(K / 32\) × 16 bytes"):
        session([1, 96], q, s, 96, library=library).run(None, {"x": np.ones((1, 96), np.float32)})
    with pytest.raises(Exception, match="unknown kernel path"):
        session([1, 64], q, s, 64, library=library, isa="sse9").run(None, {"x": x})
