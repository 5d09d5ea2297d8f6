"""Which code built a fixture checkpoint or bundle, so a later run reuses it only when that code is unchanged.

A stamp is the preset's name and a hash of this version and the bytes of the fixture, graph, export and
quantization code. ``edge demo`` and ``edge bench --preset`` write it next to what they build and rebuild when
it differs (e.g. after the fixture tokenizer or the trained corpus changed), instead of reusing stale files.

>>> stamp = code_stamp("trained")
>>> if not stamped(ckpt, stamp): write_checkpoint("trained", ckpt); mark(ckpt, stamp)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

STAMP = ".edge-build-stamp"


def code_stamp(preset: str) -> str:
    """The preset and a hash of this version and the fixture and export code's bytes."""
    import edge
    from edge.build import export, fixtures, graphs, quantize

    h = hashlib.sha256(edge.__version__.encode())
    for module in (fixtures, graphs):
        for f in sorted(Path(module.__file__ or "").parent.glob("*.py")):
            h.update(f.read_bytes())
    for mod in (export, quantize):
        h.update(Path(mod.__file__ or "").read_bytes())
    return f"{preset} {h.hexdigest()[:16]}"


def stamped(folder: Path, stamp: str) -> bool:
    """``folder`` was built by code with this stamp."""
    return (folder / STAMP).is_file() and (folder / STAMP).read_text() == stamp


def mark(folder: Path, stamp: str) -> None:
    (folder / STAMP).write_text(stamp)


def _bundle_marker(bundle: Path) -> Path:
    return bundle.parent / f"{bundle.name}.stamp"  # outside the bundle: its files are exactly the manifest's


def reused_bundle(bundle: Path, stamp: str) -> dict[str, Any] | None:
    """The manifest of an intact bundle that code with this stamp exported, else None."""
    from edge.bundle.verify import verify_bundle
    from edge.errors import BundleError

    marker = _bundle_marker(bundle)
    if not (marker.is_file() and marker.read_text() == stamp):
        return None
    try:
        verify_bundle(bundle)
    except BundleError:
        return None
    return dict(json.loads((bundle / "manifest.json").read_text()))


def mark_bundle(bundle: Path, stamp: str) -> None:
    _bundle_marker(bundle).write_text(stamp)
