"""``edge plan BUNDLE --speed``: the bundle's speed ceilings on this machine, beside its memory plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.bundle.manifest import load_manifest
from edge.bundle.recipe import decoder_macs_per_position, weight_matmuls

pytestmark = pytest.mark.slow


def _plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", "plan", *args], capture_output=True, text=True, timeout=300)


def test_speed_ceilings_follow_from_the_bundle_and_the_measured_machine(int4_bundle: Path) -> None:
    proc = _plan(str(int4_bundle), "--speed", "--threads", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    s = plan["speed"]
    manifest = load_manifest(int4_bundle)
    macs = decoder_macs_per_position(weight_matmuls(manifest.extra) or [])
    assert s["threads"] == 1 and s["decoder_macs_per_position"] == macs > 0 and s["read_bandwidth_bytes_s"] > 0
    assert s["decode_ceiling_tok_s"] == pytest.approx(s["read_bandwidth_bytes_s"] / plan["read_per_token_bytes"])
    peak = s["dot_peak"]
    assert peak is not None and peak["threads"] == 1 and peak["mac_per_s"] > 0
    assert s["prefill_ceiling_tok_s"] == pytest.approx(peak["mac_per_s"] / macs)
    soft = manifest.processor["max_soft_tokens"]
    assert s["image_soft_tokens"] == soft > 0
    assert s["image_ttft_floor_s"] == pytest.approx(soft * macs / peak["mac_per_s"])
    text = _plan(str(int4_bundle), "--speed", "--threads", "1")
    assert text.returncode == 0, text.stderr
    assert "speed ceilings on this machine (1 thread," in text.stdout and "image TTFT" in text.stdout


def test_speed_needs_a_bundle_and_off_has_no_peak(int4_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = _plan("--preset", "tiny", "--speed")
    assert proc.returncode != 0 and "--speed needs a built bundle" in proc.stderr
    monkeypatch.setenv("EDGE_KERNELS", "off")  # no kernel library path: bandwidth and decode only
    proc = _plan(str(int4_bundle), "--speed", "--threads", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)["speed"]
    assert s["dot_peak"] is None and s["prefill_ceiling_tok_s"] is None and s["image_ttft_floor_s"] is None
    assert s["decode_ceiling_tok_s"] > 0
