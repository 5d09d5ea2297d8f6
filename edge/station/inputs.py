"""What goes into a station session: its settings and limits, and the frames, audio and triggers it takes.

All plain frozen dataclasses: adapters (the gRPC stream, a camera loop) build them from their own inputs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.station.engine import PendingImage


class TriggerMode(enum.Enum):
    EXPLICIT = "explicit"  # describe when the client triggers
    INTERVAL = "interval"  # describe the latest frame every interval_seconds
    GATED = "gated"  # score every frame on arrival; describe the ones over the gate's threshold


@dataclass(frozen=True)
class PartContext:
    station_id: str = ""
    camera_id: str = ""
    part_id: str = ""
    line_id: str = ""


@dataclass(frozen=True)
class SessionSettings:
    mode: TriggerMode
    prompt: str
    params: Any  # edge.runtime.engine.GenerationParams
    interval_seconds: float = 0.0
    system: str | None = None
    max_soft_tokens: int | None = None
    audio_before_seconds: float = 0.0
    audio_after_seconds: float = 0.0
    context: PartContext = field(default_factory=PartContext)
    stream_tokens: bool = False
    # the anomaly gate: frames are scored on arrival when there is an image gate (always in GATED mode),
    # audio windows when there is a sound gate; references are good frames shown beside a gated description
    image_gate: bool = False
    sound_gate: bool = False
    gate_threshold: float | None = None
    references: tuple[Any, ...] = ()  # PreparedImage: already at their (small) soft-token budget


@dataclass(frozen=True)
class SessionLimits:
    frame_buffer: int = 4
    audio_buffer_seconds: float = 30.0
    stale_after_seconds: float = 5.0
    gate_backlog: int = 8  # frames waiting for the gate before the oldest is superseded


@dataclass(frozen=True)
class FrameIn:
    capture_time: float
    image: PendingImage | np.ndarray  # an array: RGB uint8 [H, W, 3] already decoded (a pulled camera's frame)


@dataclass(frozen=True)
class AudioIn:
    capture_time: float
    samples: np.ndarray  # float32 16 kHz mono


@dataclass(frozen=True)
class TriggerIn:
    capture_time: float | None  # None = the latest frame
    context: PartContext | None = None
