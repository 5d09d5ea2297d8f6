"""The 12B proof program, run on the tiny bundle: verify, fresh-process run, plan beside the measurement."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.bench.big import bench_12b, format_12b

pytestmark = pytest.mark.slow


def test_run_measures_rss_and_compares_with_the_plan(int4_bundle: Path) -> None:
    report = bench_12b(int4_bundle, threads=1, rebuild=False, context=256)
    run = report["run"]
    assert run["full"]["new_tokens"] == 32 and run["full"]["prompt_tokens"] == 256 - 32
    assert run["peak_rss_bytes"] >= run["rss_after_load_bytes"] > run["rss_before_load_bytes"] > 0
    assert run["image_ttft_s"] > 0 and run["image_ttft_first_s"] > 0 and run["load_s"] > 0
    assert report["plan"]["context"] == 256 and report["plan"]["decoder"] == "fused"
    assert report["plan_vs_peak"] == pytest.approx(report["plan"]["total_bytes"] / run["peak_rss_bytes"])
    assert set(report["targets"]) == {"peak_rss_bytes", "plan_within_10_percent", "image_ttft_s"}
    # our kernels ran, with the plan for them; then the same bundle on MatMulNBits in another process
    assert run["kernels"].startswith("edge-") and report["plan"]["kernels"] == "edge"
    ref = report["matmulnbits"]
    assert ref["kernels"] == "matmulnbits" and ref["full"]["new_tokens"] == 32 and ref["peak_rss_bytes"] > 0
    text = format_12b(report)
    assert "peak RSS" in text and "memory plan (edge)" in text and "build" not in text  # nothing was built
    assert "TTFT, 1080p image, first" in text
    assert "matmulnbits" in text
