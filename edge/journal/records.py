"""The decision record a station journals, and its JSON payload (``deploy/mqtt/event.schema.json``).

Every frame a station looks at ends as one decision: ``scored`` (the gate judged it, nothing described),
``finished`` (described), ``dropped`` (with a reason) or ``error`` (the engine failed on it). A
:class:`Record` is what the pipeline hands to :meth:`edge.journal.journal.Journal.append`; the journal
assigns its sequence, writes its :class:`Evidence` and stores :func:`payload` as JSON text, byte for byte
what MQTT publishes and what ``ListEvents``/``WatchEvents`` return.

>>> rec = from_event("inspect:3", Dropped(4, 12.5, DropReason.STALE, "waited 6.1 s"))
>>> fut = journal.append(rec)          # Future[int]: the sequence, once committed
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edge.errors import FieldError
from edge.station.events import Dropped, Event, Failed, Finished, Scored
from edge.station.inputs import PartContext

SCHEMA_ID = "edge-inspector.event/1"
# One encoder for every payload (json.dumps with options builds a new one per call): compact, UTF-8 kept.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


class Kind(enum.StrEnum):
    SCORED = "scored"
    FINISHED = "finished"
    DROPPED = "dropped"
    ERROR = "error"


class EvidenceClass(enum.StrEnum):
    """Retention class: anomalies are kept longer than normal samples (separate byte and age budgets)."""

    ANOMALY = "anomaly"
    NORMAL = "normal"


class FrameLike(Protocol):
    """A frame as the pipeline holds it (``edge.station.admission.EncodedImage`` / ``RawFrame``)."""

    @property
    def kind(self) -> str: ...  # "JPEG", "PNG", … or "raw 640x480 …"

    @property
    def data(self) -> bytes: ...

    def decode(self) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class Evidence:
    """What justified a decision, handed over with the record and written by the journal's thread.

    ``frame``: encoded bytes as received (stored as they are), a pending frame, or an RGB ``uint8`` array
    (encoded to JPEG once); ``anomaly_map``: float32 in 0..1 (stored as 16-bit PNG); ``audio``: float32
    16 kHz mono (stored as 16-bit WAV); ``report``: the report's JSON text.
    """

    frame: bytes | np.ndarray | FrameLike | None = None
    anomaly_map: np.ndarray | None = None
    audio: np.ndarray | None = None
    report: str = ""

    def __bool__(self) -> bool:
        return self.frame is not None or self.anomaly_map is not None or self.audio is not None or bool(self.report)


@dataclass(frozen=True)
class ScoredBody:
    score: float
    label: bool
    threshold: float
    gate_id: str
    region: tuple[int, int, int, int] | None = None
    latency_s: float = 0.0


@dataclass(frozen=True)
class FinishedBody:
    description_id: int
    text: str
    report_json: str  # the validated report text, "" without a schema
    report_error: str
    stop_reason: str  # "end_of_turn" | "max_tokens"
    inputs_sha256: str
    schema_sha256: str
    queue_s: float
    total_s: float
    prompt_tokens: int
    generated_tokens: int


@dataclass(frozen=True)
class DroppedBody:
    reason: str  # edge.station.events.DropReason value
    detail: str = ""


@dataclass(frozen=True)
class ErrorBody:
    error_type: str  # the EdgeError class name, e.g. "EngineError"
    message: str
    field: str = ""


Body = ScoredBody | FinishedBody | DroppedBody | ErrorBody
_KINDS: dict[type, Kind] = {
    ScoredBody: Kind.SCORED,
    FinishedBody: Kind.FINISHED,
    DroppedBody: Kind.DROPPED,
    ErrorBody: Kind.ERROR,
}


@dataclass(frozen=True, eq=False)
class Record:
    """One decision, before the journal numbers it.

    ``anomalous`` decides the evidence class (None = unknown, kept as a normal sample); ``time`` is the
    wall-clock time of the decision (None: the journal stamps it when it is appended).
    """

    source: str
    body: Body
    frame_sequence: int = 0
    capture_time: float = 0.0
    context: PartContext = field(default_factory=PartContext)
    anomalous: bool | None = None
    evidence: Evidence | None = None
    time: float | None = None

    @property
    def kind(self) -> Kind:
        return _KINDS[type(self.body)]

    @property
    def evidence_class(self) -> EvidenceClass:
        return EvidenceClass.ANOMALY if self.anomalous else EvidenceClass.NORMAL


@dataclass(frozen=True)
class EvidenceRef:
    """A stored evidence file: ``id`` is the SHA-256 of its bytes (``GetEvidence(id)``)."""

    id: str
    role: str  # "frame" | "anomaly_map" | "audio" | "report"
    media_type: str
    bytes: int


def payload(
    record: Record, sequence: int, time: float, origin: tuple[str, str], evidence: list[EvidenceRef], skipped: str
) -> str:
    """The event as JSON text (compact, keys in a fixed order): see ``deploy/mqtt/event.schema.json``."""
    line, station = origin
    body = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(record.body).items()}
    doc: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "sequence": sequence,
        "time": round(time, 6),
        "line": line,
        "station": station,
        "kind": record.kind.value,
        "source": record.source,
        "frame": {"sequence": record.frame_sequence, "capture_time": record.capture_time},
        "context": vars(record.context),
        "anomalous": record.anomalous,
        record.kind.value: body,
        "evidence": [vars(e) for e in evidence],
    }
    if skipped:
        doc["evidence_skipped"] = skipped
    return _ENCODE(doc)


# -- from the station's events ------------------------------------------------------------------------------
def context_of(ctx: Any) -> PartContext:
    """A :class:`PartContext` from anything with station/camera/part/line ids (also ``pb.PartContext``)."""
    if ctx is None:
        return PartContext()
    return PartContext(
        str(getattr(ctx, "station_id", "")),
        str(getattr(ctx, "camera_id", "")),
        str(getattr(ctx, "part_id", "")),
        str(getattr(ctx, "line_id", "")),
    )


def finished_body(description_id: int, outcome: Any) -> FinishedBody:
    """From an ``edge.station.worker.Outcome`` (its generation, timings and digests)."""
    r, t = outcome.result, outcome.result.timings
    return FinishedBody(
        description_id=int(description_id),
        text=str(r.text),
        report_json=report_text(r),
        report_error=str(getattr(r, "report_error", "") or ""),
        stop_reason="end_of_turn" if r.stop_reason == "eos" else "max_tokens",
        inputs_sha256=str(outcome.inputs_sha256),
        schema_sha256=str(outcome.schema_sha256),
        queue_s=float(outcome.queue_s),
        total_s=float(outcome.total_s),
        prompt_tokens=int(t.prompt_tokens),
        generated_tokens=int(t.new_tokens),
    )


def report_text(result: Any) -> str:
    """A generation's validated report as JSON text ("" without a schema, or when it has no report)."""
    return str(result.text) if getattr(result, "report", None) is not None else ""


def report_anomalous(report_json: str) -> bool | None:
    """The built-in report's ``anomaly`` flag, or None when there is no such report."""
    try:
        value = json.loads(report_json).get("anomaly") if report_json else None
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, bool) else None


def error_body(error: BaseException) -> ErrorBody:
    return ErrorBody(type(error).__name__, str(error), error.field if isinstance(error, FieldError) else "")


def describe_record(
    source: str, outcome: Any, context: Any, images: Any = (), audio: Any = (), gate: Any = None
) -> Record:
    """The ``finished`` record of a Describe call (no session, no frame sequence), with its first image (as
    received), audio clip and, when the gate judged it, the anomaly map as evidence. ``anomalous`` is the
    report's flag, else the gate's label."""
    body = finished_body(0, outcome)
    ev = Evidence(
        frame=images[0] if len(images) else None,
        anomaly_map=getattr(gate, "anomaly_map", None),
        audio=audio[0] if len(audio) else None,
        report=body.report_json,
    )
    anomalous = report_anomalous(body.report_json)
    if anomalous is None and gate is not None:
        anomalous = bool(gate.label)
    return Record(source, body, 0, 0.0, context_of(context), anomalous, ev)


def from_event(
    source: str,
    event: Event,
    *,
    context: Any = None,
    evidence: Evidence | None = None,
    anomalous: bool | None = None,
) -> Record:
    """The record of a station session's decision (``edge.station.events``): Finished, Dropped, Failed or
    Scored (the gate passed the frame).

    ``context`` defaults to the event's own (Finished carries one); ``anomalous`` defaults to the gate's
    label (Scored), or for Finished the built-in report's ``anomaly`` flag, else its gate's label.
    """
    ctx = context_of(context if context is not None else getattr(event, "context", None))
    body: Body
    if isinstance(event, Finished):
        done = finished_body(event.description_id, event.outcome)
        if anomalous is None:
            anomalous = report_anomalous(done.report_json)
        if anomalous is None and event.gate is not None:
            anomalous = bool(event.gate.label)
        t = event.window[0] if event.window is not None else 0.0
        return Record(source, done, int(event.frame_sequence), t, ctx, anomalous, evidence)
    if isinstance(event, Dropped):
        body = DroppedBody(event.reason.value, str(event.detail))
        return Record(source, body, int(event.sequence), float(event.capture_time), ctx, anomalous, evidence)
    if isinstance(event, Failed):
        return Record(source, error_body(event.error), int(event.sequence), 0.0, ctx, anomalous, evidence)
    if isinstance(event, Scored):
        g = event.gate
        body = ScoredBody(
            float(g.score), bool(g.label), float(g.threshold), str(g.gate_id), g.region, float(g.latency_s)
        )
        label = bool(g.label) if anomalous is None else anomalous
        return Record(source, body, int(event.sequence), float(event.capture_time), ctx, label, evidence)
    raise TypeError(f"not a decision: {event!r} (journal Finished, Dropped, Failed or Scored)")
