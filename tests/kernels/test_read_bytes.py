"""ReadBytes (`edge bench --kernels`' read reference), each path, through onnxruntime: the XOR of every 8-byte word
of B and of the scales (each tensor's last partial word zero-padded), whatever the sizes and the chunking, so a
path that skipped or repeated a load would show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import ConfigError
from edge.kernels.library import PATHS, resolve
from tests.kernels.reference import one_node_session


def _session(isa: str, library: Path, threads: int = 2) -> Any:
    from onnx import TensorProto, helper

    node = helper.make_node("ReadBytes", ["b", "s"], ["y"], domain="edge.kernels")
    inputs = [
        helper.make_tensor_value_info("b", TensorProto.UINT8, None),
        helper.make_tensor_value_info("s", TensorProto.FLOAT, None),
    ]
    y = helper.make_tensor_value_info("y", TensorProto.INT64, None)
    return one_node_session(node, inputs, [y], isa=isa, library=library, threads=threads)


def _xor_words(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 8)
    words = np.frombuffer(padded, dtype="<u8")
    return int(np.bitwise_xor.reduce(words)) if words.size else 0


def _runs(library: Path, isa: str) -> bool:
    try:
        return resolve(library, isa) == isa
    except ConfigError:
        return False


@settings(max_examples=25, deadline=None)
@given(b_bytes=st.integers(0, 300_000), scales=st.integers(0, 20_000), seed=st.integers(0, 2**32 - 1))
def test_read_bytes_is_the_xor_of_every_word_on_each_path(library: Path, b_bytes: int, scales: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 256, b_bytes, dtype=np.uint8)
    s = rng.standard_normal(scales).astype(np.float32)
    want = _xor_words(b.tobytes()) ^ _xor_words(s.tobytes())
    for isa in [p for p in PATHS if _runs(library, p)]:
        (got,) = _session(isa, library).run(None, {"b": b, "s": s})
        assert got.shape == (1,) and int(got.view(np.uint64)[0]) == want, isa


def test_a_path_this_cpu_cannot_run_is_refused_with_the_reason(library: Path) -> None:
    refused = [isa for isa in PATHS if not _runs(library, isa)]
    if not refused:
        pytest.skip("this CPU runs every path")
    with pytest.raises(Exception, match="this CPU cannot run"):
        _session(refused[0], library).run(None, {"b": np.zeros(64, np.uint8), "s": np.zeros(4, np.float32)})
