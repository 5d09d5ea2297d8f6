"""One pulled camera's settings, as a frozen dataclass checked on construction (``[[cameras]]`` in the TOML file).

Parsing the file, flags and environment into these is ``edge.serve.camera_config``; this module only says
what a camera is and what values are allowed, so the capture code and ``edge cameras probe`` share it.

>>> CameraConfig(id="press-1", url="rtsp://10.0.0.7/stream1", fps=5.0, trigger="gated", line="L2", station="st-07")
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any

from edge.errors import ConfigError
from edge.sources.url import redact, source_kind

TRIGGERS = ("gated", "interval", "external")
TRANSPORTS = ("tcp", "udp")
CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a metric label value: short and plain


@dataclass(frozen=True)
class CameraConfig:
    """Every key is documented in deploy/edge-inspector.toml (the ``[[cameras]]`` example)."""

    id: str
    url: str  # may hold credentials: never logged as is (``redacted_url``)
    transport: str = "tcp"  # RTSP only: tcp (interleaved, the robust default) or udp
    fps: float = 5.0  # at most this many frames/s go to the pipeline (the source is still read at its own rate)
    roi: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in source pixels (x1, y1 exclusive)
    gate: bool = True  # score this camera's frames with the station's gate (when there is one)
    line: str = ""
    station: str = ""
    trigger: str = ""  # gated | interval | external; "" = gated with an image gate (set it otherwise)
    interval_seconds: float = 10.0  # trigger = interval
    prompt: str = ""  # "" = the station's default_prompt
    max_new_tokens: int = 0  # 0 = the bundle's default
    max_soft_tokens: int = 0  # 0 = the bundle's default
    stall_seconds: float = 10.0  # no frame for this long: the connection is dropped and made again
    open_timeout_seconds: float = 15.0  # connecting and reading the stream's header
    backoff_initial_seconds: float = 1.0  # the first wait after a failure, doubling up to the maximum
    backoff_max_seconds: float = 60.0
    audio: str = ""  # "" none; "stream" the RTSP/file's own audio track; "alsa:DEVICE"; or an audio file (loops)
    audio_before_seconds: float = 0.0  # audio around a described frame, given to the model with it
    audio_after_seconds: float = 0.0

    def __post_init__(self) -> None:
        where = f"cameras[{self.id!r}]"
        if not CAMERA_ID.match(self.id):
            raise ConfigError(
                f"cameras: id {self.id!r} must be 1-64 letters, digits, '.', '_' or '-' (it is a metric label)"
            )
        if not self.url.strip():
            raise ConfigError(f"{where}.url is empty: give rtsp://…, http(s)://… (MJPEG), /dev/videoN or a file")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"{where}.transport must be tcp or udp, got {self.transport!r}")
        if self.trigger not in ("", *TRIGGERS):
            raise ConfigError(f"{where}.trigger must be gated, interval or external, got {self.trigger!r}")
        for name in (f.name for f in fields(self) if f.type == "float"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{where}.{name} must be a finite number >= 0, got {value}")
        for name in ("fps", "stall_seconds", "open_timeout_seconds", "backoff_initial_seconds", "interval_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where}.{name} must be > 0, got {getattr(self, name)}")
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ConfigError(f"{where}.backoff_max_seconds must not be below backoff_initial_seconds")
        if self.roi is not None:
            x0, y0, x1, y1 = self.roi
            if not (0 <= x0 < x1 and 0 <= y0 < y1):
                raise ConfigError(f"{where}.roi must be [x0, y0, x1, y1] with 0 <= x0 < x1 and 0 <= y0 < y1")
        if self.max_new_tokens < 0 or self.max_soft_tokens < 0:
            raise ConfigError(f"{where}: max_new_tokens and max_soft_tokens must be >= 0")
        if self.audio == "stream" and self.kind not in ("rtsp", "http", "file"):
            raise ConfigError(f"{where}.audio = 'stream' needs a source with an audio track (RTSP, HTTP or a file)")

    @property
    def kind(self) -> str:
        return source_kind(self.url)

    @property
    def redacted_url(self) -> str:
        return redact(self.url)

    def redacted(self) -> dict[str, Any]:
        """For logs and GetInfo: every setting, the URL without credentials."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["url"] = self.redacted_url
        return out

    def __repr__(self) -> str:  # the dataclass repr would print the URL's password
        return f"CameraConfig(id={self.id!r}, url={self.redacted_url!r}, trigger={self.trigger!r})"


__all__ = ["TRANSPORTS", "TRIGGERS", "CameraConfig"]
