"""The memory plan, computed from the real Gemma 4 12B shapes without building any weight."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from edge.build.fixtures.presets import PRESETS, REAL_TOKEN_IDS, hf_config
from edge.build.quantize import recipe
from edge.bundle.estimate import derived_matmuls, estimate_weight_bytes
from edge.bundle.manifest import graph_bytes, load_manifest
from edge.bundle.memory import GiB, MiB, format_plan, plan_for_bundle, plan_memory
from edge.bundle.recipe import LinearQuant, QuantRecipe, WeightMatMul, weight_matmuls
from edge.errors import BundleSchemaError, ConfigError
from edge.spec import ModelSpec

GB = 10**9


def _spec(preset: str) -> ModelSpec:
    return ModelSpec.from_hf_config(hf_config(PRESETS[preset], REAL_TOKEN_IDS))


@pytest.fixture(scope="module")
def spec12b() -> ModelSpec:
    return _spec("12b")


def _int4(block_size: int = 32, symmetric: bool = True) -> QuantRecipe:
    q4 = LinearQuant("int4", block_size=block_size, symmetric=symmetric)
    return QuantRecipe("int4", q4, q4, "int4", block_size, q4, q4)


def test_12b_int4_decoder_weights_match_design(spec12b: ModelSpec) -> None:
    plan = plan_memory(spec12b, context=4096, recipe=recipe("int4"))
    # DESIGN.md: about 6.5-7 GB of int4 weights read per token
    assert 6.5 * GB < plan["weights"]["decoder"] < 7.5 * GB
    assert plan["read_per_token_bytes"] == plan["weights"]["decoder"] + plan["weights"]["lm_head"]
    # the default recipe keeps the LM head and embedding table in int8 (~1 GB each)
    assert 1.0 * GB < plan["weights"]["lm_head"] < 1.2 * GB
    assert 1.0 * GB < plan["weights"]["embedding"] < 1.02 * GB
    assert 8.5 * GB < plan["weights_bytes"] < 9.5 * GB


def test_the_manifest_recipe_reads_back_typed() -> None:
    rec = recipe("int4")
    assert QuantRecipe.from_dict(rec.to_dict()) == rec
    assert QuantRecipe.from_dict({"name": "int4", "decoder": "int4", "future_key": 1}).decoder == LinearQuant("int4")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"decoder": {"scheme": "int3"}}, r"quantization\.decoder\.scheme: 'int3'"),
        ({"decoder": {"scheme": "int4", "block_size": "32"}}, r"quantization\.decoder\.block_size: expected int"),
        ({"embedding": "bf16"}, r"quantization\.embedding: 'bf16'"),
        ([], "quantization: expected an object"),
    ],
)
def test_a_bad_manifest_recipe_names_the_field(raw: object, message: str) -> None:
    with pytest.raises(BundleSchemaError, match=message):
        QuantRecipe.from_dict(raw)


@pytest.mark.parametrize("preset", ["tiny", "bench", "12b"])
def test_fp32_estimate_is_four_bytes_per_parameter(preset: str) -> None:
    spec = _spec(preset)
    est = estimate_weight_bytes(spec, None)
    assert est == {fam: 4 * n for fam, n in spec.param_counts().items()}


def test_fp32_is_about_8x_int4_and_block_scales_explain_the_gap(spec12b: ModelSpec) -> None:
    fp32 = estimate_weight_bytes(spec12b, None)["decoder"]
    b32 = estimate_weight_bytes(spec12b, _int4(32))["decoder"]
    b256 = estimate_weight_bytes(spec12b, _int4(256))["decoder"]
    # 4 bits + one fp32 scale per block of 32 = 0.625 bytes/weight, so 6.4x; larger blocks approach 8x
    assert fp32 / b32 == pytest.approx(4 / 0.625, rel=0.01)
    assert fp32 / b256 == pytest.approx(4 / (0.5 + 4 / 256), rel=0.01)
    assert 7.5 < fp32 / b256 < 8


def test_asymmetric_int4_adds_half_a_byte_per_block(spec12b: ModelSpec) -> None:
    sym = estimate_weight_bytes(spec12b, _int4(32, True))["decoder"]
    asym = estimate_weight_bytes(spec12b, _int4(32, False))["decoder"]
    linear_params = spec12b.param_counts()["decoder"]  # norms are a negligible share
    assert asym - sym == pytest.approx(linear_params / 32 / 2, rel=0.01)


def test_full_layer_kv_grows_linearly_and_sliding_kv_is_capped(spec12b: ModelSpec) -> None:
    kv = {c: plan_memory(spec12b, context=c, decoder="reference")["kv_cache"] for c in (512, 1023, 2048, 4096, 8192)}
    per_token_full = 8 * 2 * 1 * 512 * 4  # 8 full layers, keys + values, 1 KV head of 512, fp32
    assert kv[4096]["full_bytes"] == 4096 * per_token_full == 128 * MiB
    assert kv[8192]["full_bytes"] == 2 * kv[4096]["full_bytes"]
    sliding_cap = 40 * 2 * 8 * 256 * 4 * 1023  # 40 sliding layers, 8 KV heads of 256, window 1024
    assert kv[1023]["sliding_bytes"] == kv[2048]["sliding_bytes"] == kv[8192]["sliding_bytes"] == sliding_cap
    assert kv[512]["sliding_bytes"] == sliding_cap * 512 // 1023
    assert kv[8192]["sliding_tokens"] == 1023


def test_fused_kv_is_allocated_once_at_full_size(spec12b: ModelSpec) -> None:
    fused = {c: plan_memory(spec12b, context=c) for c in (512, 4096)}
    ref = plan_memory(spec12b, context=4096, decoder="reference")
    rows = 1024 + 63  # the sliding buffers: window + slack, whatever the context
    assert (
        fused[512]["kv_cache"]["sliding_bytes"]
        == fused[4096]["kv_cache"]["sliding_bytes"]
        == 40 * 2 * 8 * 256 * 4 * rows
    )
    assert fused[4096]["kv_cache"]["full_bytes"] == ref["kv_cache"]["full_bytes"]
    assert fused[4096]["runtime"]["kv_step_copy_bytes"] == 0
    assert ref["runtime"]["kv_step_copy_bytes"] == ref["kv_cache_bytes"]
    with pytest.raises(ConfigError, match="decoder"):
        plan_memory(spec12b, context=4096, decoder="fast")


def test_kv_dtype_halves_the_cache(spec12b: ModelSpec) -> None:
    f32 = plan_memory(spec12b, context=4096, decoder="reference")
    f16 = plan_memory(spec12b, context=4096, kv_dtype_bytes=2, decoder="reference")
    assert f16["kv_cache_bytes"] * 2 == f32["kv_cache_bytes"]
    assert f16["runtime"]["kv_step_copy_bytes"] * 2 == f32["runtime"]["kv_step_copy_bytes"]


def test_activations_grow_with_context_and_chunk(spec12b: ModelSpec) -> None:
    base = plan_memory(spec12b, context=4096)["runtime"]["activations_bytes"]
    assert plan_memory(spec12b, context=8192)["runtime"]["activations_bytes"] > base
    assert plan_memory(spec12b, context=4096, prefill_chunk=1024)["runtime"]["activations_bytes"] > base
    small = plan_memory(spec12b, context=128, prefill_chunk=512)
    assert small["prefill_chunk"] == 128
    # the attention scores of the largest layer dominate a 512-token chunk at 4096: 16 heads x 512 x 4096 x 4 B, twice
    scores = plan_memory(spec12b, context=4096)["activations"]["attention_scores_bytes"]
    assert scores == 2 * 16 * 512 * 4096 * 4


def test_verdict_follows_the_budget(spec12b: ModelSpec) -> None:
    q = recipe("int4")
    total = plan_memory(spec12b, context=4096, recipe=q)["total_bytes"]

    def verdict(budget: float) -> str:
        return plan_memory(spec12b, context=4096, recipe=q, budget_bytes=int(budget), reserve_bytes=0)["verdict"]

    assert verdict(total / 0.85) == "fits"
    assert verdict(total / 0.95) == "tight"
    assert verdict(total - 1) == "does not fit"
    tiny = plan_memory(spec12b, context=4096, recipe=q, budget_bytes=4 * GiB)
    assert tiny["verdict"] == "does not fit" and tiny["headroom_bytes"] < 0
    assert tiny["usable_bytes"] == 4 * GiB - 3 * GiB


def test_fp32_12b_does_not_fit_a_station(spec12b: ModelSpec) -> None:
    assert plan_memory(spec12b, context=4096)["verdict"] == "does not fit"


def test_components_add_up_and_plan_is_json(spec12b: ModelSpec) -> None:
    plan = plan_memory(spec12b, context=4096, recipe=recipe("int4"))
    assert plan["weights_bytes"] == sum(plan["weights"].values())
    resident = plan["weights_bytes"] - plan["mapped_bytes"]
    assert plan["mapped_bytes"] == plan["weights"]["embedding"]  # paged in on demand, not counted
    assert plan["total_bytes"] == resident + plan["kv_cache_bytes"] + plan["runtime_bytes"]
    assert plan["headroom_bytes"] == plan["usable_bytes"] - plan["total_bytes"]
    assert json.loads(json.dumps(plan)) == plan
    assert any("400 MiB" in a for a in plan["assumptions"])


def test_matmulnbits_prepacks_block_sums_only_for_int8_compute(spec12b: ModelSpec) -> None:
    acc4 = recipe("int4")
    acc0 = recipe("int4", decoder={"accuracy_level": 0}, lm_head="fp32")

    def sums(rec: QuantRecipe, kernels: str) -> int:
        return plan_memory(spec12b, context=4096, recipe=rec, kernels=kernels)["runtime"]["prepacked_block_sums_bytes"]

    decoder_linear = spec12b.param_counts()["decoder"]
    head = spec12b.param_counts()["lm_head"]
    assert sums(acc4, "matmulnbits") == pytest.approx((decoder_linear + head) / 32 * 4, rel=0.02)
    assert sums(acc0, "matmulnbits") < sums(acc4, "matmulnbits") / 100  # only the small int8 projections remain
    # our kernels read the int4 decoder weights and the int8 LM head in place: only the vision and audio
    # projections pre-pack
    assert head > 0 and sums(acc4, "edge") == sums(acc0, "matmulnbits")
    assert sums(acc0, "edge") == sums(acc0, "matmulnbits")  # accuracy level 0 stays on MatMulNBits


def test_bundle_sizes_replace_the_estimate(spec12b: ModelSpec) -> None:
    given = {"embedding": 1 * GiB, "decoder": 7 * GiB}
    plan = plan_memory(spec12b, context=4096, weight_bytes=given, recipe=recipe("int4"))
    assert plan["weights"] == given and plan["weights_bytes"] == 8 * GiB
    assert "bundle" in plan["weights_source"]
    assert plan["read_per_token_bytes"] == 7 * GiB
    full = plan_memory(spec12b, context=4096, recipe=recipe("int4"))
    # no vision/audio graph given: their block sums are not counted
    assert plan["runtime"]["prepacked_block_sums_bytes"] < full["runtime"]["prepacked_block_sums_bytes"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"context": 0}, "context"),
        ({"context": 4096, "kernels": "mlas"}, "kernels must be one of edge, matmulnbits"),
        ({"context": 4096, "reserve_bytes": -1}, "reserve"),
    ],
)
def test_bad_arguments_are_config_errors(spec12b: ModelSpec, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_memory(spec12b, **kwargs)


def test_format_plan_shows_each_component_in_gib(spec12b: ModelSpec) -> None:
    plan = plan_memory(spec12b, context=4096, recipe=recipe("int4"))
    text = format_plan(plan)
    for name, size in plan["weights"].items():
        assert f"weights: {name}" in text
        assert f"{size / GiB:.2f}" in text
    assert f"{plan['total_bytes'] / GiB:.2f}" in text
    assert f"verdict: {plan['verdict']}" in text
    # fused: window + 63 rows, allocated at load; float16 where our attention runs on a quantized bundle
    assert "KV cache: sliding layers (1087 tokens, float16)" in text
    assert "assumptions:" in text and "assumptions:" not in format_plan(plan, assumptions=False)
    assert max(len(line) for line in text.splitlines()) <= 110


@pytest.mark.slow
def test_estimate_matches_a_real_export(tmp_path: Path) -> None:
    """The shape estimate against the file sizes of a real int4 export of the bench shapes."""
    from edge.build.export import ExportOptions, export_bundle
    from edge.build.fixtures.checkpoint import write_checkpoint

    ckpt = write_checkpoint("bench", tmp_path / "ckpt")
    rec = recipe("int4")
    m = export_bundle(str(ckpt), tmp_path / "bundle", ExportOptions(recipe=rec, parity=False))
    actual = m["memory_plan"]["weights"]
    spec = ModelSpec.from_dict(m["model"])
    est = estimate_weight_bytes(spec, rec)
    assert actual["decoder"] == pytest.approx(est["decoder"] + est["lm_head"], rel=0.01)  # the head is in decoder.onnx
    for graph in ("embedding", "vision", "audio"):
        assert actual[graph] == pytest.approx(est[graph], rel=0.01)
    # the blocks the bundle records are the ones a plan without a bundle derives (the fused decoder joins
    # Q/K/V and gate/up into one node each, so the layouts differ, the blocks per graph and kind do not)
    recorded = weight_matmuls(m)
    assert recorded is not None

    def blocks(layouts: list[WeightMatMul]) -> Counter[tuple[str, int, int, int]]:
        out: Counter[tuple[str, int, int, int]] = Counter()
        for w in layouts:
            out[(w.graph, w.bits, w.block_size, w.accuracy_level)] += w.count * w.blocks
        return out

    assert blocks(recorded) == blocks(derived_matmuls(spec, rec))


def test_a_bundle_plan_reads_what_the_bundle_records(int4_bundle: Path) -> None:
    manifest = load_manifest(int4_bundle)
    recorded = weight_matmuls(manifest.extra)
    assert recorded and {m.graph for m in recorded} >= {"decoder"}
    edge, nbits = (plan_for_bundle(manifest, kernels=k) for k in ("edge", "matmulnbits"))
    assert edge["matmuls_source"] == "recorded in the bundle" and edge["kernels"] == "edge"
    assert edge["weights"] == graph_bytes(manifest.files, manifest.graphs)
    # the int4 weights and the decoder's int8 LM head run on our kernels, read in place
    ours = sum(m.count * m.blocks * 4 for m in recorded if m.bits == 4 or m.graph == "decoder")
    saved = nbits["runtime"]["prepacked_block_sums_bytes"] - edge["runtime"]["prepacked_block_sums_bytes"]
    assert saved == ours > sum(m.count * m.blocks * 4 for m in recorded if m.bits == 4) > 0
    assert manifest.memory_plan["total_bytes"] == edge["total_bytes"]  # the export's plan is the default path's


def test_the_default_kv_dtype_follows_the_runtime(spec12b: ModelSpec) -> None:
    """float16 where the fused decoder runs our attention on a quantized bundle (EDGE_KV_CACHE=auto), float32 on
    MatMulNBits, on the reference decoder and for fp32 weights."""
    int4 = _int4(32, True)
    dtype = lambda **kw: plan_memory(spec12b, context=4096, **kw)["kv_dtype_bytes"]  # noqa: E731
    assert dtype(recipe=int4) == 2
    assert dtype(recipe=int4, kernels="matmulnbits") == 4
    assert dtype(recipe=int4, decoder="reference") == 4
    assert dtype() == 4  # fp32 weights
    assert dtype(recipe=int4, kv_dtype_bytes=4) == 4
    assert (
        plan_memory(spec12b, context=4096, recipe=int4)["kv_cache_bytes"] * 2
        == plan_memory(spec12b, context=4096, recipe=int4, kernels="matmulnbits")["kv_cache_bytes"]
    )
