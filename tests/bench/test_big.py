"""The 12B proof program, run on the tiny bundle: verify, fresh-process run, plan beside the measurement."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.bench.big import bench_12b, format_12b
from edge.bundle.manifest import load_manifest
from edge.bundle.recipe import decoder_macs_per_position, weight_matmuls

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
    # the machine's ceilings, and the image prompt's arithmetic at the peak as a floor under its TTFT
    matmuls = weight_matmuls(load_manifest(int4_bundle).extra) or []
    macs = sum(m.k * m.n * m.count for m in matmuls if m.bits == 4 and m.graph == "decoder")  # the LM head: int8
    assert report["decoder_macs_per_position"] == decoder_macs_per_position(matmuls) == macs > 0
    assert run["image_prompt_tokens"] > 256 // 4 and report["read_bandwidth_bytes_s"] > 0
    peak = report["dot_peak"]
    assert f"edge-{peak['isa']}" == run["kernels"] and peak["threads"] == 1
    floor = run["image_prompt_tokens"] * macs / peak["mac_per_s"]
    assert report["image_ttft_floor_s"] == pytest.approx(floor) and report["targets"]["image_ttft_s"]["floor"] == floor
    assert report["image_ttft_floor_s"] < run["image_ttft_s"]  # a floor: the real run does everything else too
    for x in (run, ref):
        share = report["plan"]["read_per_token_bytes"] * x["short"]["decode_tok_s"] / report["read_bandwidth_bytes_s"]
        assert x["short"]["bandwidth_fraction"] == pytest.approx(share)
    text = format_12b(report)
    assert "TTFT floor" in text and "of the read bandwidth" in text and "int8 dot-product peak" in text
    assert "peak RSS" in text and "memory plan (edge)" in text and "build" not in text  # nothing was built
    assert "TTFT, 1080p image, first" in text
    assert "matmulnbits" in text
