"""The typed events a station session emits: one small frozen dataclass per kind.

Every admitted frame ends as exactly one *final* event: :class:`Finished` (described), :class:`Dropped`
(with a :class:`DropReason`), :class:`Scored` (the gate passed it) or :class:`Failed` (the engine or the
gate broke on it).
The others report progress (:class:`Accepted`, :class:`Started`, :class:`Token`) or a problem with a
message that is not a frame (:class:`Failed`, e.g. an audio chunk that cannot be decoded).

>>> Dropped(sequence=3, capture_time=1.5, reason=DropReason.STALE, detail="waited 6.1 s")
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from edge.errors import EdgeError, FieldError


class DropReason(enum.StrEnum):
    """Why a frame was not described; the values are the metric label values."""

    SUPERSEDED = "superseded"  # a newer frame pushed it out of the buffer (latest frame wins)
    STALE = "stale"  # older than stale_after_seconds when its turn came
    QUEUE_FULL = "queue_full"  # the description queue (or this source's share of it) was full
    INVALID = "invalid"  # could not be decoded, or broke a limit
    NO_FRAME = "no_frame"  # a trigger came with no frame buffered
    SHUTDOWN = "shutdown"  # the daemon is shutting down
    CANCELLED = "cancelled"  # the client closed or lost the stream first


@dataclass(frozen=True)
class Accepted:
    sequence: int
    capture_time: float
    media: str = "frame"  # or "audio"


@dataclass(frozen=True)
class Dropped:
    sequence: int  # 0 for a trigger that found no frame
    capture_time: float
    reason: DropReason
    detail: str = ""


@dataclass(frozen=True)
class Started:
    description_id: int
    frame_sequence: int
    frame_capture_time: float
    trigger_time: float
    gate: Any = None  # the gate result that asked for this description (edge.gate.GateResult)
    window: tuple[float, float] | None = None  # the sound gate's window (capture times)


@dataclass(frozen=True)
class Token:
    description_id: int
    token_id: int
    text: str


@dataclass(frozen=True)
class Finished:
    description_id: int
    frame_sequence: int  # the frame this ends; 0 for a description the sound gate asked for
    outcome: Any  # edge.station.worker.Outcome: the generation and its timings
    context: Any  # the PartContext the description is recorded with
    gate: Any = None  # the gate result behind it, if any
    window: tuple[float, float] | None = None  # the sound gate's window (capture times)


@dataclass(frozen=True)
class Scored:
    """A frame the gate looked at and passed: it ends here, not described."""

    sequence: int
    capture_time: float
    gate: Any  # edge.gate.GateResult


@dataclass(frozen=True)
class Failed:
    """Something went wrong. With ``sequence`` 0 it is about a message that was not a frame (an audio chunk
    that cannot be decoded, a protocol slip); with a frame's sequence it is that frame's final event (the
    engine failed while describing it, which is not the client's fault)."""

    error: EdgeError
    sequence: int = 0

    @property
    def field(self) -> str:
        return self.error.field if isinstance(self.error, FieldError) else ""


Event = Accepted | Dropped | Started | Token | Finished | Scored | Failed


def is_final_for_frame(event: Event) -> bool:
    """True for the one event that ends a frame (accepted, or refused on arrival as invalid)."""
    if isinstance(event, Finished):
        return event.frame_sequence > 0
    return isinstance(event, Scored) or (isinstance(event, Dropped | Failed) and event.sequence > 0)
