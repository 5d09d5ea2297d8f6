"""The ``bench`` preset (0.45B text parameters): int4 is at most 0.3x the fp32 bundle and runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest

from edge.build.export import ExportOptions, export_bundle
from edge.build.quantize import recipe
from tests.conftest import LiveProgress

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, progress: LiveProgress) -> Iterator[dict[str, Path]]:
    """The bench checkpoint's fp32 and int4 bundles (4 GB with the checkpoint): removed when the module ends."""
    from edge.build.fixtures.checkpoint import write_checkpoint

    root = tmp_path_factory.mktemp("bench")
    out = {}
    with progress.build_logs("bench bundles"):
        ckpt = write_checkpoint("bench", root / "ckpt")
        for quant in ("fp32", "int4"):
            out[quant] = root / quant
            # parity on bench costs minutes of PyTorch time; the tiny preset carries the parity tests
            export_bundle(str(ckpt), out[quant], ExportOptions(recipe=recipe(quant), parity=False))
    shutil.rmtree(ckpt)  # 1.8 GB no test reads
    yield out
    shutil.rmtree(root)


def _bytes(bundle: Path) -> int:
    return sum(p.stat().st_size for p in bundle.iterdir())


def test_int4_is_at_most_030_of_fp32(bench: dict[str, Path]) -> None:
    ratio = _bytes(bench["int4"]) / _bytes(bench["fp32"])
    assert ratio <= 0.3, ratio


def test_int4_decoder_matmuls_are_matmulnbits(bench: dict[str, Path]) -> None:
    model = onnx.load(str(bench["int4"] / "decoder.onnx"), load_external_data=False)
    nbits = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
    bits = {a.i for n in nbits for a in n.attribute if a.name == "bits"}
    assert len(nbits) == 12 * 4 + 1  # fused q/k/v, o, fused gate/up, down per layer; + LM head
    assert not [n for n in model.graph.node if n.op_type == "MatMul"]  # plain MatMuls only in image branches
    assert bits == {4, 8}  # int4 decoder, int8 LM head (the default recipe)


def test_edge_run_prints_text(bench: dict[str, Path]) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "run",
            str(bench["int4"]),
            "--prompt",
            "Describe any defect.",
            "--max-new-tokens",
            "8",
            "--threads",
            "2",
            "--timings",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "new tokens: 8" in proc.stderr
    from edge.runtime.engine import Engine, GenerationParams

    expected = Engine.load(bench["int4"], threads=2).generate(
        "Describe any defect.", params=GenerationParams(max_new_tokens=8)
    )
    assert proc.stdout == expected.text + "\n"  # greedy: the CLI streams exactly the engine's text
