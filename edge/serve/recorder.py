"""Journals a session's decisions with their evidence, for every source a :class:`SessionDriver` runs.

A session (an Inspect stream, a pulled camera) takes one decision per frame: ``scored`` (the gate passed it),
``finished`` (described), ``dropped`` or ``error``; a description the sound gate asked for is a decision
too. The driver hands each one to :meth:`SessionRecorder.record` with what it kept of the inputs: the frame
as received (or as the camera decoded it) and the request the engine described (its audio window). The
record goes to the journal's writer thread, and the driver emits a :class:`Recorded` in place of the bare
event, so an adapter can report the decision only once it is committed (Inspect does; a camera has nobody
waiting on it).

>>> recorder = SessionRecorder(journaling)
>>> committed = recorder.record("camera:press-1", event, context, frame=image, request=request)
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from edge.journal.records import Evidence, from_event, report_text
from edge.serve.journaling import Journaling
from edge.station.engine import Request
from edge.station.events import Dropped, Event, Failed, Finished, Scored, is_final_for_frame


@dataclass(frozen=True)
class Recorded:
    """A decision event and the future of its journal sequence (0 if the journal could not take it)."""

    event: Event
    committed: Future[int]


def is_decision(event: Event) -> bool:
    """The events the journal keeps: every frame's end, a sound description, and a refused trigger."""
    return is_final_for_frame(event) or isinstance(event, Finished | Dropped)


def decision_sequence(event: Event) -> int:
    """The frame a decision is about (0: none, e.g. a sound description or a trigger that found no frame)."""
    if isinstance(event, Finished):
        return event.frame_sequence
    return event.sequence if isinstance(event, Scored | Dropped | Failed) else 0


class SessionRecorder:
    """The daemon's journal, seen from a session."""

    def __init__(self, journaling: Journaling, *, awaited: bool = True) -> None:
        """``awaited``: the session's adapter reports a decision only once it is committed (Inspect), so its
        commits are never deferred; a camera's (False) may share the next paced commit."""
        self.journaling, self.awaited = journaling, awaited

    def record(
        self, source: str, event: Event, context: Any, frame: Any = None, request: Request | None = None
    ) -> Future[int]:
        """Append the decision; ``frame`` and ``request`` become its evidence (frame, anomaly map, audio, report)."""
        evidence = None
        if isinstance(event, Finished):
            evidence = Evidence(
                frame=frame,
                anomaly_map=getattr(event.gate, "anomaly_map", None),
                audio=request.audio[0] if request is not None and request.audio else None,
                report=report_text(event.outcome.result),
            )
        elif isinstance(event, Scored):
            evidence = Evidence(frame=frame, anomaly_map=event.gate.anomaly_map)
        record = from_event(source, event, context=getattr(event, "context", None) or context, evidence=evidence)
        return self.journaling.journal.append(record, awaited=self.awaited)
