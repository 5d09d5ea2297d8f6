"""The daemon reports which weight-matmul kernels and which attention run, and its KV cache's type, as the
``kernels``, ``attention`` and ``kv_cache`` labels of edge_inspector_build_info."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from edge.kernels.library import library_path, resolve
from edge.serve.config import ServeConfig
from edge.serve.metrics import Metrics
from edge.serve.server import load_engine


@pytest.mark.parametrize("setting", ["auto", "off"])
def test_build_info_names_the_kernels(
    int4_bundle: Path, library: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv("EDGE_KERNELS", setting)
    registry = CollectorRegistry()
    load_engine(ServeConfig(bundle=int4_bundle, threads=1, warmup=False), Metrics(registry))
    (sample,) = [s for f in registry.collect() for s in f.samples if s.name == "edge_inspector_build_info"]
    lib = library_path()
    assert lib is not None
    want = f"edge-{resolve(lib, 'auto')}" if setting == "auto" else "matmulnbits"
    assert sample.labels["kernels"] == want and sample.value == 1
    assert sample.labels["attention"] == ("edge" if setting == "auto" else "onnxruntime")
    assert sample.labels["kv_cache"] == ("float16" if setting == "auto" else "float32")  # an int4 bundle
