"""Check a bundle's bytes against its manifest: every listed file present, sized and hashed right, nothing extra."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from edge.bundle.manifest import MANIFEST_NAME, Manifest, hash_file, load_manifest
from edge.errors import BundleIntegrityError


def verify_bundle(bundle_dir: Path | str) -> Manifest:
    """Load the manifest and check every byte of the bundle against it; returns the manifest.

    Raises :class:`BundleIntegrityError` listing every problem found (not just the first), on one line, so
    one run tells the integrator everything that is wrong with a copied bundle.

    >>> manifest = verify_bundle(Path("bundle"))
    >>> manifest.bundle_id
    """
    root = Path(bundle_dir)
    manifest = load_manifest(root)
    problems = file_problems(root, manifest.files)
    for graph, entry in sorted(manifest.graphs.items()):
        if entry["file"] not in manifest.files:
            problems.setdefault(entry["file"], f"the {graph} graph's file is not listed in the manifest")
    if problems:
        remedy = "copy the bundle again from the build host (or re-export it)"
        raise BundleIntegrityError(refusal(root, problems, "manifest.json", "the bundle", remedy))
    return manifest


def file_problems(root: Path, files: dict[str, Any]) -> dict[str, str]:
    """``{relative path: what is wrong}`` for a folder checked against a manifest ``files`` table.

    Every file under ``root`` other than ``manifest.json`` must be listed, and every listed file must have
    its size and sha256. Sizes are checked first, so a truncated multi-GB copy is reported without reading it.
    """
    problems: dict[str, str] = {}
    for name in sorted(_present(root) - set(files) - {MANIFEST_NAME}):
        problems[name] = "not listed in the manifest"
    to_hash = []
    for name, entry in sorted(files.items()):
        problem = _size_problem(root / name, int(entry["size"]))
        if problem:
            problems[name] = problem
        else:
            to_hash.append(name)
    # hashlib releases the GIL, so two workers halve the wait on a two-core station
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        digests = dict(zip(to_hash, pool.map(lambda n: _digest(root / n), to_hash), strict=True))
    for name in to_hash:
        expected, got = files[name]["sha256"], digests[name]
        if got is None:
            problems[name] = "unreadable"
        elif got != expected:
            problems[name] = f"sha256 mismatch (expected {expected[:12]}…, got {got[:12]}…)"
    return problems


def refusal(root: Path, problems: dict[str, str], manifest: str, what: str, remedy: str) -> str:
    """The one line refusing a folder, every bad file named: the CLI, the daemon's journal and Ansible's failure
    output show all of it."""
    named = "; ".join(f"{name}: {problem}" for name, problem in sorted(problems.items()))
    return f"{root}: {what} is refused, {len(problems)} file(s) do not match {manifest} ({named}); {remedy}"


def _present(root: Path) -> set[str]:
    """Every non-folder entry under ``root`` as a relative POSIX path; folder symlinks count as entries."""
    found: set[str] = set()
    for here, dirs, files in os.walk(root, followlinks=False):
        rel = Path(here).relative_to(root)
        found.update((rel / f).as_posix() for f in files)
        found.update((rel / d).as_posix() for d in dirs if (Path(here) / d).is_symlink())
    return found


def _size_problem(path: Path, expected: int) -> str | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size != expected:
        kind = "truncated" if st.st_size < expected else "too large"
        return f"{kind}: {st.st_size} bytes, the manifest says {expected}"
    return None


def _digest(path: Path) -> str | None:
    try:
        return hash_file(path)
    except OSError:
        return None


__all__ = ["file_problems", "refusal", "verify_bundle"]
