"""The daemon's configuration: one frozen object built from flags, then environment, then a TOML file.

Precedence is flags > ``EDGE_*`` environment variables > the ``[serve]`` table of the TOML file >
defaults. Nothing is read at import time; ``load_config`` is called once in ``edge serve``.

>>> cfg = load_config({"bundle": "b/", "listen": "0.0.0.0:50051"}, env=os.environ, toml_path=None)
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import ConfigError
from edge.journal.mqtt_settings import TOPIC_ROOT, topic_prefix_problem

if TYPE_CHECKING:
    from edge.sources.config import CameraConfig

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServeConfig:
    """Every key is documented in deploy/edge-inspector.toml (the example config)."""

    bundle: Path = Path("/opt/edge-inspector/current/bundle")
    listen: str = "0.0.0.0:50051"
    metrics_listen: str = "127.0.0.1:9464"
    threads: int = 0  # onnxruntime intra-op threads; 0 = all cores
    verify_bundle: bool = True
    warmup: bool = True
    # scheduling
    queue_depth: int = 8
    max_streams: int = 16
    stale_after_seconds: float = 5.0
    frame_buffer: int = 4
    min_interval_seconds: float = 1.0
    max_interval_seconds: float = 3600.0
    audio_buffer_seconds: float = 30.0
    max_audio_window_seconds: float = 10.0
    first_message_timeout_seconds: float = 10.0
    # limits
    max_message_bytes: int = 32 * MiB
    max_image_bytes: int = 24 * MiB
    max_image_pixels: int = 50_000_000
    max_audio_seconds: float = 30.0
    max_new_tokens: int = 512
    max_prompt_bytes: int = 0  # prompt and system text, each; 0 = 8 bytes per token of the bundle's context
    max_images_per_request: int = 8
    max_audio_clips_per_request: int = 4
    max_schema_bytes: int = 65_536
    default_prompt: str = "Describe any defect or anomaly you see or hear. If the part looks good, say so."
    # anomaly gate
    gate: Path | None = None  # a gate folder (edge gate fit); unset = no gate
    gate_threshold: float = 0.0  # 0 = as calibrated (0.5); else strictly between 0 and 1
    reference_images: int = 0  # good frames from the gate shown beside each gated description
    gate_backlog: int = 8  # frames of one session waiting for the gate before the oldest is superseded
    # structured reports
    structured: bool = False  # every description answers with the station's report schema
    report_schema: Path | None = None  # a JSON Schema file; unset = the built-in inspection report
    defect_types: str = "scratch,dent,crack,burr,discoloration,contamination,missing feature,misprint,misalignment"
    # lifecycle
    grace_seconds: float = 30.0
    # security
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    token_file: Path | None = None
    # pulled cameras: [[cameras]] tables (edge.serve.camera_config), not flags of their own
    cameras: tuple[CameraConfig, ...] = ()
    # event journal, evidence and MQTT (edge/journal; README "Events, evidence and MQTT")
    state_dir: Path | None = None  # journal.db and evidence/; unset = decisions are not journaled
    line_id: str = ""  # the topic levels <mqtt_topic_prefix>/<line_id>/<station_id>/…, and in every event
    station_id: str = ""
    journal_synchronous: str = "FULL"
    journal_max_bytes: int = 256 * MiB
    journal_max_age_seconds: float = 30 * 86400.0
    journal_commit_interval_seconds: float = 0.02  # under load commits are paced; a reply waits at most this more
    journal_camera_commit_interval_seconds: float = 0.1  # pulled cameras' decisions (nobody waits) share commits
    evidence_anomaly_max_bytes: int = 2048 * MiB
    evidence_anomaly_max_age_seconds: float = 90 * 86400.0
    evidence_normal_max_bytes: int = 512 * MiB
    evidence_normal_max_age_seconds: float = 7 * 86400.0
    evidence_normal_sample_rate: float = 0.01
    evidence_min_free_bytes: int = 1024 * MiB
    mqtt_host: str = ""  # unset = no MQTT
    mqtt_port: int = 1883
    mqtt_tls_ca: Path | None = None
    mqtt_tls_cert: Path | None = None
    mqtt_tls_key: Path | None = None
    mqtt_username: str = ""
    mqtt_password_file: Path | None = None
    mqtt_client_id: str = ""
    mqtt_topic_prefix: str = TOPIC_ROOT  # the first levels of every topic: <prefix>/<line_id>/<station_id>/…
    mqtt_normal_scores: bool = True  # false: scores of normal frames stay in the journal, off the broker

    def __post_init__(self) -> None:
        positive = (
            "queue_depth",
            "max_streams",
            "frame_buffer",
            "max_message_bytes",
            "max_image_bytes",
            "max_image_pixels",
            "max_new_tokens",
            "max_images_per_request",
            "max_audio_clips_per_request",
            "max_schema_bytes",
            "gate_backlog",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in (
            "stale_after_seconds",
            "min_interval_seconds",
            "max_interval_seconds",
            "audio_buffer_seconds",
            "grace_seconds",
            "max_audio_seconds",
            "max_audio_window_seconds",
            "first_message_timeout_seconds",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if self.max_audio_seconds > 30.0:
            raise ConfigError("max_audio_seconds must be <= 30 (the model takes at most 750 audio frames)")
        for name in (n for n in _FLOATS if not math.isfinite(getattr(self, n))):
            raise ConfigError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.max_interval_seconds < self.min_interval_seconds:
            raise ConfigError("max_interval_seconds must not be below min_interval_seconds")
        if self.max_prompt_bytes < 0:
            raise ConfigError(
                f"max_prompt_bytes must be >= 0 (0 = derived from the context), got {self.max_prompt_bytes}"
            )
        if self.gate_threshold != 0.0 and not 0.0 < self.gate_threshold < 1.0:
            raise ConfigError(
                f"gate_threshold must be 0 (as calibrated) or strictly between 0 and 1, got {self.gate_threshold}"
            )
        if not 0 <= self.reference_images <= 8:
            raise ConfigError(f"reference_images must be in [0, 8], got {self.reference_images}")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0, got {self.threads}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key must be given together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ConfigError("tls_client_ca (mTLS) needs tls_cert and tls_key")
        for name in ("listen", "metrics_listen"):
            split_hostport(getattr(self, name), name)
        self._check_journal()

    def _check_journal(self) -> None:
        if self.journal_synchronous not in ("FULL", "NORMAL"):
            raise ConfigError(f"journal_synchronous must be FULL or NORMAL, got {self.journal_synchronous!r}")
        for name in (n for n in _JOURNAL_SIZES if getattr(self, n) < 0):
            raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in (n for n in _JOURNAL_AGES if not getattr(self, n) > 0):
            raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if not 0.0 <= self.journal_commit_interval_seconds <= 1.0:
            raise ConfigError(
                "journal_commit_interval_seconds must be in [0, 1] (it adds up to that much to a reply under "
                f"load; 0 = no pacing), got {self.journal_commit_interval_seconds}"
            )
        if not 0.0 <= self.journal_camera_commit_interval_seconds <= 1.0:
            raise ConfigError(
                "journal_camera_commit_interval_seconds must be in [0, 1] (a camera's decision reaches MQTT up to "
                f"that much later; 0 = as journal_commit_interval_seconds), got "
                f"{self.journal_camera_commit_interval_seconds}"
            )
        if not 0.0 <= self.evidence_normal_sample_rate <= 1.0:
            raise ConfigError(f"evidence_normal_sample_rate must be in [0, 1], got {self.evidence_normal_sample_rate}")
        if not self.mqtt_host:
            return
        if self.state_dir is None:
            raise ConfigError("mqtt_host needs state_dir: events are published from the journal kept there")
        if not self.line_id or not self.station_id:
            raise ConfigError(
                f"mqtt_host needs line_id and station_id (the topics {self.mqtt_topic_prefix}/<line>/<station>/…)"
            )
        if problem := topic_prefix_problem(self.mqtt_topic_prefix):
            raise ConfigError(f"mqtt_topic_prefix {self.mqtt_topic_prefix!r} {problem}")
        if not 0 < self.mqtt_port <= 65535:
            raise ConfigError(f"mqtt_port must be in 1..65535, got {self.mqtt_port}")
        if (self.mqtt_tls_cert is None) != (self.mqtt_tls_key is None):
            raise ConfigError("mqtt_tls_cert and mqtt_tls_key must be given together")
        if self.mqtt_password_file is not None and not self.mqtt_username:
            raise ConfigError("mqtt_password_file needs mqtt_username")

    def redacted(self) -> dict[str, Any]:
        """For logs: paths are fine, but nothing secret is ever inside this object (tokens stay in their file)."""
        out: dict[str, Any] = {f.name: str(getattr(self, f.name)) for f in fields(self) if f.name != "cameras"}
        return out | {"cameras": [c.redacted() for c in self.cameras]}  # camera URLs may hold passwords


_FLOATS = tuple(f.name for f in fields(ServeConfig) if str(f.type) == "float")
_JOURNAL_SIZES = (
    "journal_max_bytes",
    "evidence_anomaly_max_bytes",
    "evidence_normal_max_bytes",
    "evidence_min_free_bytes",
)
_JOURNAL_AGES = tuple(n for n in _FLOATS if n.endswith("max_age_seconds"))


def split_hostport(value: str, name: str = "address") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{name} must be HOST:PORT (e.g. 0.0.0.0:50051), got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def load_config(flags: Mapping[str, Any], env: Mapping[str, str], toml_path: Path | None) -> ServeConfig:
    """Merge the three sources; unknown keys and wrong types are ConfigErrors naming the key and source."""
    from edge.serve.camera_config import load_cameras

    types = {f.name: f.type for f in fields(ServeConfig) if f.name != "cameras"}
    merged: dict[str, Any] = {}
    tables = None
    if toml_path is not None:
        values, tables = _from_toml(toml_path, types)
        merged.update(values)
    for key in types:
        var = f"EDGE_{key.upper()}"
        if var in env and env[var] != "":
            merged[key] = _coerce(key, env[var], types[key], f"environment variable {var}")
    for key, value in flags.items():
        if value is None:
            continue
        if key.startswith("camera_"):
            continue  # one camera's settings: load_cameras
        if key not in types:
            raise ConfigError(f"unknown setting {key!r}")
        merged[key] = _coerce(key, value, types[key], f"flag --{key.replace('_', '-')}")
    merged["cameras"] = load_cameras(tables, flags, env, str(toml_path or "config"))
    try:
        return ServeConfig(**merged)
    except TypeError as exc:  # pragma: no cover - guarded by the key checks above
        raise ConfigError(str(exc)) from exc


def _from_toml(path: Path, types: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The [serve] table's settings, and the [[cameras]] array (None without one)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    cameras = data.pop("cameras", None)
    table = data.get("serve", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [serve] must be a table")
    out = {}
    for key, value in table.items():
        if key not in types:
            raise ConfigError(f"{path}: unknown key {key!r} in [serve]; see deploy/edge-inspector.toml")
        out[key] = _coerce(key, value, types[key], f"{path} key {key!r}")
    return out, cameras


def _coerce(key: str, value: Any, typ: Any, source: str) -> Any:
    t = str(typ)
    try:
        if "Path" in t:
            return None if value in ("", None) else Path(value)
        if t == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if t == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if t == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key} must be a {t.replace('pathlib.', '')}, got {value!r}") from None


__all__ = ["ServeConfig", "load_config", "split_hostport"]
