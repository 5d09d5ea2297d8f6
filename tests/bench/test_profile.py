"""``edge bench --profile`` runs onnxruntime's profiler over real decode steps and splits them by operator type."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.bench.profile import STEPS, summarize


def test_profile_splits_decode_steps_by_operator(tmp_path: Path, int4_bundle: Path) -> None:
    out = tmp_path / "profile.json"
    cmd = [sys.executable, "-m", "edge", "bench", str(int4_bundle), "--profile", "--contexts", "100,600"]
    proc = subprocess.run([*cmd, "--threads", "1", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["steps"] == STEPS - 1 and report["attention_nodes"] == 6 and report["kernels"].startswith("edge-")
    for ctx in ("100", "600"):
        row = report["contexts"][ctx]
        ops = {op["op"]: op for op in row["ops"]}
        # the tiny preset: 4 weight matmuls per layer, and its 6 attention layers on ours (float16 cache)
        assert ops["MatMulInt4"]["nodes_per_step"] == 24
        assert ops["GroupAttentionF16"]["nodes_per_step"] == 6 and "GroupQueryAttention" not in ops
        assert sum(op["share"] for op in row["ops"]) == pytest.approx(1.0)
        assert 0 < row["nodes_ms"] <= row["run_ms"] <= row["step_ms"] * 1.5
    assert "context 600" in proc.stdout and "GroupAttention" in proc.stdout
    assert not list(tmp_path.glob("ort*.json")) and not list(Path.cwd().glob("ort_*.json"))  # profiles cleaned up


def test_a_profile_with_too_few_runs_is_refused() -> None:
    events = [{"name": "model_run", "ts": 0, "dur": 5}]
    with pytest.raises(ValueError, match="holds 1 decoder runs, fewer than the 3 decode steps"):
        summarize(events, 3)
