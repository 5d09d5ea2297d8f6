"""GatedGelu, each path, through onnxruntime: against a float64 numpy GeGLU, and against the onnx
Split → Gelu(approximate="tanh") → Mul it replaces.

Tolerance: tanh comes from a degree-6 exp polynomial (about 1e-7 relative) and float32 arithmetic, so an
output is within about 1e-6 × |g · u| + 1e-7 × |u| of the exact value: RTOL 4e-6 relative to |g · u|, plus an
absolute 1e-30 for the zeros.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.kernels.library import PATHS
from tests.kernels.reference import one_node_session

RTOL = 4e-6


def _session(isa: str | None, library: Path | None, threads: int = 2) -> Any:
    from onnx import TensorProto, helper

    node = helper.make_node("GatedGelu", ["x"], ["y"], domain="edge.kernels")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, None)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return one_node_session(node, [x], [y], isa=isa, library=library, threads=threads)


def reference(x: np.ndarray) -> np.ndarray:
    """gelu_tanh(gate) · up in float64, gate and up the two halves of the last axis."""
    g, u = np.split(x.astype(np.float64), 2, axis=-1)
    return 0.5 * g * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (g + 0.044715 * g**3))) * u


def _check(got: np.ndarray, x: np.ndarray) -> None:
    want = reference(x)
    g, u = np.split(np.abs(x.astype(np.float64)), 2, axis=-1)
    assert got.shape == want.shape
    np.testing.assert_array_less(np.abs(got - want), RTOL * (g * u + u) + 1e-30)


@pytest.mark.parametrize("isa", [p for p in PATHS if p != "avxvnni"])  # avxvnni runs the avx2 build
@settings(max_examples=30, deadline=None)
@given(
    lead=st.lists(st.integers(1, 5), min_size=0, max_size=2),
    half=st.one_of(st.integers(1, 40), st.integers(4090, 4200)),
    scale=st.sampled_from([0.01, 1.0, 4.0, 30.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_path_matches_the_reference(
    library: Path, isa: str, lead: list[int], half: int, scale: float, seed: int
) -> None:
    """Any leading shape, halves that are not a multiple of the vector width (the padded tail), rows longer
    than a work chunk, and gates far into both tails of tanh."""
    x = (np.random.default_rng(seed).standard_normal([*lead, 2 * half]) * scale).astype(np.float32)
    _check(_session(isa, library).run(None, {"x": x})[0], x)


@pytest.mark.parametrize("isa", [p for p in PATHS if p != "avxvnni"])
def test_a_prefill_runs_on_the_thread_pool(library: Path, isa: str) -> None:
    """287 rows of the bench preset's 2 × 6144: large enough to be split across the pool's threads."""
    x = np.random.default_rng(1).standard_normal((1, 287, 12288)).astype(np.float32)
    _check(_session(isa, library, threads=2).run(None, {"x": x})[0], x)


def test_equals_split_gelu_mul(library: Path) -> None:
    """The three onnx nodes it replaces, on the same input: within the same tolerance of each other."""
    from onnx import TensorProto, helper

    half = 96
    nodes = [
        helper.make_node("Split", ["x", "sizes"], ["gate", "up"], axis=-1),
        helper.make_node("Gelu", ["gate"], ["act"], approximate="tanh"),
        helper.make_node("Mul", ["act", "up"], ["y"]),
    ]
    sizes = helper.make_tensor("sizes", TensorProto.INT64, [2], [half, half])
    graph = helper.make_graph(
        nodes,
        "geglu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [sizes],
    )
    import onnxruntime as ort

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    onnx_ops = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = (np.random.default_rng(2).standard_normal((3, 7, 2 * half)) * 3).astype(np.float32)
    ours = _session(None, library).run(None, {"x": x})[0]
    theirs = onnx_ops.run(None, {"x": x})[0]
    g, u = np.split(np.abs(x.astype(np.float64)), 2, axis=-1)
    np.testing.assert_array_less(np.abs(ours - theirs), 2 * RTOL * (g * u + u) + 1e-30)


def test_an_odd_width_is_named(library: Path) -> None:
    with pytest.raises(
        Exception, match=r"GatedGelu: the input's last dimension must be even \(gate, then up\); got \[2, 5\]"
    ):
        _session(None, library).run(None, {"x": np.zeros((2, 5), np.float32)})
