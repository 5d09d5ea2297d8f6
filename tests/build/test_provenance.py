"""The manifest records the model id and revision, never the build host's checkpoint path (GetInfo.model_id)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.build.provenance import identify
from edge.bundle.manifest import load_manifest

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_hub_cache_snapshot(tmp_path: Path) -> None:
    folder = tmp_path / "hub" / "models--google--gemma-4-12B-it" / "snapshots" / COMMIT
    folder.mkdir(parents=True)
    who = identify(folder, {})
    assert (who.model_id, who.revision) == ("google/gemma-4-12B-it", COMMIT)


def test_local_dir_download_records_its_commit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "checkpoints" / "gemma-4-12B-it"
    meta = folder / ".cache" / "huggingface" / "download"
    meta.mkdir(parents=True)
    (meta / "config.json.metadata").write_text(f'{COMMIT}\n"etag"\n1770000000.0\n')
    with caplog.at_level(logging.WARNING):
        who = identify(folder, {})
    # the folder name is the best guess left, and the export says how to record the real id
    assert (who.model_id, who.revision, who.origin) == ("gemma-4-12B-it", COMMIT, "folder name")
    assert "--model-id" in caplog.text
    assert str(tmp_path) not in who.model_id
    who = identify(folder, {"_name_or_path": "google/gemma-4-12B-it"})
    assert (who.model_id, who.revision) == ("google/gemma-4-12B-it", COMMIT)


def test_flags_win(tmp_path: Path) -> None:
    folder = tmp_path / "hub" / "models--google--gemma-4-12B-it" / "snapshots" / COMMIT
    folder.mkdir(parents=True)
    who = identify(folder, {"_name_or_path": "other/model"}, model_id="plant/gemma-finetune", revision="v3")
    assert (who.model_id, who.revision, who.origin) == ("plant/gemma-finetune", "v3", "--model-id")


def test_name_or_path_that_is_a_local_path_is_not_an_id(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "edge_fixture.json").write_text(json.dumps({"preset": "tiny"}))
    who = identify(tmp_path / "ckpt", {"_name_or_path": str(tmp_path / "ckpt")})
    assert who.model_id == "edge-fixture/tiny"


def test_exported_bundle_records_the_id_not_the_path(fp32_bundle: Path, tiny_ckpt: Path) -> None:
    source = load_manifest(fp32_bundle).source
    assert source["model_id"] == "edge-fixture/tiny" and str(tiny_ckpt) not in source["model_id"]


@pytest.mark.slow
def test_export_flags_reach_the_manifest(tiny_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    argv = [str(tiny_ckpt), str(out), "--quant", "int4", "--no-parity", "--context", "256"]
    argv += ["--model-id", "google/gemma-4-12B-it", "--model-revision", COMMIT]
    subprocess.run([sys.executable, "-m", "edge", "export", *argv], check=True, capture_output=True, timeout=600)
    source = load_manifest(out).source
    assert (source["model_id"], source["revision"], source["model_id_from"]) == (
        "google/gemma-4-12B-it",
        COMMIT,
        "--model-id",
    )
    shutil.rmtree(out)
