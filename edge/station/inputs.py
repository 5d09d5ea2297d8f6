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


@dataclass(frozen=True)
class SessionLimits:
    frame_buffer: int = 4
    audio_buffer_seconds: float = 30.0
    stale_after_seconds: float = 5.0


@dataclass(frozen=True)
class FrameIn:
    capture_time: float
    image: PendingImage


@dataclass(frozen=True)
class AudioIn:
    capture_time: float
    samples: np.ndarray  # float32 16 kHz mono


@dataclass(frozen=True)
class TriggerIn:
    capture_time: float | None  # None = the latest frame
    context: PartContext | None = None
