"""manifest.json: hashing, bundle ids, validation and atomic writing, on a real folder of small files."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from edge.build.fixtures.presets import PRESETS, REAL_TOKEN_IDS, hf_config
from edge.bundle.manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Manifest,
    compute_bundle_id,
    file_table,
    hash_file,
    load_manifest,
    write_manifest,
)
from edge.errors import BundleNotFoundError, BundleSchemaError
from edge.spec import ModelSpec

# Bytes stand in for the real graphs: the manifest and verify only look at bytes, not ONNX.
BUNDLE_FILES = {
    "vision.onnx": 3_000,
    "audio.onnx": 1_000,
    "embedding.onnx": 2_000,
    "embedding.onnx.data": 70_000,
    "decoder.onnx": 5_000,
    "decoder.onnx.data": (1 << 20) + 12_345,  # crosses hash_file's 1 MiB chunk boundary
    "tokenizer.json": 4_000,
    "tokenizer_config.json": 300,
    "chat_template.jinja": 200,
}
GRAPHS = ("vision", "audio", "embedding", "decoder")


def manifest_data(bundle: Path) -> dict[str, Any]:
    """The dict the exporter hands to write_manifest (no bundle_id: it is derived)."""
    spec = ModelSpec.from_hf_config(hf_config(PRESETS["tiny"], REAL_TOKEN_IDS))
    io = {"name": "x", "dtype": "float32", "shape": ["batch", "seq", 64]}
    return {
        "schema_version": SCHEMA_VERSION,
        "created": "2025-01-01T00:00:00Z",
        "source": {"model_id": "tiny", "revision": None},
        "tools": {"onnxruntime": "1.31.1"},
        "model": spec.to_dict(),
        "graphs": {g: {"file": f"{g}.onnx", "inputs": [io], "outputs": [io]} for g in GRAPHS},
        "files": file_table(bundle, BUNDLE_FILES),
        "quantization": {"name": "int4"},
        "tokenizer": {"file": "tokenizer.json"},
        "processor": {"max_soft_tokens": 280},
        "generation": {"max_new_tokens": 256},
        "context": 4096,
        "parity": {"status": "skipped"},
        "memory_plan": {"verdict": "fits"},
        "export_seconds": 1.5,  # a key the schema does not name: kept in ``extra``
    }


def make_bundle(root: Path) -> Path:
    """A bundle folder of seeded random files plus a valid manifest.json."""
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, size) in enumerate(BUNDLE_FILES.items()):
        (root / name).write_bytes(hashlib.shake_256(f"{i}:{name}".encode()).digest(size))
    write_manifest(root, manifest_data(root))
    return root


def _raw(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / MANIFEST_NAME).read_text())


def _rewrite(bundle: Path, data: dict[str, Any]) -> None:
    (bundle / MANIFEST_NAME).write_text(json.dumps(data))


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    data = manifest_data(bundle)
    m = load_manifest(bundle)
    assert isinstance(m, Manifest)
    assert m.bundle_id == compute_bundle_id(data["files"])
    assert m.extra == {"export_seconds": 1.5}
    assert m.to_dict() == json.loads(json.dumps({**data, "bundle_id": m.bundle_id}))  # tuples come back as lists
    assert m.spec == ModelSpec.from_dict(data["model"])
    assert m.spec.text.layers[2].head_dim == 32  # the tiny preset's global head_dim survives the trip


def test_written_atomically_and_readable_by_others(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    assert sorted(p.name for p in bundle.iterdir() if p.name.startswith(".")) == []  # no temp file left
    assert stat.S_IMODE((bundle / MANIFEST_NAME).stat().st_mode) == 0o644


def test_failed_write_leaves_old_manifest_untouched(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    before = (bundle / MANIFEST_NAME).read_bytes()
    bad = {**manifest_data(bundle), "parity": {"cases": {1, 2}}}  # a set is not JSON
    with pytest.raises(TypeError):
        write_manifest(bundle, bad)
    assert (bundle / MANIFEST_NAME).read_bytes() == before
    assert [p.name for p in bundle.iterdir() if p.name.startswith(".")] == []


def test_write_refuses_missing_keys_without_writing(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    (bundle / MANIFEST_NAME).unlink()
    data = manifest_data(bundle)
    del data["memory_plan"]
    with pytest.raises(BundleSchemaError, match="missing key 'memory_plan'"):
        write_manifest(bundle, data)
    assert not (bundle / MANIFEST_NAME).exists()


def test_hash_file_and_file_table_match_hashlib(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    table = file_table(bundle, ["decoder.onnx.data", "audio.onnx"])
    assert list(table) == ["audio.onnx", "decoder.onnx.data"]
    for name, entry in table.items():
        raw = (bundle / name).read_bytes()
        assert entry == {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    assert hash_file(bundle / "decoder.onnx.data") == table["decoder.onnx.data"]["sha256"]


def test_bundle_id_is_stable_and_tracks_content(tmp_path: Path) -> None:
    files = file_table(make_bundle(tmp_path / "b"), BUNDLE_FILES)
    bid = compute_bundle_id(files)
    assert len(bid) == 16 and int(bid, 16) >= 0
    assert compute_bundle_id(dict(reversed(list(files.items())))) == bid
    changed = {**files, "vision.onnx": {**files["vision.onnx"], "sha256": "0" * 64}}
    assert compute_bundle_id(changed) != bid
    renamed = {("vision2.onnx" if k == "vision.onnx" else k): v for k, v in files.items()}
    assert compute_bundle_id(renamed) != bid


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFoundError, match="does not exist") as exc:
        load_manifest(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(exc.value)


def test_folder_without_manifest_names_the_manifest_path(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    with pytest.raises(BundleNotFoundError) as exc:
        load_manifest(tmp_path / "b")
    assert str(tmp_path / "b" / MANIFEST_NAME) in str(exc.value)


def test_malformed_json_is_a_schema_error(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    (bundle / MANIFEST_NAME).write_text('{"schema_version": 1,')
    with pytest.raises(BundleSchemaError, match="not valid JSON"):
        load_manifest(bundle)


def test_non_object_json_is_a_schema_error(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    (bundle / MANIFEST_NAME).write_text("[1, 2]")
    with pytest.raises(BundleSchemaError, match="JSON object"):
        load_manifest(bundle)


def test_newer_schema_asks_for_an_upgrade(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    # a newer schema may be shaped differently: the version is judged before any other key
    _rewrite(bundle, {"schema_version": SCHEMA_VERSION + 1, "graphs": "changed shape"})
    with pytest.raises(BundleSchemaError) as exc:
        load_manifest(bundle)
    assert (
        f"bundle schema {SCHEMA_VERSION + 1} is newer than this edge-inspector (supports {SCHEMA_VERSION}): "
        "upgrade edge-inspector"
    ) in str(exc.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": "1"}, "schema_version must be an integer"),
        ({"schema_version": True}, "schema_version must be an integer"),
        ({"schema_version": 0}, "at least 1"),
        ({"context": "4096"}, "context: expected int, got str"),
        ({"context": 0}, "context: must be positive"),
        ({"graphs": []}, "graphs: expected dict, got list"),
        ({"bundle_id": 7}, "bundle_id: expected str"),
        ({"graphs": {"decoder": {"inputs": []}}}, "graphs['decoder']"),
        ({"model": {"model_type": "gemma4_unified"}}, "model: not a model spec"),
    ],
)
def test_wrong_types_are_schema_errors(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    bundle = make_bundle(tmp_path / "b")
    _rewrite(bundle, {**_raw(bundle), **change})
    with pytest.raises(BundleSchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_manifest(bundle)


def test_every_missing_key_is_named(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    data = _raw(bundle)
    del data["files"], data["parity"]
    _rewrite(bundle, data)
    with pytest.raises(BundleSchemaError, match=r"missing key 'files'.*missing key 'parity'"):
        load_manifest(bundle)


@pytest.mark.parametrize(
    ("name", "entry", "message"),
    [
        ("../outside.bin", None, "not a relative path inside the bundle"),
        ("/etc/passwd", None, "not a relative path inside the bundle"),
        (MANIFEST_NAME, None, "cannot list itself"),
        ("vision.onnx", {"size": -1}, "size: expected a non-negative integer"),
        ("vision.onnx", {"sha256": "ABC"}, "sha256: expected 64 lowercase hex digits"),
    ],
)
def test_bad_file_entries_are_schema_errors(tmp_path: Path, name: str, entry: dict | None, message: str) -> None:
    bundle = make_bundle(tmp_path / "b")
    data = _raw(bundle)
    good = data["files"]["vision.onnx"]
    data["files"][name] = {**good, **(entry or {})}
    _rewrite(bundle, data)
    with pytest.raises(BundleSchemaError, match=message):
        load_manifest(bundle)


def test_unreadable_manifest_bytes_are_a_schema_error(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    (bundle / MANIFEST_NAME).write_bytes(b"\xff\xfe{}")
    with pytest.raises(BundleSchemaError, match="not UTF-8"):
        load_manifest(bundle)
    assert os.path.exists(bundle / MANIFEST_NAME)
