"""The fused decoder (GroupQueryAttention, KV in place) against the reference graph, step by step.

Both fp32 bundles come from the same tiny checkpoint (sliding window 16, so a sliding layer's
64-slack buffer of 79 rows is compacted several times in these prompts). Teacher-forced logits
of every step must agree to float32 noise, for every prefill chunking, with image blocks that
start anywhere in a chunk. The transformers parity of both graphs is in tests/build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.build.parity import _teacher_forced
from edge.errors import EngineError
from edge.kernels.library import PATHS
from edge.runtime.engine import Engine, GenerationParams
from edge.runtime.kv_cache import BoundCache, prefill_chunks
from edge.runtime.sessions import BundleSessions
from edge.samples import jpeg_bytes, machine_audio, part_image

STEPS = 100
MAX_LOGIT_DELTA = 0.1  # the largest |Δlogit| between the graphs on int4 (measured 0.01–0.075)


def _reference_export(tmp_path_factory: pytest.TempPathFactory, ckpt: Path, quant: str) -> Path:
    from edge.build.export import ExportOptions, export_bundle
    from edge.build.quantize import recipe

    out = tmp_path_factory.mktemp("bundle") / f"tiny-{quant}-reference"
    export_bundle(str(ckpt), out, ExportOptions(recipe=recipe(quant), context=1024, decoder="reference", parity=False))
    return out


@pytest.fixture(scope="module")
def reference_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_ckpt: Path) -> Path:
    return _reference_export(tmp_path_factory, tiny_ckpt, "fp32")


@pytest.fixture(scope="module")
def reference(reference_bundle: Path) -> Engine:
    return Engine(reference_bundle, threads=1)


def _prompt(engine: Engine, case: str) -> Any:
    images = {"text": [], "image": [1], "two_images": [1, 2], "image_audio": [1]}[case]
    audio = [machine_audio(seconds=1.0)] if case == "image_audio" else []
    return engine.prepare(
        "Describe any defect on this part in detail.",
        [jpeg_bytes(part_image(320, 240, seed=s)) for s in images],
        audio,
        max_soft_tokens=70,
    )


@pytest.mark.parametrize("chunk", [512, 7, 40])
@pytest.mark.parametrize("case", ["text", "image", "two_images", "image_audio"])
def test_fused_matches_reference_step_by_step(reference: Engine, fp32_bundle: Path, case: str, chunk: int) -> None:
    fused = Engine(fp32_bundle, threads=1, prefill_chunk=chunk)
    assert fused.sessions.fused and not reference.sessions.fused
    p = _prompt(reference, case)
    tokens = reference.generate(p, params=GenerationParams(max_new_tokens=STEPS, min_new_tokens=STEPS)).token_ids
    want = _teacher_forced(reference, p, tokens)
    got = _teacher_forced(fused, p, tokens)
    assert p.input_ids.shape[1] + STEPS > fused.sessions.kv.window_capacity  # the sliding buffers were compacted
    np.testing.assert_allclose(got, want, atol=2e-4, rtol=0)
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_image_mask_is_what_makes_images_exact(tmp_path: Path, tiny_ckpt: Path, reference: Engine) -> None:
    """Negative control: a fused bundle with the other image mask disagrees with the reference on images only."""
    from edge.build.export import ExportOptions, export_bundle
    from edge.build.quantize import recipe

    out = tmp_path / "all"
    opts = ExportOptions(recipe=recipe("fp32"), image_mask="all", context=1024, parity=False)
    export_bundle(str(tiny_ckpt), out, opts)
    other = Engine(out, threads=1)
    for case, differs in (("text", False), ("image", True)):
        p = _prompt(reference, case)
        tokens = reference.generate(p, params=GenerationParams(max_new_tokens=8, min_new_tokens=8)).token_ids
        gap = np.abs(_teacher_forced(other, p, tokens) - _teacher_forced(reference, p, tokens)).max()
        assert (gap > 1e-2) == differs, (case, gap)


def test_generation_equals_reference_greedy(reference: Engine, fp32_bundle: Path) -> None:
    fused = Engine(fp32_bundle, threads=1, prefill_chunk=16)
    p = _prompt(reference, "image_audio")
    params = GenerationParams(max_new_tokens=64, min_new_tokens=64)
    assert fused.generate(p, params=params).token_ids == reference.generate(p, params=params).token_ids


def test_a_stale_cache_is_refused(fp32_bundle: Path) -> None:
    engine = Engine(fp32_bundle, threads=1)
    p = _prompt(engine, "text")
    _, cache = engine.prefill(p)
    assert isinstance(cache, BoundCache)
    engine.prefill(p)  # a newer generation takes the one cache over
    step = engine.embed_ids(np.array([[5]], dtype=np.int64))
    with pytest.raises(EngineError, match="reset by a newer generation"):
        engine.sessions.decode_step(step, cache, np.zeros((1, 1), dtype=np.int64))


def test_cache_capacity_is_enforced(fp32_bundle: Path) -> None:
    engine = Engine(fp32_bundle, threads=1)
    cache = engine.sessions.empty_cache()
    too_long = np.zeros((1, engine.context + 1, engine.spec.text.hidden_size), np.float32)
    with pytest.raises(EngineError, match="exceed the KV cache capacity"):
        engine.sessions.decode_step(too_long, cache, np.zeros((1, engine.context + 1), dtype=np.int64))


@pytest.mark.parametrize(
    ("types", "chunk", "spans"),
    [
        ([0] * 10, 4, [(0, 4), (4, 8), (8, 10)]),
        ([0, 0, 1, 1, 1, 0], 3, [(0, 2), (2, 5), (5, 6)]),  # ends before the block, then takes it whole
        ([1, 1, 1, 1, 1, 0, 0], 2, [(0, 5), (5, 7)]),  # a block longer than a chunk gets its own span
        ([0, 1, 1, 0, 1, 1, 0], 3, [(0, 3), (3, 6), (6, 7)]),
        ([0, 1, 1, 2, 2, 0], 2, [(0, 1), (1, 5), (5, 6)]),  # video tokens (2) count as image tokens
        ([], 8, []),
    ],
)
def test_prefill_chunks_never_split_an_image_block(types: list[int], chunk: int, spans: list[tuple[int, int]]) -> None:
    got = prefill_chunks(np.array([types], dtype=np.int64), chunk)
    assert got == spans
    image = np.isin(types, (1, 2))
    for a, _b in got:
        assert a == 0 or not (image[a - 1] and image[a])  # no span starts inside a block


@pytest.fixture(scope="module")
def int4_reference_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_ckpt: Path) -> Path:
    return _reference_export(tmp_path_factory, tiny_ckpt, "int4")


@pytest.mark.parametrize("kernels", ["off", *PATHS])
@pytest.mark.parametrize("case", ["text", "image"])
def test_fused_matches_reference_on_int4_kernels(
    int4_bundle: Path, int4_reference_bundle: Path, case: str, kernels: str
) -> None:
    """The same step-by-step comparison on int4 bundles, both graphs on one kernel path (ours, or MatMulNBits).

    int4 with int8 activations is not exact across graphs: the two graphs' fp32 activations differ in the
    last bits, which now and then moves an activation across an int8 rounding boundary, and the random tiny
    model amplifies that. Measured (100 teacher-forced steps, chunk 40): mean cosine 0.9993–0.99999, top-1
    0.96–1.0, max |Δlogit| 0.01–0.05 for MatMulNBits and each of our paths alike; the bounds sit around that.
    With the fixture tokenizer of issue 12's corpus (other prompt ids, so another random trajectory) the image
    case on MatMulNBits gives mean 0.99939, min 0.986, top-1 0.94, max |Δlogit| 0.075; the others stay in range.
    On an AVX2-only EPYC (other float rounding in onnxruntime's kernels) the image case's top-1 read 0.91 on
    MatMulNBits and 0.88 on our scalar path, with the logits within bounds: the flips are near-ties of this
    random model. So the top-1 check asks that every token the reference chooses by a clear margin (more than
    twice the allowed logit difference) be the same, and only 0.85 of all of them.

    Both graphs keep an fp32 KV cache here: this compares the graphs. The float16 cache (the default with our
    attention) rounds keys and values by up to 2⁻¹¹, which this random model amplifies past these bounds (0.993
    cosine on an image prefill); its effect is measured where it means something, by `edge fidelity` on the
    trained preset, and checked op by op in tests/kernels/test_attention.py.
    """
    fused = Engine(BundleSessions.open(int4_bundle, 1, kernels=kernels, kv_cache="float32"), prefill_chunk=40)
    reference = Engine(BundleSessions.open(int4_reference_bundle, 1, kernels=kernels), prefill_chunk=40)
    assert fused.sessions.fused and not reference.sessions.fused
    assert (
        fused.sessions.kernels.label
        == reference.sessions.kernels.label
        == ("matmulnbits" if kernels == "off" else f"edge-{kernels}")
    )
    p = _prompt(reference, case)
    tokens = reference.generate(p, params=GenerationParams(max_new_tokens=STEPS, min_new_tokens=STEPS)).token_ids
    got = _teacher_forced(fused, p, tokens).reshape(STEPS, -1)
    want = _teacher_forced(reference, p, tokens).reshape(STEPS, -1)
    cosine = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    assert cosine.mean() > 0.999 and cosine.min() > 0.98, (cosine.mean(), cosine.min())
    assert np.abs(got - want).max() < MAX_LOGIT_DELTA
    # a top-1 token may flip only where the reference's two best logits lie within the logits' allowed
    # difference of each other: anywhere else a flip is a real disagreement
    top2 = np.sort(want, axis=-1)[:, -2:]
    confident = top2[:, 1] - top2[:, 0] > 2 * MAX_LOGIT_DELTA
    agree = got.argmax(-1) == want.argmax(-1)
    assert agree[confident].all(), np.flatnonzero(confident & ~agree)
    assert agree.mean() >= 0.85, agree.mean()
