"""``edge bench --kernels`` and the matmul ceiling run the path EDGE_KERNELS forces, as the runtime does."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.bench.kernels import kernel_table, matmul_ceiling


@pytest.mark.parametrize("setting", ["scalar", "off"])
def test_forced_path_is_what_the_benchmarks_time(
    int4_bundle: Path, library: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv("EDGE_KERNELS", setting)
    rows = kernel_table(int4_bundle, threads=1, repeats=1, prefill_m=8)
    assert rows
    want = "edge-scalar" if setting == "scalar" else "matmulnbits"
    for row in rows:
        assert row["kernels"] == want
        assert ("edge_decode_bytes_per_s" in row) == ("read_bytes_per_s" in row) == (setting == "scalar")
    assert matmul_ceiling(int4_bundle, threads=1, repeats=1)["kernels"] == want
