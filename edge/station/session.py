"""One station session as a sans-I/O state machine: frames, audio, triggers and gate results in; events out.

:class:`SessionCore` holds no sockets, threads or clock: every input carries ``now`` (the daemon's monotonic
clock) and returns a list of outputs: events for the client plus what the driver must do (``actions``:
:class:`Score` a frame with the gate, :class:`Submit` a description job, :class:`Cancel` one, the session has
:class:`Ended`). The driver (the gRPC stream adapter, a camera loop) calls it under one lock, runs the gate
and the scheduler, and feeds their results back (:meth:`scored`, :meth:`sound_scored`, :meth:`claim`,
:meth:`job_event`). Every accepted frame ends as exactly one of Finished, Scored, Dropped or Failed (with its
sequence), shutdown and client loss included.

In GATED mode every frame goes to the gate on arrival; one over the threshold is described (with a close-up
of its region), the others end as Scored. In the other modes a configured image gate scores frames too and
its result goes with the description. An anomalous sound window is described with the nearest recent frame,
which has already ended: that description's Finished carries frame sequence 0.

>>> core = SessionCore(settings, limits, now=0.0)
>>> core.frame(FrameIn(capture_time=t, image=pending), now=0.1)   # [Accepted(1, t)] (+ Score(1) with a gate)
>>> core.trigger(TriggerIn(capture_time=t), now=0.2)              # [Submit(job_id=1)]
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from edge.errors import EdgeError, InputError
from edge.station.actions import Cancel, Ended, Score, Submit
from edge.station.buffers import AudioBuffer, AudioSpan, BufferedFrame, FrameBuffer
from edge.station.describe import build_request
from edge.station.engine import Request
from edge.station.events import Accepted, Dropped, DropReason, Event, Failed, Finished, Scored, Started, Token
from edge.station.inputs import AudioIn, FrameIn, PartContext, SessionLimits, SessionSettings, TriggerIn, TriggerMode
from edge.station.worker import JobCancelled, JobDone, JobEvent, JobFailed, JobSkipped, JobStarted, JobToken, Skip

Output = Event | Score | Submit | Cancel | Ended
SHUTDOWN_MESSAGE = "the daemon is shutting down; reconnect when it is back, or to another station daemon"


@dataclass
class _Job:
    description_id: int
    frame: BufferedFrame | None  # None: a sound anomaly with no frame to show
    trigger_time: float | None
    context: PartContext
    final: bool  # the description ends its frame (not so for the sound gate's: the frame ended already)
    gate: Any = None
    window: tuple[float, float] | None = None  # the sound gate's window (capture times)
    claimed: bool = False


class SessionCore:
    def __init__(self, settings: SessionSettings, limits: SessionLimits, now: float) -> None:
        self.settings, self.limits = settings, limits
        buffer = 1 if settings.mode is TriggerMode.INTERVAL else limits.frame_buffer
        self.frames = FrameBuffer(buffer)
        self.recent: deque[BufferedFrame] = deque(maxlen=limits.frame_buffer)  # passed frames, for sound
        self.scoring: OrderedDict[int, BufferedFrame] = OrderedDict()  # GATED: frames at the gate
        self.audio_buffer = AudioBuffer(limits.audio_buffer_seconds)
        self.jobs: dict[int, _Job] = {}
        self.unscored: set[int] = set()  # frames at the gate (explicit/interval modes)
        self.held: dict[int, int] = {}  # frame sequence → job waiting for that frame's verdict
        self._sequence = self._job_ids = self._descriptions = 0
        self.state = "open"  # open → closing (client half-closed) | shutdown | abandoned → ended
        self._due = now + settings.interval_seconds

    @property
    def gated(self) -> bool:
        return self.settings.mode is TriggerMode.GATED

    # -- inputs from the client --------------------------------------------------------------------
    def frame(self, f: FrameIn, now: float) -> list[Output]:
        seq = self._next_sequence()
        if self.state != "open":
            reason = DropReason.SHUTDOWN if self.state == "shutdown" else DropReason.CANCELLED
            return [Dropped(seq, f.capture_time, reason, "the session is ending; the frame was not accepted")]
        frame = BufferedFrame(seq, f.capture_time, now, f.image)
        out: list[Output] = [Accepted(seq, f.capture_time)]
        if self.gated:
            self.scoring[seq] = frame
            while len(self.scoring) > self.limits.gate_backlog:
                _, old = self.scoring.popitem(last=False)
                out.append(Dropped(old.sequence, old.capture_time, DropReason.SUPERSEDED, "the gate fell behind"))
        else:
            for old in self.frames.add(frame):
                out.append(Dropped(old.sequence, old.capture_time, DropReason.SUPERSEDED))
        if self.settings.image_gate:
            if not self.gated:
                self.unscored.add(seq)
            out.append(Score(seq, f.image))
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
        frame = self.frames.take_nearest(t.capture_time)
        if frame is None:
            return [Dropped(0, t.capture_time or 0.0, DropReason.NO_FRAME, "trigger with no frame buffered")]
        out = self._job(frame, t.capture_time, t.context, final=True, gate=frame.gate)
        if frame.sequence in self.unscored:  # its verdict is on the way: the description waits for it
            self.held[frame.sequence] = self._job_ids
            return []
        return out

    def tick(self, now: float) -> list[Output]:
        """Interval mode: describe the latest frame if the interval is due and nothing of ours is waiting."""
        if self.settings.mode is not TriggerMode.INTERVAL or self.state != "open" or now < self._due:
            return []
        self._due = now + self.settings.interval_seconds
        if len(self.frames) and not any(not j.claimed for j in self.jobs.values()):
            return self.trigger(TriggerIn(None), now)
        return []

    @property
    def next_tick(self) -> float | None:
        """When :meth:`tick` should next be called (interval mode, while open)."""
        return self._due if self.settings.mode is TriggerMode.INTERVAL and self.state == "open" else None

    # -- the gate ------------------------------------------------------------------------------------
    def scored(self, sequence: int, result: Any, now: float) -> list[Output]:
        """The image gate's result for frame ``sequence``."""
        if not self.gated:
            self.unscored.discard(sequence)
            self.frames.update(sequence, gate=result)
            job_id = self.held.pop(sequence, None)
            if job_id is None or job_id not in self.jobs:
                return []
            self.jobs[job_id].gate = result
            return [Submit(job_id)]
        frame = self.scoring.pop(sequence, None)
        if frame is None:  # superseded while at the gate, or the session ended
            return []
        frame = dataclasses.replace(frame, gate=result)
        if result.label and self.state in ("open", "closing"):  # a client that half-closed still gets its verdicts
            return self._job(frame, frame.capture_time, None, final=True, gate=result)
        self.recent.append(frame)
        return [Scored(frame.sequence, frame.capture_time, result), *self._maybe_end()]

    def score_failed(self, sequence: int, error: EdgeError) -> list[Output]:
        """The gate could not judge frame ``sequence`` (corrupt data, a non-finite score)."""
        self.unscored.discard(sequence)
        job_id = self.held.pop(sequence, None)
        if job_id is not None and job_id in self.jobs:  # a trigger chose it: that description cannot be made
            job = self.jobs.pop(job_id)
            assert job.frame is not None
            frame: BufferedFrame | None = job.frame
        else:
            frame = self.scoring.pop(sequence, None) if self.gated else self.frames.take(sequence)
        if frame is None:
            return []
        if isinstance(error, InputError):
            return [Dropped(frame.sequence, frame.capture_time, DropReason.INVALID, str(error)), *self._maybe_end()]
        return [Failed(error, sequence=frame.sequence), *self._maybe_end()]

    def sound_scored(self, start: float, end: float, result: Any, now: float) -> list[Output]:
        """The sound gate's result for the audio captured from ``start`` to ``end``: describe it if anomalous."""
        if not result.label or self.state not in ("open", "closing"):
            return []
        middle = (start + end) / 2
        candidates = [*self.frames.peek(), *self.recent]
        frame = min(candidates, key=lambda f: abs(f.capture_time - middle)) if candidates else None
        return self._job(frame, middle, None, final=False, gate=result, window=(start, end))

    # -- the job's life, driven by the scheduler ---------------------------------------------------
    def claim(self, job_id: int, now: float) -> Request:
        """The job's turn came: bind its inputs, or raise Skip if its frame went stale."""
        job = self.jobs[job_id]
        job.claimed = True
        frame, s = job.frame, self.settings
        if frame is not None and job.final:
            waited = now - frame.received
            if waited > self.limits.stale_after_seconds:
                raise Skip(
                    DropReason.STALE,
                    f"frame {frame.sequence} waited {waited:.2f} s, over stale_after_seconds "
                    f"({self.limits.stale_after_seconds:g} s)",
                )
        if job.window is not None:
            start, end = job.window
        else:
            t = frame.capture_time if frame is not None else 0.0
            start, end = t - s.audio_before_seconds, t + s.audio_after_seconds
        window = self.audio_buffer.window(start, end) if end > start else None
        return build_request(s, frame.image if frame is not None else None, window, job.gate)

    def rejected(self, job_id: int, reason: DropReason, detail: str) -> list[Output]:
        """The scheduler refused the job (queue full, shutting down)."""
        job = self.jobs.pop(job_id)
        return [self._drop_job(job, reason, detail), *self._maybe_end()]

    def job_event(self, job_id: int, ev: JobEvent) -> list[Output]:
        job = self.jobs.get(job_id)
        if job is None:
            return []
        frame = job.frame
        seq = frame.sequence if frame is not None else 0
        if isinstance(ev, JobStarted):
            t = frame.capture_time if frame is not None else 0.0
            trigger = job.trigger_time if job.trigger_time is not None else t
            return [Started(job.description_id, seq, t, trigger, job.gate, job.window)]
        if isinstance(ev, JobToken):
            return [Token(job.description_id, ev.token_id, ev.text)] if self.settings.stream_tokens else []
        out: list[Output] = []
        if isinstance(ev, JobDone):
            final = seq if job.final else 0
            out.append(Finished(job.description_id, final, ev.outcome, job.context, job.gate, job.window))
        elif isinstance(ev, JobSkipped):
            out.append(self._drop_job(job, ev.reason, ev.detail))
        elif isinstance(ev, JobFailed):
            if isinstance(ev.error, InputError):  # the frame turned out corrupt when decoded
                out.append(self._drop_job(job, DropReason.INVALID, str(ev.error)))
            else:
                out.append(Failed(ev.error, sequence=seq if job.final else 0))
        elif isinstance(ev, JobCancelled):
            reason = DropReason.SHUTDOWN if self.state == "shutdown" else DropReason.CANCELLED
            out.append(self._drop_job(job, reason, "the description was cancelled"))
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
                out += [Cancel(job_id), self._drop_job(job, DropReason.SHUTDOWN, "cancelled: the daemon stopped first")]
            self.jobs.clear()
        return out + self._maybe_end()

    def abandon(self) -> list[Output]:
        """The client is gone: cancel our jobs; their frames and the buffered ones end as cancelled."""
        if self.state == "ended":
            return []
        self.state = "abandoned"
        held = [self.jobs.pop(job_id) for job_id in self.held.values() if job_id in self.jobs]  # never submitted
        self.held.clear()
        out: list[Output] = [self._drop_job(job, DropReason.CANCELLED, "the client left") for job in held]
        out += [Cancel(job_id) for job_id in self.jobs]
        out += self._drop_buffered(DropReason.CANCELLED, "the client left")
        return out + self._maybe_end()

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    # -- internals -----------------------------------------------------------------------------------
    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def _job(
        self,
        frame: BufferedFrame | None,
        when: float | None,
        context: PartContext | None,
        final: bool,
        gate: Any,
        window: tuple[float, float] | None = None,
    ) -> list[Output]:
        self._job_ids += 1
        self._descriptions += 1
        ctx = context or self.settings.context
        self.jobs[self._job_ids] = _Job(self._descriptions, frame, when, ctx, final, gate, window)
        return [Submit(self._job_ids)]

    def _drop_job(self, job: _Job, reason: DropReason, detail: str) -> Dropped:
        f = job.frame
        if f is None or not job.final:  # a sound description: no frame ends here
            when = job.window[0] if job.window else 0.0
            return Dropped(0, when, reason, detail)
        return Dropped(f.sequence, f.capture_time, reason, detail)

    def _drop_buffered(self, reason: DropReason, detail: str) -> list[Output]:
        frames = self.frames.take_all() + list(self.scoring.values())
        self.scoring.clear()
        return [Dropped(f.sequence, f.capture_time, reason, detail) for f in sorted(frames, key=lambda f: f.sequence)]

    def _maybe_end(self) -> list[Output]:
        if self.state in ("open", "ended") or self.jobs or self.scoring:
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
