"""Which weight-matmul kernels and attention a bundle runs on, and the fallback to onnxruntime's own ops."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge.kernels.library as library
import edge.runtime.sessions as sessions
from edge.bundle.manifest import load_manifest
from edge.errors import BundleError, ConfigError
from edge.kernels.library import PATHS, choose_kernels, dot_peak, library_path, resolve
from edge.kernels.swap import Swapped
from edge.runtime.engine import Engine, GenerationParams
from edge.spec import SLIDING

PARAMS = GenerationParams(max_new_tokens=12, min_new_tokens=12)


def _tokens(engine: Engine) -> list[int]:
    return engine.generate("Describe the part.", params=PARAMS).token_ids


def _fallback(bundle: Path, caplog: pytest.LogCaptureFixture) -> tuple[Engine, str]:
    """An engine that must have fallen back to MatMulNBits, and the one warning that says why."""
    with caplog.at_level(logging.WARNING):
        engine = Engine(bundle, threads=1)
    assert engine.sessions.kernels.label == "matmulnbits" and engine.sessions.kernel_nodes == 0
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING and "MatMulNBits" in r.getMessage()]
    return engine, record.getMessage()


def test_our_kernels_are_the_default(int4_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_KERNELS", raising=False)
    lib = library_path()
    assert lib is not None
    engine = Engine(int4_bundle, threads=1)
    assert engine.sessions.kernels.label == f"edge-{resolve(lib, 'auto')}"
    assert engine.sessions.kernel_nodes > 0


@pytest.mark.parametrize("isa", PATHS)
def test_each_forced_path_generates(int4_bundle: Path, monkeypatch: pytest.MonkeyPatch, isa: str) -> None:
    monkeypatch.setenv("EDGE_KERNELS", isa)
    engine = Engine(int4_bundle, threads=2)
    assert engine.sessions.kernels.label == f"edge-{isa}"
    assert len(_tokens(engine)) == PARAMS.max_new_tokens


def _label(bundle: Path, kernels: str) -> tuple[str, int]:
    s = sessions.BundleSessions.open(bundle, threads=1, verify=False, kernels=kernels)
    return s.kernels.label, s.kernel_nodes


def test_off_and_fp32_bundles_run_matmulnbits(int4_bundle: Path, fp32_bundle: Path) -> None:
    assert _label(int4_bundle, "off") == ("matmulnbits", 0)
    assert _label(fp32_bundle, "auto") == ("matmulnbits", 0)


def test_missing_library_falls_back_with_one_log_line(
    int4_bundle: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(library, "library_path", lambda: None)
    engine, message = _fallback(int4_bundle, caplog)
    assert "was not built" in message
    assert _tokens(engine) == _tokens(Engine(sessions.BundleSessions.open(int4_bundle, 1, kernels="off")))


def test_a_library_that_cannot_load_falls_back(
    int4_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "_int4.so"
    broken.write_bytes(b"\x7fELF truncated")
    monkeypatch.setattr(library, "library_path", lambda: broken)
    _, message = _fallback(int4_bundle, caplog)
    assert "cannot load _int4.so" in message
    with pytest.raises(ConfigError, match="EDGE_KERNELS=avx2: cannot load"):
        choose_kernels("avx2")


def test_a_graph_onnxruntime_rejects_falls_back(
    int4_bundle: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The library loads but the session cannot be built on our op: MatMulNBits, or an error when forced."""

    def unknown_op(
        model: bytes, isa: str, attention: bool, int8: bool, image_mask: str | None, half_kv: bool
    ) -> Swapped:
        done = library_swap(model, isa, attention, int8, image_mask, half_kv=half_kv)
        model = done.model.replace(b"MatMulInt4", b"MatMulInt9")
        return Swapped(model, done.matmuls, done.attention, done.int8, half_kv=done.half_kv)

    library_swap: Any = sessions.swap
    monkeypatch.setattr(sessions, "swap", unknown_op)
    engine, message = _fallback(int4_bundle, caplog)
    assert "decoder.onnx" in message
    assert engine.sessions.kv_dtype == np.float32  # onnxruntime's attention: the bundle's fp32 cache
    assert len(_tokens(engine)) == PARAMS.max_new_tokens
    with pytest.raises(BundleError, match=r"decoder\.onnx: our int4 kernels cannot run this graph"):
        sessions.BundleSessions.open(int4_bundle, 1, kernels="avx2")


def test_the_dot_product_peak_is_measured_on_the_path_the_setting_chooses() -> None:
    auto = dot_peak("auto", 1, seconds=0.05)
    assert auto is not None and auto.isa == choose_kernels("auto").isa and auto.threads == 1
    assert auto.mac_per_s > 0 and auto.gflop_s == pytest.approx(2 * auto.mac_per_s / 1e9)
    for isa in ("avx512vnni", "avxvnni", "avx2"):
        try:
            choose_kernels(isa)
        except ConfigError:
            with pytest.raises(ConfigError, match="this CPU cannot run that path"):
                dot_peak(isa, 1, seconds=0.05)
            continue
        peak = dot_peak(isa, 2, seconds=0.05)
        assert peak is not None and peak.isa == isa and peak.threads == 2 and peak.mac_per_s > 0
    # nothing to measure: the scalar path has no vector dot product; off and zero threads run nothing
    assert dot_peak("scalar", 1, seconds=0.05) is None and dot_peak("off", 1, seconds=0.05) is None
    assert dot_peak("auto", 0, seconds=0.05) is None


def test_unknown_setting_is_a_config_error(int4_bundle: Path) -> None:
    with pytest.raises(ConfigError, match="EDGE_KERNELS=sse9: unknown kernel path"):
        sessions.BundleSessions.open(int4_bundle, 1, kernels="sse9")


def _prefill_logits(bundle: Path, attention: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int, int]:
    from edge.samples import jpeg_bytes, part_image

    monkeypatch.setenv("EDGE_ATTENTION", attention)
    monkeypatch.setenv("EDGE_KV_CACHE", "float32")  # the attention kernels alone (float16: the tests below)
    engine = Engine(bundle, threads=2)
    prompt = engine.prepare("Describe the defect.", images=[jpeg_bytes(part_image(320, 240))])
    logits, _ = engine.prefill(prompt)
    return logits, engine.sessions.attention_nodes, engine.sessions.image_block_nodes


@pytest.mark.parametrize("bundle_name", ["fp32_bundle", "int4_bundle"])
def test_our_attention_equals_group_query_attention_in_the_whole_decoder(
    bundle_name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image prompt (prefill in chunks, image blocks) through the whole decoder: our GroupAttention on the
    attention layers (full and sliding, its window cache compacting) gives onnxruntime's GroupQueryAttention's
    logits, on fp32 and int4 weights. Ours computes the image-block mask itself: the sliding layers' If
    branches are gone, where onnxruntime's op keeps them."""
    bundle = request.getfixturevalue(bundle_name)
    ours, swapped, folded = _prefill_logits(bundle, "auto", monkeypatch)
    theirs, kept, _ = _prefill_logits(bundle, "onnxruntime", monkeypatch)
    sliding = sum(layer.kind == SLIDING for layer in load_manifest(bundle).spec.text.layers)
    assert (swapped, kept, folded) == (6, 0, sliding)
    assert 0 < sliding < 6
    if bundle_name == "fp32_bundle":
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4 * float(np.abs(theirs).max()))
    else:
        # int4 weight matmuls quantize their activations to int8 per block: a 1e-6 difference in an attention
        # output can move a rounding by one step in the next matmul, so here the logits agree as a whole rather
        # than element by element. On this random tiny model any 1e-7-level change moves the cosine: measured
        # 0.99936-0.99973 between ours, onnxruntime's attention and MatMulNBits, with and without the folded
        # image blocks and GeGLU (and 0.99995 from GatedGelu alone), where the fp32 case above is exact
        a, b = ours.ravel().astype(np.float64), theirs.ravel().astype(np.float64)
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.999


def test_unknown_attention_setting_is_a_config_error(int4_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_ATTENTION", "flash")
    with pytest.raises(ConfigError, match="EDGE_ATTENTION=flash: unknown value; choose auto or onnxruntime"):
        sessions.BundleSessions.open(int4_bundle, 1)


def _cache(bundle: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[Any, int]:
    for name in ("EDGE_KV_CACHE", "EDGE_ATTENTION", "EDGE_KERNELS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = sessions.BundleSessions.open(bundle, threads=1, verify=False)
    assert s.kv is not None and {k.dtype for pair in s.kv.buffers for k in pair} == {np.dtype(s.kv_dtype)}
    return s.kv_dtype, s.half_kv_nodes


def test_the_kv_cache_is_float16_on_quantized_bundles_where_our_attention_runs(
    int4_bundle: Path, fp32_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """auto: float16 on a quantized bundle (every layer on GroupAttentionF16, the buffers bound half the size),
    float32 on an fp32 bundle (the exact reference), and wherever onnxruntime's attention runs."""
    assert _cache(int4_bundle, monkeypatch) == (np.float16, 6)
    assert _cache(fp32_bundle, monkeypatch) == (np.float32, 0)
    assert _cache(fp32_bundle, monkeypatch, EDGE_KV_CACHE="float16") == (np.float16, 6)
    assert _cache(int4_bundle, monkeypatch, EDGE_KV_CACHE="float32") == (np.float32, 0)
    assert _cache(int4_bundle, monkeypatch, EDGE_ATTENTION="onnxruntime") == (np.float32, 0)
    assert _cache(int4_bundle, monkeypatch, EDGE_KERNELS="off") == (np.float32, 0)
    monkeypatch.delenv("EDGE_KERNELS")
    half = sessions.BundleSessions.open(int4_bundle, threads=1, verify=False).kv
    full = sessions.BundleSessions.open(int4_bundle, threads=1, verify=False, kv_cache="float32").kv
    assert half is not None and full is not None and 2 * half.nbytes == full.nbytes
    monkeypatch.setenv("EDGE_KV_CACHE", "int8")
    with pytest.raises(ConfigError, match="EDGE_KV_CACHE=int8: unknown value; choose auto, float16 or float32"):
        sessions.BundleSessions.open(int4_bundle, 1)


def test_a_float16_cache_changes_the_logits_by_its_rounding(fp32_bundle: Path) -> None:
    """On fp32 weights (no activation quantization to amplify a difference) an image prompt's prefill and 20
    greedy decode steps with the cache in float16 stay close to the fp32 cache's: keys and values are rounded by
    at most 2⁻¹¹ relative, about 5e-4; through this random model's 6 layers the logits moved by 3.4e-3 of their
    norm (measured; the bound is 1e-2), never 0 (the float16 path really ran). The op's rounding itself is
    checked bit for bit in tests/kernels/test_attention.py; what it does to a trained model, by `edge fidelity`."""
    engines = {kv: Engine(sessions.BundleSessions.open(fp32_bundle, 2, kv_cache=kv)) for kv in ("float16", "float32")}
    assert engines["float16"].sessions.kv_dtype == np.float16
    from edge.samples import jpeg_bytes, part_image

    prompt = engines["float32"].prepare("Describe the defect.", images=[jpeg_bytes(part_image(320, 240))])
    logits = {kv: e.prefill(prompt)[0] for kv, e in engines.items()}
    a, b = logits["float16"].astype(np.float64), logits["float32"].astype(np.float64)
    assert 0 < np.linalg.norm(a - b) < 1e-2 * np.linalg.norm(b)
    steps = GenerationParams(max_new_tokens=20, min_new_tokens=20)
    tokens = {kv: e.generate(prompt, params=steps).token_ids for kv, e in engines.items()}
    assert tokens["float16"] == tokens["float32"]
