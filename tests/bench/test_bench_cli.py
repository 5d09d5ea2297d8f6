"""``edge bench`` runs end to end on the tiny bundle and writes every figure the issue asks for.

This checks the program, never the speed: benchmarks are run by hand (README) on the bench preset.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.bench.bandwidth import read_bandwidth
from edge.bench.run import decode_bytes_per_token, text_prompt
from edge.bundle.manifest import load_manifest
from edge.bundle.recipe import decoder_macs_per_position, weight_matmuls
from edge.kernels.library import INT8_GEMM_PATHS
from edge.runtime.engine import Engine

pytestmark = pytest.mark.slow

KEYS = (
    "decode_tok_s",
    "decode_bandwidth_fraction",
    "read_bandwidth_bytes_s",
    "prefill_tok_s",
    "image_ttft_s",
    "image_ttft_vs_torch",
    "frames_per_s",
    "peak_rss_bytes",
    "load_s",
)


def test_bench_prints_a_table_and_writes_json(tmp_path: Path, int4_bundle: Path, tiny_ckpt: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "edge", "bench", str(int4_bundle), "--checkpoint", str(tiny_ckpt)]
    cmd += ["--contexts", "128,1024", "--repeats", "1", "--threads", "1", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    for key in KEYS:
        assert isinstance(report[key], (int, float)) and report[key] > 0, key
    assert set(report["decode_tok_s_by_context"]) == {"128", "1024"}
    assert report["decode_context"] == 1024
    assert report["torch"]["image_ttft_s"] > 0  # the same-run PyTorch reference ran
    assert report["image_ttft_vs_torch"] == pytest.approx(report["image_ttft_s"] / report["torch"]["image_ttft_s"])
    assert report["image_ttft_model_s"] > 0 and report["image_ttft_model_vs_torch"] > 0
    assert set(report["targets"]) == {
        "decode_bandwidth_fraction",
        "decode_vs_matmulnbits",
        "step_overhead_fraction",
        "image_ttft_vs_torch",
        "frames_per_s",
        "structured_vs_unconstrained",
    }
    assert all(t["met"] in (True, False) for t in report["targets"].values())
    # which kernels ran, and the same bundle on MatMulNBits in the same run
    assert report["kernels"].startswith("edge-") and report["kernel_nodes"] > 0
    # the LM head; where MatMulInt8 has a GEMM, also the tiny preset's vision (2) and audio (1) int8 matmuls
    gemm = report["kernels"].removeprefix("edge-") in INT8_GEMM_PATHS
    assert report["int8_nodes"] == (4 if gemm else 1)
    assert report["attention_nodes"] == 6  # the tiny preset's six attention layers
    assert report["matmulnbits"]["kernels"] == "matmulnbits"
    assert set(report["decode_vs_matmulnbits_by_context"]) == {"128", "1024"}
    assert report["decode_vs_matmulnbits"] == min(report["decode_vs_matmulnbits_by_context"].values())
    # the ratios are between ours and MatMulNBits taking turns in one process, not between separate runs
    paired, ref = report["matmulnbits"]["edge"], report["matmulnbits"]
    assert paired["kernels"] == report["kernels"]
    for ctx, ratio in report["decode_vs_matmulnbits_by_context"].items():
        assert ratio == pytest.approx(paired["decode_tok_s_by_context"][ctx] / ref["decode_tok_s_by_context"][ctx])
    assert report["prefill_vs_matmulnbits"] == pytest.approx(paired["prefill_tok_s"] / ref["prefill_tok_s"])
    assert 0 < report["step_overhead_fraction"] < 1
    # decode against a plain read of the decoder's weights (ReadBytes), in turns with the matmul ceiling
    ceiling = report["matmul_ceiling"]
    assert ceiling["kernels"] == report["kernels"] and ceiling["read_steps_per_s"] > 0
    for ctx, share in report["decode_weights_read_fraction_by_context"].items():
        assert share == pytest.approx(report["decode_tok_s_by_context"][ctx] / ceiling["read_steps_per_s"])
        assert f"{share:.0%} of the weights' read" in proc.stdout
    # the prefill against the int8 dot-product peak of the path that ran, measured in the same run
    peak = report["dot_peak"]
    assert f"edge-{peak['isa']}" == report["kernels"] and peak["threads"] == 1
    macs = decoder_macs_per_position(weight_matmuls(load_manifest(int4_bundle).extra) or [])
    share = report["prefill_tok_s"] * macs / peak["mac_per_s"]
    assert macs > 0 and report["prefill_peak_fraction"] == pytest.approx(share)
    assert f"{share:.0%} of the int8 peak" in proc.stdout
    structured = report["structured"]  # the default report schema against unconstrained, same tokens, same run
    assert structured["report_complete"] and structured["new_tokens"] > 10, structured
    assert report["structured_vs_unconstrained"] == structured["ratio"] > 0
    assert structured["ratio"] == pytest.approx(structured["decode_tok_s"] / structured["unconstrained_decode_tok_s"])
    assert 0 < structured["grammar_fraction"] < 1 and structured["grammar_s_per_token"] > 0
    for label in (
        "read bandwidth (best of runs)",
        "decode @ context 1024",
        "their weights read alone",
        "TTFT image",
        "PyTorch eager fp32",
        "peak RSS",
        "weight-matmul kernels",
        "MatMulNBits: decode @ context 128",
        "per-step overhead",
        "structured (default report schema)",
        "targets",
    ):
        assert label in proc.stdout, label


def test_bench_sweep_prints_every_thread_count_and_setting(tmp_path: Path, int4_bundle: Path) -> None:
    from edge.bench.sweep import SWEEP

    out = tmp_path / "sweep.json"
    cmd = [sys.executable, "-m", "edge", "bench", str(int4_bundle), "--sweep", "--repeats", "1"]
    proc = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    # one thread runs the defaults only; two threads every setting
    assert [(r["threads"], r["setting"]) for r in rows] == [(1, "default"), *((2, name) for name in SWEEP)]
    for r in rows:
        assert r["decode_tok_s"] > 0 and r["prefill_tok_s"] > 0 and r["load_s"] > 0 and r["rss_bytes"] > 0
        assert f"{r['decode_tok_s']:>12.1f}" in proc.stdout
    for name in SWEEP:
        assert name in proc.stdout


def test_bench_structured_prints_the_row_alone(tmp_path: Path, int4_bundle: Path) -> None:
    out = tmp_path / "structured.json"
    cmd = [sys.executable, "-m", "edge", "bench", str(int4_bundle), "--structured", "--repeats", "3"]
    proc = subprocess.run([*cmd, "--threads", "1", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    s = report["structured"]
    assert s["report_complete"] and s["decode_tok_s"] > 0 and s["unconstrained_decode_tok_s"] > 0, s
    assert s["grammar_s_per_token"] > 0 and s["paired_ratio"] > 0
    assert "structured (default report schema)" in proc.stdout and "× unconstrained" in proc.stdout


def test_bytes_per_token_counts_weights_and_attended_kv(int4_bundle: Path) -> None:
    engine = Engine(int4_bundle, threads=1)
    spec = engine.spec
    weights = sum(int(f["size"]) for n, f in engine.manifest.files.items() if n.startswith("decoder.onnx"))
    window = spec.text.sliding_window
    assert engine.sessions.kv_dtype == np.float16  # our attention on an int4 bundle: 2 bytes an element
    per_row = {lay.kind: 2 * lay.kv_heads * lay.head_dim * 2 for lay in spec.text.layers}
    at_window = decode_bytes_per_token(engine, window)
    beyond = decode_bytes_per_token(engine, window + 100)
    full_rows = sum(per_row["full_attention"] for lay in spec.text.layers if lay.kind == "full_attention")
    assert beyond - at_window == 100 * full_rows  # past the window only full layers grow
    assert at_window > weights


def test_text_prompt_has_the_exact_length(int4_bundle: Path) -> None:
    engine = Engine(int4_bundle, threads=1)
    for n in (1, 37, 300):
        p = text_prompt(engine, n)
        assert p.input_ids.shape == (1, n) and not p.token_types.any()


def test_read_bandwidth_reports_the_fastest_kernel() -> None:
    bw = read_bandwidth(1, buffer_bytes=64 << 20, repeats=2)
    assert bw["bytes_per_s"] > 1e8 and bw["kernel"] in ("sum_f32", "max_f32", "or_u64") and bw["threads"] == 1


def test_kernels_table_covers_every_decoder_weight_shape(tmp_path: Path, int4_bundle: Path) -> None:
    import onnx

    out = tmp_path / "kernels.json"
    cmd = [sys.executable, "-m", "edge", "bench", str(int4_bundle), "--kernels", "--threads", "1", "--repeats", "1"]
    proc = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["kernels"]
    model = onnx.load(str(int4_bundle / "decoder.onnx"), load_external_data=False)
    attrs = [{a.name: a.i for a in n.attribute} for n in model.graph.node if n.op_type == "MatMulNBits"]
    int4 = [a for a in attrs if a["bits"] == 4]
    assert sum(r["count"] for r in rows) == len(int4) > 0
    shapes = {(a["K"], a["N"]) for a in int4}
    assert {(r["K"], r["N"]) for r in rows} == shapes
    for r in rows:
        for key in (
            "decode_bytes_per_s",
            "edge_decode_bytes_per_s",
            "read_bytes_per_s",
            "nbits_gflop_s",
            "edge_gflop_s",
            "int8_gflop_s",
            "fp32_gflop_s",
        ):
            assert r[key] > 0, key
        assert r["kernels"].startswith("edge-")
        assert f"{r['K']} × {r['N']}" in proc.stdout
    assert "read bandwidth, same run" in proc.stdout
    assert "ReadBytes over the same bytes" in proc.stdout
    # the prefill GEMMs against the int8 dot-product peak of the same path, measured in the same run
    peak = json.loads(out.read_text())["dot_peak"]
    assert f"edge-{peak['isa']}" == rows[0]["kernels"] and peak["threads"] == 1 and peak["mac_per_s"] > 0
    for r in rows:
        for key in ("edge", "int8"):
            assert r[f"{key}_peak_fraction"] == pytest.approx(r[f"{key}_gflop_s"] / (2 * peak["mac_per_s"] / 1e9))
    assert f"int8 dot-product peak ({peak['isa']}, 1 thread, same run)" in proc.stdout
    # the second table: every int8 shape of the vision and audio graphs, both kernels, at an image's rows
    int8 = json.loads(out.read_text())["int8_kernels"]
    wanted = set()
    for graph in ("vision", "audio"):
        m = onnx.load(str(int4_bundle / f"{graph}.onnx"), load_external_data=False)
        for n in m.graph.node:
            a = {x.name: x.i for x in n.attribute}
            if n.op_type == "MatMulNBits" and a["bits"] == 8:
                wanted.add((graph, a["K"], a["N"]))
    assert {(r["graph"], r["K"], r["N"]) for r in int8} == wanted and wanted
    assert all(r["nbits_gflop_s"] > 0 and r["edge_gflop_s"] > 0 and r["m"] == 264 for r in int8)
    assert "int8 weights (vision, audio), M = 264" in proc.stdout
