"""Random-weight bundles at a config's shapes: generated quantized, tensor by tensor, and runnable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.build.export import ExportOptions, export_bundle
from edge.build.quantize import recipe
from edge.build.random_weights import RandomMatrix, RandomReader, stack_rows
from edge.bundle.verify import verify_bundle
from edge.errors import ConfigError
from edge.runtime.engine import Engine, GenerationParams


@pytest.fixture(scope="module")
def config_12b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge.build.fixtures.checkpoint import write_checkpoint

    return write_checkpoint("12b", tmp_path_factory.mktemp("ckpt") / "12b")  # config and tokenizer only


def test_big_matrices_are_placeholders_with_checkpoint_names(config_12b: Path) -> None:
    r = RandomReader(config_12b)
    q = r.get("model.language_model.layers.0.self_attn.q_proj.weight")
    assert isinstance(q, RandomMatrix) and q.shape == (16 * 256, 3840)  # torch layout [out, in]
    table = r.get("model.language_model.embed_tokens.weight")
    assert isinstance(table, RandomMatrix) and table.shape == (262_144, 3840)
    norm = r.get("model.language_model.layers.0.input_layernorm.weight")
    assert isinstance(norm, np.ndarray) and norm.dtype == np.float32 and norm.shape == (3840,)
    assert "model.vision_embedder.patch_dense.weight" in r  # the saved spelling resolves too
    with pytest.raises(KeyError):
        r.get("model.language_model.layers.99.mlp.up_proj.weight")


def test_placeholders_pack_like_matmulnbits() -> None:
    m = RandomMatrix((96, 100), seed=1)
    packed, scales = m.matmul_nbits(4, 32)
    assert packed.shape == (96, 4, 16) and packed.dtype == np.uint8  # K padded to 4 blocks of 32
    assert scales.shape == (96, 4) and (scales > 0).all()
    again, _ = RandomMatrix((96, 100), seed=1).matmul_nbits(4, 32)
    assert (again == packed).all()  # deterministic per name
    codes, row_scales = m.rows_int8()
    assert codes.shape == (96, 100) and codes.dtype == np.int8 and row_scales.shape == (96,)
    stacked = stack_rows([m, RandomMatrix((32, 100), seed=2)])
    assert isinstance(stacked, RandomMatrix) and stacked.shape == (128, 100)
    assert stack_rows([np.ones((2, 3)), np.zeros((1, 3))]).shape == (3, 3)
    with pytest.raises(ValueError, match="input widths"):
        stack_rows([m, RandomMatrix((4, 7), seed=3)])


def test_random_int4_bundle_verifies_and_generates(
    tmp_path: Path, tiny_ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge.build.random_weights as rw

    monkeypatch.setattr(rw, "BIG", 256)  # the placeholder path on the tiny shapes (the default is 1M elements)
    out = tmp_path / "random"
    opts = ExportOptions(recipe=recipe("int4"), random_weights=True, parity=False, context=256)
    manifest = export_bundle(str(tiny_ckpt), out, opts)
    assert manifest["parity"]["status"] == "skipped"
    verify_bundle(out)
    g = Engine(out, threads=1).generate("Describe.", params=GenerationParams(max_new_tokens=4, min_new_tokens=4))
    assert len(g.token_ids) == 4


def test_random_weights_refuse_fp32_and_parity(tmp_path: Path, tiny_ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="random-weights"):
        export_bundle(str(tiny_ckpt), tmp_path / "a", ExportOptions(recipe=recipe("fp32"), random_weights=True))
    with pytest.raises(ConfigError, match="random-weights"):
        export_bundle(str(tiny_ckpt), tmp_path / "b", ExportOptions(recipe=recipe("int4"), random_weights=True))
