"""verify_bundle refuses a bundle whose bytes differ from its manifest, naming every offending file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import edge.bundle.verify as verify_mod
from edge.bundle.manifest import MANIFEST_NAME, SCHEMA_VERSION, load_manifest
from edge.bundle.verify import verify_bundle
from edge.errors import BundleIntegrityError, BundleNotFoundError, BundleSchemaError
from tests.bundle.test_manifest import BUNDLE_FILES, make_bundle


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "bundle")


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _problems(bundle: Path) -> str:
    with pytest.raises(BundleIntegrityError) as exc:
        verify_bundle(bundle)
    return str(exc.value)


def test_intact_bundle_returns_its_manifest(bundle: Path) -> None:
    m = verify_bundle(bundle)
    assert m == load_manifest(bundle)
    assert set(m.files) == set(BUNDLE_FILES)


@pytest.mark.parametrize("name", sorted(BUNDLE_FILES))
def test_one_flipped_byte_in_any_file_is_caught_and_named(bundle: Path, name: str) -> None:
    _flip(bundle / name, BUNDLE_FILES[name] // 2)  # same size: only the hash can notice
    msg = _problems(bundle)
    assert f"{name}: sha256 mismatch (expected " in msg
    assert msg.count("sha256 mismatch") == 1
    others = [other for other in BUNDLE_FILES if other != name]
    assert not any(f"{other}:" in msg for other in others)


def test_flipped_last_byte_of_the_big_file_is_caught(bundle: Path) -> None:
    _flip(bundle / "decoder.onnx.data", BUNDLE_FILES["decoder.onnx.data"] - 1)  # in hash_file's second chunk
    assert "decoder.onnx.data: sha256 mismatch" in _problems(bundle)


def test_missing_file(bundle: Path) -> None:
    (bundle / "vision.onnx").unlink()
    assert "vision.onnx: missing" in _problems(bundle)


@pytest.mark.parametrize("extra", ["extra.onnx", "sub/extra.onnx", ".hidden.onnx"])
def test_unlisted_file_is_caught(bundle: Path, extra: str) -> None:
    (bundle / extra).parent.mkdir(exist_ok=True)
    (bundle / extra).write_bytes(b"a graph nobody listed")
    assert f"{extra}: not listed in the manifest" in _problems(bundle)


def test_truncated_file_is_caught_by_size_without_hashing_it(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = bundle / "decoder.onnx.data"
    path.write_bytes(path.read_bytes()[:1000])
    hashed: list[str] = []
    real = verify_mod.hash_file
    monkeypatch.setattr(verify_mod, "hash_file", lambda p: hashed.append(Path(p).name) or real(p))
    msg = _problems(bundle)
    assert f"decoder.onnx.data: truncated: 1000 bytes, the manifest says {BUNDLE_FILES['decoder.onnx.data']}" in msg
    assert "decoder.onnx.data" not in hashed
    assert sorted(hashed) == sorted(n for n in BUNDLE_FILES if n != "decoder.onnx.data")


def test_grown_file_is_caught(bundle: Path) -> None:
    with open(bundle / "tokenizer.json", "ab") as f:
        f.write(b"\n")
    assert "tokenizer.json: too large" in _problems(bundle)


def test_folder_in_place_of_a_file(bundle: Path) -> None:
    (bundle / "audio.onnx").unlink()
    (bundle / "audio.onnx").mkdir()
    assert "audio.onnx: not a regular file" in _problems(bundle)


def test_every_problem_is_reported_at_once(bundle: Path) -> None:
    (bundle / "vision.onnx").unlink()
    (bundle / "extra.onnx").write_bytes(b"x")
    _flip(bundle / "decoder.onnx.data", 7)
    msg = _problems(bundle)
    assert "3 file(s)" in msg
    for line in ("vision.onnx: missing", "extra.onnx: not listed", "decoder.onnx.data: sha256 mismatch"):
        assert line in msg


def test_graph_pointing_at_an_unlisted_file(bundle: Path) -> None:
    data = json.loads((bundle / MANIFEST_NAME).read_text())
    data["graphs"]["vision"]["file"] = "vision_v2.onnx"
    (bundle / MANIFEST_NAME).write_text(json.dumps(data))
    assert "vision_v2.onnx: the vision graph's file is not listed in the manifest" in _problems(bundle)


def test_newer_schema_is_refused_before_any_hashing(bundle: Path) -> None:
    (bundle / MANIFEST_NAME).write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(BundleSchemaError, match="upgrade edge-inspector"):
        verify_bundle(bundle)


def test_no_bundle_at_the_path(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFoundError):
        verify_bundle(tmp_path / "nothing")


@pytest.mark.slow
def test_real_exported_bundle_verifies_and_a_flipped_weight_byte_is_caught(int4_bundle: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(int4_bundle, tmp_path / "copy"))
    m = verify_bundle(copy)
    assert {g["file"] for g in m.graphs.values()} <= set(m.files)
    data_files = sorted(n for n in m.files if n.endswith(".onnx.data"))
    assert data_files, "the int4 export should put its big weights in external data"
    _flip(copy / data_files[-1], (copy / data_files[-1]).stat().st_size // 3)
    assert f"{data_files[-1]}: sha256 mismatch" in _problems(copy)


@pytest.mark.parametrize("command", ["verify", "serve"])
def test_refusal_is_one_line_naming_every_file(bundle: Path, command: str) -> None:
    (bundle / "vision.onnx").unlink()
    _flip(bundle / "decoder.onnx.data", 7)
    argv = [str(bundle)] if command == "verify" else ["--bundle", str(bundle), "--listen", "127.0.0.1:0"]
    argv += [] if command == "verify" else ["--metrics-listen", "127.0.0.1:0"]
    proc = subprocess.run([sys.executable, "-m", "edge", command, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == BundleIntegrityError.exit_code
    log = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ INFO ")  # the daemon logs its config before it opens the bundle
    (line,) = [ln for ln in proc.stderr.splitlines() if not log.match(ln)]
    assert line.startswith(f"edge {command}: error: {bundle}: the bundle is refused, 2 file(s) do not match")
    assert "vision.onnx: missing" in line and "decoder.onnx.data: sha256 mismatch" in line
