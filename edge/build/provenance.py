"""Which model and revision a checkpoint folder holds, as the bundle manifest records it (``source``).

The station reports ``source.model_id`` in ``GetInfo`` and in ``edge_inspector_build_info``, so it must
name the model (``google/gemma-4-12B-it``), not the folder it happened to sit in on the build host.
In order of precedence:

1. ``edge export --model-id`` / ``--model-revision``;
2. the Hugging Face cache layout ``…/models--ORG--NAME/snapshots/REVISION/``;
3. ``config.json``'s ``_name_or_path`` when it is a hub id (``save_pretrained`` writes it);
4. the commit ``hf download --local-dir`` records in ``.cache/huggingface/download/config.json.metadata``;
5. a fixture checkpoint's preset (``edge-fixture/tiny``);
6. the folder's name, with a warning that ``--model-id`` records the real one.

>>> identify(Path("checkpoints/gemma-4-12B-it"), config, model_id="google/gemma-4-12B-it")
ModelIdentity(model_id='google/gemma-4-12B-it', revision='…', origin='--model-id')
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class ModelIdentity:
    model_id: str
    revision: str | None
    origin: str  # where model_id came from, for the manifest reader


def identify(folder: Path, config: dict[str, Any], model_id: str = "", revision: str = "") -> ModelIdentity:
    """The model id and revision of ``folder`` (see the module docstring for the order)."""
    folder = Path(folder).resolve()
    cached = _hub_cache(folder)
    found_revision = revision or (cached[1] if cached else None) or _local_dir_commit(folder)
    if model_id:
        return ModelIdentity(model_id, found_revision, "--model-id")
    if cached:
        return ModelIdentity(cached[0], found_revision, "hub cache folder")
    named = str(config.get("_name_or_path") or "")
    if HUB_ID.fullmatch(named) and not Path(named).exists():
        return ModelIdentity(named, found_revision, "config.json _name_or_path")
    fixture = _fixture_preset(folder)
    if fixture:
        return ModelIdentity(f"edge-fixture/{fixture}", found_revision, "edge fixture checkpoint")
    log.warning(
        "model id taken from the folder name %r; pass --model-id ORG/NAME (and --model-revision) to record the "
        "hub id the station reports",
        folder.name,
    )
    return ModelIdentity(folder.name, found_revision, "folder name")


def _hub_cache(folder: Path) -> tuple[str, str] | None:
    """``(org/name, revision)`` for a folder inside the Hugging Face cache's ``snapshots/``."""
    if folder.parent.name != "snapshots" or not folder.parent.parent.name.startswith("models--"):
        return None
    org_name = folder.parent.parent.name.removeprefix("models--").split("--", 1)
    if len(org_name) != 2:
        return None
    return "/".join(org_name), folder.name


def _local_dir_commit(folder: Path) -> str | None:
    """The commit ``hf download --local-dir`` fetched config.json from (first line of its metadata file)."""
    metadata = folder / ".cache" / "huggingface" / "download" / "config.json.metadata"
    try:
        first = metadata.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, UnicodeDecodeError, IndexError):
        return None
    return first if COMMIT.fullmatch(first) else None


def _fixture_preset(folder: Path) -> str | None:
    try:
        preset = json.loads((folder / "edge_fixture.json").read_text()).get("preset")
    except (OSError, ValueError, AttributeError):
        return None
    return str(preset) if preset else None


__all__ = ["ModelIdentity", "identify"]
