"""Real exports of the tiny Gemma 4: parity with transformers, bundle layout, and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from edge.build.export import ExportOptions, export_bundle
from edge.build.quantize import recipe
from edge.errors import CheckpointError, ConfigError, UnsupportedModelError

CASES = {"text", "image", "audio", "image_audio", "long"}


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def test_fp32_generates_the_same_tokens_as_transformers_in_every_case(fp32_bundle: Path) -> None:
    parity = _manifest(fp32_bundle)["parity"]
    assert {c["case"] for c in parity["cases"]} == CASES
    for case in parity["cases"]:
        assert case["tokens_equal"], case
        assert len(case["engine_tokens"]) == 32
        assert case["logits_cosine"] > 0.999999
        assert max(case["graph_max_abs"].values()) < 1e-3, case["graph_max_abs"]
    long = next(c for c in parity["cases"] if c["case"] == "long")
    assert long["prompt_tokens"] > 16  # crosses the tiny preset's sliding window before decoding


def test_parity_check_catches_a_wrong_graph(fp32_bundle: Path, tiny_ckpt: Path, tmp_path: Path) -> None:
    """The check can fail: the same bundle built for the other image mask diverges on image prompts."""
    from edge.build.parity import check_bundle

    report = check_bundle(fp32_bundle, tiny_ckpt, exact=False, image_mask="all", cases=("image",))
    assert not report["all_tokens_equal"]


def test_exact_parity_failure_names_the_case_and_position(fp32_bundle: Path, tiny_ckpt: Path) -> None:
    from edge.build.parity import check_bundle
    from edge.errors import ParityError

    with pytest.raises(ParityError, match=r"diverges from transformers in case 'image' at new token \d+"):
        check_bundle(fp32_bundle, tiny_ckpt, exact=True, image_mask="all", cases=("text", "image"))


def test_image_mask_all_matches_dynamic_cache_generate(tmp_path: Path, tiny_ckpt: Path) -> None:
    out = tmp_path / "all"
    m = export_bundle(str(tiny_ckpt), out, ExportOptions(recipe=recipe("fp32"), image_mask="all", context=1024))
    assert m["parity"]["all_tokens_equal"], m["parity"]
    assert m["processor"]["image_mask"] == "all"


def test_bundle_layout_and_genai_names(fp32_bundle: Path) -> None:
    m = _manifest(fp32_bundle)
    assert set(m["graphs"]) == {"vision", "audio", "embedding", "decoder"}
    dec = m["graphs"]["decoder"]
    names = [i["name"] for i in dec["inputs"]]
    assert dec["kind"] == "fused"
    assert names[:3] == ["inputs_embeds", "position_ids", "mm_token_type_ids"]
    assert "past_key_values.0.key" in names and "past_key_values.5.value" in names
    outs = [o["name"] for o in dec["outputs"]]
    assert outs[0] == "logits" and "present.2.key" in outs
    shapes = {i["name"]: i["shape"] for i in dec["inputs"]}
    # per-layer KV geometry follows per_layer_config: sliding 2 heads x 16, full 1 head x 32; the
    # runtime owns the buffers (window-sized for sliding layers, the context for full ones)
    assert shapes["past_key_values.0.key"] == [1, 2, "kv_window_capacity", 16]
    assert shapes["past_key_values.2.key"] == [1, 1, "kv_capacity", 32]
    for name, entry in m["files"].items():
        assert (fp32_bundle / name).stat().st_size == entry["size"]
    assert m["memory_plan"]["verdict"] in ("fits", "tight", "does not fit")


def test_int4_decoder_uses_matmulnbits(int4_bundle: Path, fp32_bundle: Path) -> None:
    model = onnx.load(str(int4_bundle / "decoder.onnx"), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    assert "MatMulNBits" in ops
    assert not any(n.op_type == "MatMul" and n.input[1].endswith("proj.weight") for n in model.graph.node)
    m = _manifest(int4_bundle)
    assert m["quantization"]["decoder"]["scheme"] == "int4"
    assert m["parity"]["cases"] and all(c["top1_equal"] is not None for c in m["parity"]["cases"])


def test_unsupported_model_type(tmp_path: Path, tiny_ckpt: Path) -> None:
    src = tmp_path / "llama"
    shutil.copytree(tiny_ckpt, src)
    cfg = json.loads((src / "config.json").read_text())
    cfg["model_type"] = "llama"
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedModelError, match="supported: gemma4_unified"):
        export_bundle(str(src), tmp_path / "out", ExportOptions(recipe=recipe("fp32")))
    assert not (tmp_path / "out").exists()


def test_truncated_weights_leave_nothing_behind(tmp_path: Path, tiny_ckpt: Path) -> None:
    src = tmp_path / "broken"
    shutil.copytree(tiny_ckpt, src)
    data = (src / "model.safetensors").read_bytes()
    (src / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        export_bundle(str(src), tmp_path / "out", ExportOptions(recipe=recipe("fp32")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]


def test_missing_config(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        export_bundle(str(tmp_path / "empty"), tmp_path / "out", ExportOptions(recipe=recipe("fp32")))


def test_config_only_checkpoint_cannot_be_exported(tmp_path: Path) -> None:
    from edge.build.fixtures.checkpoint import write_checkpoint

    ckpt = write_checkpoint("12b", tmp_path / "12b")
    assert not (ckpt / "model.safetensors").exists()
    with pytest.raises(CheckpointError, match="edge plan"):
        export_bundle(str(ckpt), tmp_path / "out", ExportOptions(recipe=recipe("int4")))


def test_existing_output_needs_force(tmp_path: Path, tiny_ckpt: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigError, match="--force"):
        export_bundle(str(tiny_ckpt), tmp_path / "out", ExportOptions(recipe=recipe("fp32")))


def test_hub_id_is_refused_with_the_download_command(tmp_path: Path) -> None:
    """Nothing downloads from a model hub: a hub id gets the command that fetches it, and no network is tried."""
    with pytest.raises(CheckpointError, match="hf download google/gemma-4-12B-it --local-dir"):
        export_bundle("google/gemma-4-12B-it", tmp_path / "out", ExportOptions(recipe=recipe("int4")))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("url", "command"),
    [
        ("https://huggingface.co/google/gemma-4-12B-it", "hf download google/gemma-4-12B-it --local-dir"),
        ("huggingface.co/google/gemma-4-12B-it/", "hf download google/gemma-4-12B-it --local-dir"),
        (
            "https://huggingface.co/google/gemma-4-12B-it/tree/0a1b2c3",
            "hf download google/gemma-4-12B-it --revision 0a1b2c3 --local-dir checkpoints/gemma-4-12B-it",
        ),
        (
            "https://hf.co/google/gemma-4-12B-it/blob/main/config.json",
            "hf download google/gemma-4-12B-it --revision main",
        ),
    ],
)
def test_hub_url_is_refused_with_the_download_command(tmp_path: Path, url: str, command: str) -> None:
    with pytest.raises(CheckpointError, match="not hub URLs") as err:
        export_bundle(url, tmp_path / "out", ExportOptions(recipe=recipe("int4")))
    assert command in str(err.value)


def test_other_urls_are_refused_without_a_hub_command(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="reads local folders only; download the checkpoint first") as err:
        export_bundle("https://example.com/models/gemma.tar", tmp_path / "out", ExportOptions(recipe=recipe("int4")))
    assert "hf download" not in str(err.value)


def test_cli_export_reports_errors_with_exit_codes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "export", str(tmp_path / "nope"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == CheckpointError.exit_code
    assert "no such checkpoint folder" in proc.stderr
    assert proc.stderr.count("\n") == 1  # one clear line, no traceback


@pytest.fixture()
def small_disk(tmp_path: Path):
    """A real 1 MiB tmpfs (needs root, which CI and these machines have)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_too_small_disk_is_refused_up_front(small_disk: Path, tiny_ckpt: Path) -> None:
    from edge.errors import OutputSpaceError

    with pytest.raises(OutputSpaceError, match="GiB free"):
        export_bundle(str(tiny_ckpt), small_disk / "out", ExportOptions(recipe=recipe("fp32"), parity=False))
    assert list(small_disk.iterdir()) == []


def test_disk_filling_up_mid_export_leaves_nothing(
    small_disk: Path, tiny_ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Skip the up-front estimate so the real filesystem runs out of space while graphs are written."""
    import edge.build.export as export_mod
    from edge.errors import OutputSpaceError

    monkeypatch.setattr(export_mod, "_check_space", lambda *a: None)
    with pytest.raises(OutputSpaceError, match="filled up"):
        export_bundle(str(tiny_ckpt), small_disk / "out", ExportOptions(recipe=recipe("fp32"), parity=False))
    assert list(small_disk.iterdir()) == []
