"""One station session as a sans-I/O state machine: frames, audio and triggers in; typed events out.

:class:`SessionCore` holds no sockets, threads or clock: every input carries ``now`` (the daemon's
monotonic clock) and returns a list of outputs, which are events for the client plus what the driver
must do (:class:`Submit` a description job, :class:`Cancel` one, the session has :class:`Ended`). The
driver (the gRPC stream adapter, a camera loop) calls it under one lock, hands jobs to the scheduler, and
feeds the scheduler's job events back through :meth:`SessionCore.job_event`. Every accepted frame ends as
exactly one of Finished, Dropped or Failed (with its sequence), shutdown and client loss included.

>>> core = SessionCore(settings, limits, now=0.0)
>>> core.frame(FrameIn(capture_time=t, image=pending), now=0.1)   # [Accepted(1, t)]
>>> core.trigger(TriggerIn(capture_time=t), now=0.2)              # [Submit(job_id=1)]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.errors import EdgeError, InputError
from edge.station.buffers import AudioBuffer, AudioSpan, BufferedFrame, FrameBuffer
from edge.station.engine import Request
from edge.station.events import Accepted, Dropped, DropReason, Event, Failed, Finished, Started, Token
from edge.station.inputs import (
    AudioIn,
    FrameIn,
    PartContext,
    SessionLimits,
    SessionSettings,
    TriggerIn,
    TriggerMode,
)
from edge.station.report import inputs_sha256, options_text
from edge.station.worker import (
    JobCancelled,
    JobDone,
    JobEvent,
    JobFailed,
    JobSkipped,
    JobStarted,
    JobToken,
    Skip,
)


@dataclass(frozen=True)
class Submit:
    job_id: int


@dataclass(frozen=True)
class Cancel:
    job_id: int


@dataclass(frozen=True)
class Ended:
    status: str  # a grpc.StatusCode name: "OK" (the client closed), "UNAVAILABLE" (shutdown), "CANCELLED"
    message: str = ""


Output = Event | Submit | Cancel | Ended
SHUTDOWN_MESSAGE = "the daemon is shutting down; reconnect when it is back, or to another station daemon"


@dataclass
class _Job:
    description_id: int
    frame: BufferedFrame
    trigger_time: float | None
    context: PartContext
    claimed: bool = False


@dataclass
class SessionCore:
    settings: SessionSettings
    limits: SessionLimits
    now: float  # when the session opened
    frames: FrameBuffer = field(init=False)
    audio_buffer: AudioBuffer = field(init=False)

    def __post_init__(self) -> None:
        buffer = 1 if self.settings.mode is TriggerMode.INTERVAL else self.limits.frame_buffer
        self.frames = FrameBuffer(buffer)
        self.audio_buffer = AudioBuffer(self.limits.audio_buffer_seconds)
        self.jobs: dict[int, _Job] = {}
        self._sequence = 0
        self._job_ids = 0
        self._descriptions = 0
        self.state = "open"  # open → closing (client half-closed) | shutdown | abandoned → ended
        self._due = self.now + self.settings.interval_seconds

    # -- inputs from the client --------------------------------------------------------------------
    def frame(self, f: FrameIn, now: float) -> list[Output]:
        seq = self._next_sequence()
        if self.state != "open":
            reason = DropReason.SHUTDOWN if self.state == "shutdown" else DropReason.CANCELLED
            return [Dropped(seq, f.capture_time, reason, "the session is ending; the frame was not accepted")]
        out: list[Output] = [Accepted(seq, f.capture_time)]
        for old in self.frames.add(BufferedFrame(seq, f.capture_time, now, f.image)):
            out.append(Dropped(old.sequence, old.capture_time, DropReason.SUPERSEDED))
        return out

    def refuse_frame(self, capture_time: float, error: InputError) -> list[Output]:
        """A frame that failed the checks on arrival: it gets a sequence and ends at once as invalid."""
        return [Dropped(self._next_sequence(), capture_time, DropReason.INVALID, str(error))]

    def refuse(self, error: EdgeError) -> list[Output]:
        """A message that is not a frame and cannot be used (bad audio, a protocol slip)."""
        return [Failed(error)]

    def audio(self, a: AudioIn, now: float) -> list[Output]:
        seq = self._next_sequence()
        self.audio_buffer.add(AudioSpan(a.capture_time, a.samples, now))
        return [Accepted(seq, a.capture_time, media="audio")]

    def trigger(self, t: TriggerIn, now: float) -> list[Output]:
        if self.state != "open":
            return [Dropped(0, t.capture_time or 0.0, DropReason.SHUTDOWN, "the session is ending")]
        return self._describe(t.capture_time, t.context)

    def tick(self, now: float) -> list[Output]:
        """Interval mode: describe the latest frame if the interval is due and nothing of ours is waiting."""
        if self.settings.mode is not TriggerMode.INTERVAL or self.state != "open" or now < self._due:
            return []
        self._due = now + self.settings.interval_seconds
        if len(self.frames) and not any(not j.claimed for j in self.jobs.values()):
            return self._describe(None, None)
        return []

    @property
    def next_tick(self) -> float | None:
        """When :meth:`tick` should next be called (interval mode, while open)."""
        return self._due if self.settings.mode is TriggerMode.INTERVAL and self.state == "open" else None

    # -- the job's life, driven by the scheduler ---------------------------------------------------
    def claim(self, job_id: int, now: float) -> Request:
        """The job's turn came: bind its inputs, or raise Skip if its frame went stale."""
        job = self.jobs[job_id]
        job.claimed = True
        frame = job.frame
        waited = now - frame.received
        if waited > self.limits.stale_after_seconds:
            raise Skip(
                DropReason.STALE,
                f"frame {frame.sequence} waited {waited:.2f} s, over stale_after_seconds "
                f"({self.limits.stale_after_seconds:g} s)",
            )
        s = self.settings
        t = frame.capture_time
        window = self.audio_buffer.window(t - s.audio_before_seconds, t + s.audio_after_seconds)
        audio = [window] if window is not None else []
        schema = getattr(getattr(s.params, "schema", None), "text", "")
        digest = inputs_sha256(
            [frame.image],
            [a.tobytes() for a in audio],
            s.prompt,
            s.system,
            schema,
            options_text(s.params, s.max_soft_tokens) if s.params is not None else "",
        )
        return Request(s.prompt, [frame.image], audio, s.system, s.params, s.max_soft_tokens, digest)

    def rejected(self, job_id: int, reason: DropReason, detail: str) -> list[Output]:
        """The scheduler refused the job (queue full, shutting down)."""
        job = self.jobs.pop(job_id)
        return [Dropped(job.frame.sequence, job.frame.capture_time, reason, detail), *self._maybe_end()]

    def job_event(self, job_id: int, ev: JobEvent) -> list[Output]:
        job = self.jobs.get(job_id)
        if job is None:
            return []
        frame = job.frame
        out: list[Output] = []
        if isinstance(ev, JobStarted):
            trigger = job.trigger_time if job.trigger_time is not None else frame.capture_time
            return [Started(job.description_id, frame.sequence, frame.capture_time, trigger)]
        if isinstance(ev, JobToken):
            return [Token(job.description_id, ev.token_id, ev.text)] if self.settings.stream_tokens else []
        if isinstance(ev, JobDone):
            out.append(Finished(job.description_id, frame.sequence, ev.outcome, job.context))
        elif isinstance(ev, JobSkipped):
            out.append(Dropped(frame.sequence, frame.capture_time, ev.reason, ev.detail))
        elif isinstance(ev, JobFailed):
            if isinstance(ev.error, InputError):  # the frame turned out corrupt when decoded
                out.append(Dropped(frame.sequence, frame.capture_time, DropReason.INVALID, str(ev.error)))
            else:
                out.append(Failed(ev.error, sequence=frame.sequence))
        elif isinstance(ev, JobCancelled):
            reason = DropReason.SHUTDOWN if self.state == "shutdown" else DropReason.CANCELLED
            out.append(Dropped(frame.sequence, frame.capture_time, reason, "the description was cancelled"))
        del self.jobs[job_id]
        return out + self._maybe_end()

    # -- endings -------------------------------------------------------------------------------------
    def close(self) -> list[Output]:
        """The client half-closed its side: finish the descriptions already asked for, then end."""
        if self.state == "open":
            self.state = "closing"
        return self._maybe_end()

    def shutdown(self, force: bool = False) -> list[Output]:
        """The daemon is draining: buffered frames are dropped now and no new ones are taken; running
        descriptions may finish. With ``force`` (the grace period is over) they end now as well."""
        out: list[Output] = []
        if self.state in ("open", "closing"):
            self.state = "shutdown"
            out += self._drop_buffered(DropReason.SHUTDOWN, "the daemon is shutting down")
        if force and self.state == "shutdown":
            for job_id, job in self.jobs.items():
                f = job.frame
                out += [
                    Cancel(job_id),
                    Dropped(f.sequence, f.capture_time, DropReason.SHUTDOWN, "cancelled: the daemon stopped first"),
                ]
            self.jobs.clear()
        return out + self._maybe_end()

    def abandon(self) -> list[Output]:
        """The client is gone: cancel our jobs; their frames and the buffered ones end as cancelled."""
        if self.state == "ended":
            return []
        self.state = "abandoned"
        out: list[Output] = [Cancel(job_id) for job_id in self.jobs]
        out += self._drop_buffered(DropReason.CANCELLED, "the client left")
        return out + self._maybe_end()

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    # -- internals -----------------------------------------------------------------------------------
    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def _drop_buffered(self, reason: DropReason, detail: str) -> list[Output]:
        return [Dropped(f.sequence, f.capture_time, reason, detail) for f in self.frames.take_all()]

    def _describe(self, when: float | None, context: PartContext | None) -> list[Output]:
        frame = self.frames.take_nearest(when)
        if frame is None:
            return [Dropped(0, when or 0.0, DropReason.NO_FRAME, "trigger with no frame buffered")]
        self._job_ids += 1
        self._descriptions += 1
        self.jobs[self._job_ids] = _Job(self._descriptions, frame, when, context or self.settings.context)
        return [Submit(self._job_ids)]

    def _maybe_end(self) -> list[Output]:
        if self.state in ("open", "ended") or self.jobs:
            return []
        out: list[Output] = []
        if self.state == "closing":
            out += self._drop_buffered(DropReason.SUPERSEDED, "the stream ended before this frame was described")
            ended = Ended("OK")
        elif self.state == "shutdown":
            ended = Ended("UNAVAILABLE", SHUTDOWN_MESSAGE)
        else:
            ended = Ended("CANCELLED", "the client left")
        self.state = "ended"
        return [*out, ended]
