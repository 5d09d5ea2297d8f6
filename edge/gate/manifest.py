"""A gate folder's manifest: its typed form, atomic writing, and verification against the folder's bytes.

A gate is verified the way a bundle is (same hashing and file checks, :mod:`edge.bundle.verify`): every file
listed with its size and sha256, nothing unlisted, and ``gate_id`` derived from the file table.

    gate/
      manifest.json      this schema: the image and/or sound section, files, tools
      image.onnx         the image graph in anomalib's contract (ours or a wrapped anomalib export)
      reference.png      the registration / illumination reference, when the pre-step is on
      references/*.jpg   a few downscaled good frames, for k-shot prompts
      sound.npz          the sound model's statistics

>>> manifest = verify_gate(Path("gate"))
>>> manifest.gate_id, manifest.image["input_size"], manifest.image["calibration"]["threshold"]
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edge.bundle.manifest import (
    MANIFEST_NAME,
    check_file_table,
    compute_bundle_id,
    read_manifest,
    write_json_atomic,
)
from edge.bundle.verify import file_problems, refusal
from edge.errors import GateError, GateIntegrityError, GateNotFoundError, GateSchemaError

GATE_SCHEMA_VERSION = 1
GATE_KIND = "edge-inspector-gate"


@dataclass(frozen=True)
class GateManifest:
    """What a gate folder holds, as written by ``edge gate fit``. Unknown keys are kept in ``extra``.

    >>> m = load_gate_manifest(Path("gate"))
    >>> m.image is not None, m.sound is not None
    """

    schema_version: int
    kind: str
    gate_id: str
    created: str
    tools: dict[str, Any]
    image: dict[str, Any] | None
    sound: dict[str, Any] | None
    files: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    @classmethod
    def from_dict(cls, d: Any) -> GateManifest:
        """Validate ``d``; raises :class:`GateSchemaError` naming every problem."""
        if not isinstance(d, dict):
            raise GateSchemaError(f"the gate manifest must be a JSON object, got {type(d).__name__}")
        if d.get("kind") != GATE_KIND:
            hint = " (this looks like a model bundle: use `edge verify`)" if "bundle_id" in d else ""
            raise GateSchemaError(f"not a gate manifest: kind is {d.get('kind')!r}, expected {GATE_KIND!r}{hint}")
        version = d.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise GateSchemaError(f"schema_version must be a positive integer, got {version!r}")
        if version > GATE_SCHEMA_VERSION:
            raise GateSchemaError(
                f"gate schema {version} is newer than this edge-inspector (supports {GATE_SCHEMA_VERSION}): upgrade"
            )
        problems = []
        for name, kind in (("gate_id", str), ("created", str), ("tools", dict), ("files", dict)):
            if not isinstance(d.get(name), kind):
                problems.append(f"{name}: expected {kind.__name__}, got {type(d.get(name)).__name__}")
        for name in ("image", "sound"):
            if d.get(name) is not None and not isinstance(d[name], dict):
                problems.append(f"{name}: expected an object or null")
        if not problems:
            problems += check_file_table(d["files"])
            if d.get("image") is None and d.get("sound") is None:
                problems.append("the gate holds neither an image nor a sound section")
            for section in ("image", "sound"):
                for name in referenced_files(d.get(section)):
                    if name not in d["files"]:
                        problems.append(f"{section}: refers to {name!r}, which the files table does not list")
        if problems:
            raise GateSchemaError("malformed gate manifest: " + "; ".join(problems))
        known = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, Any] = {k: d.get(k) for k in known}
        return cls(**values, extra={k: v for k, v in d.items() if k not in known})


def referenced_files(section: dict[str, Any] | None) -> list[str]:
    """Every file a manifest section points at (graph, reference, references, sound parameters)."""
    if not section:
        return []
    names = [section[k] for k in ("graph", "params") if isinstance(section.get(k), str)]
    prestep = section.get("prestep")
    if isinstance(prestep, dict) and isinstance(prestep.get("reference"), str):
        names.append(prestep["reference"])
    names += [r for r in section.get("references", []) if isinstance(r, str)]
    names += [r for r in section.get("external_data", []) if isinstance(r, str)]
    return names


def write_gate_manifest(folder: Path, data: dict[str, Any]) -> GateManifest:
    """Validate ``data`` (``gate_id`` derived from ``files``) and write ``manifest.json`` atomically."""
    data = {"schema_version": GATE_SCHEMA_VERSION, "kind": GATE_KIND, **data}
    data["gate_id"] = compute_bundle_id(data["files"])
    manifest = GateManifest.from_dict(data)
    write_json_atomic(folder / MANIFEST_NAME, manifest.to_dict())
    return manifest


def load_gate_manifest(folder: Path) -> GateManifest:
    """Read and validate ``<folder>/manifest.json`` (no hashing: see :func:`verify_gate`)."""
    written_by = "a gate folder written by `edge gate fit`"
    errors = (GateNotFoundError, GateSchemaError, GateError)
    return read_manifest(folder, "gate", written_by, errors, GateManifest.from_dict)


def verify_gate(folder: Path) -> GateManifest:
    """Load the manifest and check every byte of the gate folder; raises :class:`GateIntegrityError` listing all."""
    manifest = load_gate_manifest(folder)
    problems = file_problems(folder, manifest.files)
    if manifest.gate_id != compute_bundle_id(manifest.files):
        problems[MANIFEST_NAME] = "gate_id does not match the files table (the manifest was edited)"
    if problems:
        remedy = "copy the gate folder again (or fit it again with `edge gate fit`)"
        raise GateIntegrityError(refusal(folder, problems, "the gate manifest", "the gate", remedy))
    return manifest


__all__ = [
    "GATE_KIND",
    "GATE_SCHEMA_VERSION",
    "GateManifest",
    "load_gate_manifest",
    "referenced_files",
    "verify_gate",
    "write_gate_manifest",
]
