"""``--embedding lm_head``: the token embedding gathers the tied int8 LM head's blocks, stored once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edge.build.export import ExportOptions, export_bundle
from edge.build.quantize import recipe
from edge.bundle.verify import verify_bundle
from edge.errors import ConfigError
from edge.runtime.engine import Engine


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, tiny_ckpt: Path) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "shared"
    export_bundle(str(tiny_ckpt), out, ExportOptions(recipe=recipe("int4", embedding="lm_head"), parity=False))
    return out


def test_the_table_is_stored_once(shared: Path) -> None:
    assert not (shared / "embedding.onnx.data").exists()
    model = onnx.load(str(shared / "embedding.onnx"), load_external_data=False)
    data = next(t for t in model.graph.initializer if t.name == "lm_head.q8")
    decoder = onnx.load(str(shared / "decoder.onnx"), load_external_data=False)
    head = next(t for t in decoder.graph.initializer if t.name == "lm_head.q8")
    where = {e.key: e.value for e in data.external_data} if data.external_data else None
    if where:  # the same bytes of decoder.onnx.data
        assert where == {e.key: e.value for e in head.external_data}
        assert where["location"] == "decoder.onnx.data"
    else:
        assert data.raw_data == head.raw_data
    assert model.graph.node[0].op_type == "GatherBlockQuantized"
    verify_bundle(shared)


def test_rows_match_the_fp32_table_to_int8_precision(shared: Path, fp32_bundle: Path) -> None:
    ids = np.arange(0, 300, dtype=np.int64)[None]
    want = Engine(fp32_bundle, threads=1).embed_ids(ids)
    got = Engine(shared, threads=1).embed_ids(ids)
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert 0 < rel < 0.01  # int8 blocks of 32: about 0.5 %


def test_needs_a_tied_symmetric_int8_head(tmp_path: Path, tiny_ckpt: Path) -> None:
    for bad in (recipe("int4", embedding="lm_head", lm_head="int4"), recipe("fp32", embedding="lm_head")):
        with pytest.raises(ConfigError, match="embedding lm_head"):
            export_bundle(str(tiny_ckpt), tmp_path / "x", ExportOptions(recipe=bad, parity=False))
