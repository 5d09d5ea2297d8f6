"""The bundle manifest: its typed form, file hashing, and atomic reading and writing of ``manifest.json``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from edge.errors import BundleError, BundleNotFoundError, BundleSchemaError, EdgeError
from edge.spec import ModelSpec

T = TypeVar("T")
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
CHUNK_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Manifest:
    """What a bundle contains, as written by ``edge export`` and read by the station.

    Keys this version does not know are kept in ``extra`` and written back unchanged.

    >>> m = load_manifest(Path("bundle"))
    >>> m.spec.text.hidden_size, m.files["decoder.onnx"]["sha256"]
    """

    schema_version: int
    bundle_id: str
    created: str
    source: dict[str, Any]
    tools: dict[str, Any]
    model: dict[str, Any]  # ModelSpec.to_dict()
    graphs: dict[str, Any]  # name -> {"file", "inputs": [{"name", "dtype", "shape"}], "outputs": [...]}
    files: dict[str, Any]  # relative POSIX path -> {"size": int, "sha256": str}
    quantization: dict[str, Any]
    tokenizer: dict[str, Any]
    processor: dict[str, Any]
    generation: dict[str, Any]
    context: int
    parity: dict[str, Any]
    memory_plan: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec.from_dict(self.model)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        """Validate ``d`` and build a manifest; raises :class:`BundleSchemaError` naming every problem."""
        if not isinstance(d, dict):
            raise BundleSchemaError(f"the manifest must be a JSON object, got {type(d).__name__}")
        _check_version(d.get("schema_version"))
        problems = [p for name, kind in _FIELD_TYPES.items() for p in _check_field(d, name, kind)]
        if not problems:
            problems += check_file_table(d["files"]) + _check_graphs(d["graphs"]) + _check_model(d["model"])
            if d["context"] <= 0:
                problems.append(f"context: must be positive, got {d['context']}")
        if problems:
            raise BundleSchemaError("malformed manifest: " + "; ".join(problems))
        known = {name: d[name] for name in _FIELD_TYPES}
        return cls(**known, extra={k: v for k, v in d.items() if k not in _FIELD_TYPES})


_FIELD_TYPES: dict[str, type] = {f.name: dict for f in fields(Manifest) if f.name != "extra"}
_FIELD_TYPES.update(schema_version=int, bundle_id=str, created=str, context=int)


def _check_version(version: Any) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise BundleSchemaError(f"malformed manifest: schema_version must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise BundleSchemaError(
            f"bundle schema {version} is newer than this edge-inspector (supports {SCHEMA_VERSION}): "
            "upgrade edge-inspector"
        )
    if version < 1:
        raise BundleSchemaError(f"malformed manifest: schema_version must be at least 1, got {version}")


def _check_field(d: dict[str, Any], name: str, kind: type) -> list[str]:
    if name not in d:
        return [f"missing key {name!r}"]
    value = d[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        return [f"{name}: expected {kind.__name__}, got {type(value).__name__}"]
    return []


def check_file_table(files: dict[str, Any]) -> list[str]:
    """Problems with a manifest's ``files`` table: unsafe paths, the manifest listing itself, bad sizes or hashes."""
    problems = []
    for name, entry in files.items():
        if not _is_safe_relative(name):
            problems.append(f"files: {name!r} is not a relative path inside the bundle")
        elif name == MANIFEST_NAME:
            problems.append(f"files: {MANIFEST_NAME} cannot list itself")
        if not isinstance(entry, dict):
            problems.append(f"files[{name!r}]: expected an object with size and sha256")
            continue
        size, digest = entry.get("size"), entry.get("sha256")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            problems.append(f"files[{name!r}].size: expected a non-negative integer, got {size!r}")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            problems.append(f"files[{name!r}].sha256: expected 64 lowercase hex digits, got {digest!r}")
    return problems


def _check_graphs(graphs: dict[str, Any]) -> list[str]:
    problems = []
    for name, graph in graphs.items():
        if not isinstance(graph, dict) or not isinstance(graph.get("file"), str):
            problems.append(f"graphs[{name!r}]: expected an object with a 'file' string")
            continue
        for key in ("inputs", "outputs"):
            if not isinstance(graph.get(key, []), list):
                problems.append(f"graphs[{name!r}].{key}: expected a list")
    return problems


def _check_model(model: dict[str, Any]) -> list[str]:
    try:
        ModelSpec.from_dict(model)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return [f"model: not a model spec ({type(exc).__name__}: {exc})"]
    return []


def _is_safe_relative(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and "\\" not in name and not p.is_absolute() and ".." not in p.parts and p.as_posix() == name


def hash_file(path: Path | str) -> str:
    """sha256 of a file, read in 1 MiB chunks so a multi-GB weight file never sits in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def file_table(bundle_dir: Path | str, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"size", "sha256"}}`` for each relative path in ``names``, sorted by name."""
    root = Path(bundle_dir)
    return {n: {"size": (root / n).stat().st_size, "sha256": hash_file(root / n)} for n in sorted(names)}


def graph_bytes(files: dict[str, Any], graphs: Iterable[str]) -> dict[str, int]:
    """Bytes on disk per graph: ``<name>.onnx`` plus its external data, from a manifest ``files`` table."""
    return {g: sum(int(f["size"]) for n, f in files.items() if n.startswith(g + ".onnx")) for g in graphs}


def compute_bundle_id(files: dict[str, Any]) -> str:
    """A short id that changes whenever any file's bytes change: 16 hex of sha256 over sorted "name:sha256" lines."""
    lines = "".join(f"{name}:{files[name]['sha256']}\n" for name in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def write_manifest(bundle_dir: Path | str, data: dict[str, Any]) -> Manifest:
    """Validate ``data`` and write ``manifest.json`` atomically; ``bundle_id`` is derived from ``files`` if absent."""
    root = Path(bundle_dir)
    data = dict(data)
    if isinstance(data.get("files"), dict) and "bundle_id" not in data:
        with contextlib.suppress(KeyError, TypeError):  # from_dict reports the malformed file table
            data["bundle_id"] = compute_bundle_id(data["files"])
    manifest = Manifest.from_dict(data)
    write_json_atomic(root / MANIFEST_NAME, manifest.to_dict())
    return manifest


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path`` through a synced temporary file, so readers never see half."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the station daemon may run as another user
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_manifest(bundle_dir: Path | str) -> Manifest:
    """Read and validate ``<bundle_dir>/manifest.json`` (no file hashing: see ``verify_bundle``)."""
    written_by = "a bundle folder written by `edge export`"
    errors = (BundleNotFoundError, BundleSchemaError, BundleError)
    return read_manifest(Path(bundle_dir), "bundle", written_by, errors, Manifest.from_dict)


def read_manifest(
    root: Path,
    what: str,
    written_by: str,
    errors: tuple[type[EdgeError], type[EdgeError], type[EdgeError]],
    parse: Callable[[Any], T],
) -> T:
    """Read ``<root>/manifest.json`` of a ``what`` folder and ``parse`` it; ``errors`` are the caller's classes
    for (not found, malformed, unreadable), raised with the path (``parse`` raises the malformed one)."""
    not_found, malformed, unreadable = errors
    path = root / MANIFEST_NAME
    if not root.is_dir():
        state = "is not a folder" if root.exists() else "does not exist"
        raise not_found(f"{root}: no {what} here (the path {state})")
    if not path.is_file():
        raise not_found(f"{path}: not found; is {root} {written_by}?")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise malformed(f"{path}: not UTF-8 text ({exc})") from exc
    except OSError as exc:
        raise unreadable(f"{path}: cannot read the manifest ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise malformed(f"{path}: not valid JSON ({exc})") from exc
    try:
        return parse(data)
    except malformed as exc:
        raise malformed(f"{path}: {exc}") from None


__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "Manifest",
    "check_file_table",
    "compute_bundle_id",
    "file_table",
    "hash_file",
    "load_manifest",
    "read_manifest",
    "write_json_atomic",
    "write_manifest",
]
