"""The trained preset: real structure in the weights, deterministic training, and int4 fidelity on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edge.build.export import ExportOptions, export_bundle
from edge.build.quantize import recipe
from edge.runtime.engine import Engine, GenerationParams

pytestmark = pytest.mark.slow


def test_training_lowers_the_loss(trained_ckpt: Path) -> None:
    report = json.loads((trained_ckpt / "training_report.json").read_text())
    assert report["final_loss"] < 0.2 * report["initial_loss"], report


def test_training_is_deterministic(tiny_ckpt: Path) -> None:
    from transformers import Gemma4UnifiedForConditionalGeneration

    from edge.build.fixtures.training import train_fixture

    states = []
    for _ in range(2):
        model = Gemma4UnifiedForConditionalGeneration.from_pretrained(str(tiny_ckpt))
        work = tiny_ckpt.parent / "det"
        work.mkdir(exist_ok=True)
        (work / "tokenizer.json").write_bytes((tiny_ckpt / "tokenizer.json").read_bytes())
        train_fixture(model, work, seed=3, steps=4)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    base = Gemma4UnifiedForConditionalGeneration.from_pretrained(str(tiny_ckpt)).state_dict()
    assert not all(torch.equal(base[k], states[0][k]) for k in base)  # and it did change the weights


@pytest.fixture(scope="module")
def trained_int4_bundle(trained_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "int4"
    export_bundle(str(trained_ckpt), out, ExportOptions(recipe=recipe("int4"), context=2048))
    return out


@pytest.fixture(scope="module")
def trained_int4(trained_int4_bundle: Path) -> dict:
    return dict(json.loads((trained_int4_bundle / "manifest.json").read_text()))


def test_trained_fp32_bundle_is_token_identical(trained_ckpt: Path, tmp_path: Path) -> None:
    m = export_bundle(str(trained_ckpt), tmp_path / "fp32", ExportOptions(recipe=recipe("fp32"), context=2048))
    assert m["parity"]["all_tokens_equal"]
    engine = Engine.load(tmp_path / "fp32", threads=1)
    text = engine.generate("Describe any defect in this part.", params=GenerationParams(max_new_tokens=40)).text
    assert text.startswith("The ") and " on line " in text, text


def test_int4_fidelity_on_trained_weights(trained_int4: dict) -> None:
    parity = trained_int4["parity"]
    # bars met by the default recipe (see README: recipe comparison); a broken int4 path fails them
    assert parity["tf_mean_cosine"] > 0.99, parity["tf_mean_cosine"]
    assert parity["tf_top1_agreement"] > 0.9, parity["tf_top1_agreement"]
    assert parity["tf_mean_kl"] < 0.1, parity["tf_mean_kl"]


def test_structured_report_keeps_what_the_model_knows(trained_int4_bundle: Path) -> None:
    """Issue 12: on corpus samples (an image block, half with a sound), the report's defect_type is the defect
    the free-text answer names. Measured 0.93 on these 80 samples (README: Structured reports); a grammar that
    chose the answer instead of the model would agree on about one in nine. The checkpoint is trained in the
    test session, and its weights follow the CPU's float rounding: on an AVX2-only EPYC (Zen 3) the trained
    checkpoint agreed on 0.80, the same on MatMulNBits and on our kernels."""
    from edge.build.report_agreement import measure_agreement

    engine = Engine.load(trained_int4_bundle, threads=2)
    result = measure_agreement(engine, samples=80, seed=1)
    assert result["valid_reports"] == 1.0, result["rows"]
    assert result["free_text_names_a_defect"] >= 72, result["rows"]  # the prose answers as trained
    assert result["agreement"] >= 0.75, result
    assert result["structured_correct"] >= 0.75, result  # and the report reads the image, not a default
