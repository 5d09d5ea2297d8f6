"""A gate folder is verified like a bundle: tampered, missing, extra or unlisted files refuse it, by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge.errors import GateIntegrityError, GateNotFoundError, GateSchemaError
from edge.gate import load_gate
from edge.gate.manifest import verify_gate


@pytest.fixture
def gate_copy(tmp_path: Path, fitted_gate: Path) -> Path:
    return Path(shutil.copytree(fitted_gate, tmp_path / "gate"))


def test_a_flipped_byte_in_the_graph_is_refused(gate_copy: Path) -> None:
    graph = gate_copy / "image.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the variation model's statistics: still a loadable graph
    graph.write_bytes(bytes(data))
    with pytest.raises(GateIntegrityError, match=r"image\.onnx: sha256 mismatch"):
        verify_gate(gate_copy)
    with pytest.raises(GateIntegrityError):
        load_gate(gate_copy)
    assert load_gate(gate_copy, verify=False).image is not None  # verify=False trusts the bytes


def test_every_problem_is_listed(gate_copy: Path) -> None:
    (gate_copy / "sound.npz").unlink()
    (gate_copy / "references" / "01.jpg").write_bytes(b"x")
    (gate_copy / "stray.txt").write_text("left behind")
    with pytest.raises(GateIntegrityError) as err:
        verify_gate(gate_copy)
    text = str(err.value)
    assert "3 file(s) do not match" in text
    assert "sound.npz: missing" in text
    assert "references/01.jpg: truncated" in text
    assert "stray.txt: not listed in the manifest" in text


def test_edited_manifest_is_refused(gate_copy: Path) -> None:
    path = gate_copy / "manifest.json"
    data = json.loads(path.read_text())
    data["gate_id"] = "0" * 16
    path.write_text(json.dumps(data))
    with pytest.raises(GateIntegrityError, match="gate_id does not match the files table"):
        verify_gate(gate_copy)


def test_manifest_schema(gate_copy: Path, tmp_path: Path) -> None:
    path = gate_copy / "manifest.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "schema_version": 99}))
    with pytest.raises(GateSchemaError, match="newer than this edge-inspector"):
        verify_gate(gate_copy)
    path.write_text(json.dumps({**data, "image": {**data["image"], "graph": "other.onnx"}}))
    with pytest.raises(GateSchemaError, match=r"refers to 'other\.onnx'"):
        verify_gate(gate_copy)
    path.write_text(json.dumps({k: v for k, v in data.items() if k != "kind"} | {"bundle_id": "x"}))
    with pytest.raises(GateSchemaError, match="looks like a model bundle"):
        verify_gate(gate_copy)
    path.write_text("{not json")
    with pytest.raises(GateSchemaError, match="not valid JSON"):
        verify_gate(gate_copy)
    with pytest.raises(GateNotFoundError, match="does not exist"):
        verify_gate(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GateNotFoundError, match="edge gate fit"):
        verify_gate(tmp_path / "empty")


def test_bad_values_in_a_consistent_manifest(gate_copy: Path) -> None:
    """A manifest rewritten with its hashes updated still has to make sense to the loader."""
    from edge.bundle.manifest import write_json_atomic
    from edge.gate.manifest import write_gate_manifest

    data = json.loads((gate_copy / "manifest.json").read_text())
    data["image"]["score_knot"] = 1.5
    write_gate_manifest(gate_copy, {k: data[k] for k in ("created", "tools", "image", "sound", "files")})
    with pytest.raises(GateSchemaError, match=r"image\.score_knot: must be inside \(0, 1\)"):
        load_gate(gate_copy)
    data["image"]["score_knot"] = 0.5
    data["sound"]["quantile"] = "high"
    write_json_atomic(gate_copy / "manifest.json", data)
    with pytest.raises(GateSchemaError, match=r"sound\.quantile: expected float"):
        load_gate(gate_copy)
