"""``[[cameras]]`` tables of the config file, and one camera from flags or environment variables.

Each table becomes a :class:`~edge.sources.config.CameraConfig`; unknown keys and wrong types are
ConfigErrors naming the camera and the key. A single camera can also come from flags (``--camera-url``,
``--camera-id``, …) or ``EDGE_CAMERA_URL``/``EDGE_CAMERA_ID``/…: when its id names a camera of the file, the
given settings override that camera's (the usual way to keep a camera password out of the file: put the URL in
the unit's environment file); otherwise it is one more camera. Precedence: flags > environment > file.

>>> cameras = load_cameras(toml_tables, flags={"camera_url": "rtsp://…"}, env=os.environ)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from edge.errors import ConfigError
from edge.sources.config import CameraConfig

#: settings a single camera may take from flags (``--camera-<key>``) and the environment (``EDGE_CAMERA_<KEY>``)
SINGLE = ("id", "url", "transport", "fps", "trigger", "interval_seconds", "line", "station", "stall_seconds", "audio")
DEFAULT_ID = "camera"


def load_cameras(
    tables: Any, flags: Mapping[str, Any], env: Mapping[str, str], source: str = ""
) -> tuple[CameraConfig, ...]:
    """The file's cameras (``tables``: the parsed ``cameras`` array, or None), then the single camera's overrides."""
    cameras = [camera_from_table(t, i, source) for i, t in enumerate(_tables(tables, source))]
    ids = [c.id for c in cameras]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{source}: camera ids must be unique; repeated: {', '.join(dup)}")
    given: dict[str, Any] = {}
    for key in SINGLE:
        var = f"EDGE_CAMERA_{key.upper()}"
        if env.get(var):
            given[key] = (env[var], f"environment variable {var}")
    for key in SINGLE:
        if flags.get(f"camera_{key}") is not None:
            given[key] = (flags[f"camera_{key}"], f"flag --camera-{key.replace('_', '-')}")
    if not given:
        return tuple(cameras)
    cid = str(given.pop("id", (DEFAULT_ID if len(cameras) != 1 else cameras[0].id, ""))[0])
    changes = {k: _coerce_key(k, v, where) for k, (v, where) in given.items()}
    for i, c in enumerate(cameras):
        if c.id == cid:
            cameras[i] = dataclasses.replace(c, **changes)
            return tuple(cameras)
    if "url" not in changes:
        raise ConfigError(f"camera {cid!r}: no such camera in the config file, and no --camera-url / EDGE_CAMERA_URL")
    return (*cameras, CameraConfig(id=cid, **changes))


def _tables(tables: Any, source: str) -> list[dict[str, Any]]:
    if tables is None:
        return []
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{source}: cameras must be an array of tables ([[cameras]])")
    return tables


def camera_from_table(table: dict[str, Any], index: int, source: str) -> CameraConfig:
    where = f"{source}: [[cameras]] #{index + 1}"
    if "id" not in table or "url" not in table:
        raise ConfigError(f"{where}: id and url are required")
    where = f"{source}: camera {table['id']!r}"
    known = {f.name for f in fields(CameraConfig)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; see deploy/edge-inspector.toml for the camera keys")
    values = {k: _coerce_key(k, v, f"{where} key {k!r}") for k, v in table.items()}
    return CameraConfig(**values)


def _coerce_key(key: str, value: Any, where: str) -> Any:
    from edge.serve.config import _coerce

    if key == "roi":
        if isinstance(value, str):
            value = [p for p in value.replace(",", " ").split() if p]
        if not isinstance(value, list | tuple) or len(value) != 4:
            raise ConfigError(f"{where}: roi must be [x0, y0, x1, y1], got {value!r}")
        return tuple(_coerce(key, v, "int", where) for v in value)
    typ = {f.name: f.type for f in fields(CameraConfig)}[key]
    return _coerce(key, value, typ, where)


__all__ = ["SINGLE", "load_cameras"]
