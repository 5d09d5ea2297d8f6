"""Shared fixtures: real tiny Gemma 4 checkpoints, real exported bundles and the generated inspection data set,
built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge.build.fixtures.checkpoint import write_checkpoint

    return write_checkpoint("tiny", tmp_path_factory.mktemp("ckpt") / "tiny")


def _export(tmp_path_factory: pytest.TempPathFactory, ckpt: Path, quant: str, **kw: object) -> Path:
    from edge.build.export import ExportOptions, export_bundle
    from edge.build.quantize import recipe

    out = tmp_path_factory.mktemp("bundle") / f"tiny-{quant}"
    export_bundle(str(ckpt), out, ExportOptions(recipe=recipe(quant), context=1024, **kw))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="session")
def fp32_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_ckpt: Path) -> Path:
    return _export(tmp_path_factory, tiny_ckpt, "fp32")


@pytest.fixture(scope="session")
def int4_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_ckpt: Path) -> Path:
    return _export(tmp_path_factory, tiny_ckpt, "int4")


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge.build.fixtures.checkpoint import write_checkpoint

    return write_checkpoint("trained", tmp_path_factory.mktemp("ckpt") / "trained")


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``edge fixture dataset --small``: 320x240 parts with defects and masks, machine sounds (seed 0)."""
    from edge.dataset.writer import write_dataset

    out = tmp_path_factory.mktemp("dataset") / "small"
    write_dataset(out, "small", seed=0)
    return out


@pytest.fixture(scope="session")
def fitted_gate(tmp_path_factory: pytest.TempPathFactory, small_dataset: Path) -> Path:
    """``edge gate fit`` on the small set's train split: image (variation model, with the pre-step) and sound."""
    from edge.gate.fit import GateFitRequest, fit_gate

    out = tmp_path_factory.mktemp("gate") / "gate"
    request = GateFitRequest(good_images=small_dataset / "train/good", good_sounds=small_dataset / "sound/train/good")
    fit_gate(out, request)
    return out
