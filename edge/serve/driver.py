"""Drives one session core on the event loop: the gate, the scheduler and the clock around the state machine.

Every source of frames uses it: an Inspect stream (``inspect_rpc``) and a pulled camera alike. It feeds
inputs to the :class:`~edge.station.session.SessionCore` under one lock (the engine thread claims jobs),
runs what the core asks for (gate scoring on the gate's thread, description jobs on the scheduler,
cancellation, the interval timer), feeds the results back, counts frames in the metrics, and hands every
client-facing event (and the final :class:`~edge.station.actions.Ended`) to ``emit`` on the event loop.
With a :class:`~edge.serve.recorder.SessionRecorder`, each decision is journaled with its evidence first
and emitted as a :class:`~edge.serve.recorder.Recorded`; the driver keeps each frame's image (and each
described request) only until its decision.

>>> driver = SessionDriver(core, "inspect:7", scheduler, metrics, gate_runner, emit=queue.put_nowait)
>>> driver.start()
>>> driver.feed(core.frame, frame_in, time.monotonic())
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from edge.errors import EdgeError, OverloadedError, ShuttingDownError
from edge.serve.recorder import Recorded, SessionRecorder, decision_sequence, is_decision
from edge.station.actions import Cancel, Ended, Score, Submit
from edge.station.engine import Request
from edge.station.events import Accepted, Dropped, DropReason, Event, Finished
from edge.station.gating import GateRunner, SoundStream
from edge.station.inputs import AudioIn
from edge.station.session import Output, SessionCore
from edge.station.worker import FINAL, Job, JobEvent, Scheduler


class SessionDriver:
    def __init__(
        self,
        core: SessionCore,
        key: str,
        scheduler: Scheduler,
        metrics: Any,
        gate: GateRunner | None,
        emit: Callable[[Event | Recorded | Ended], None],
        recorder: SessionRecorder | None = None,
    ) -> None:
        self.core, self.key, self.scheduler, self.metrics, self.gate, self.emit = (
            core,
            key,
            scheduler,
            metrics,
            gate,
            emit,
        )
        self.recorder = recorder
        self.frames: dict[int, Any] = {}  # frame sequence → image, until its decision (with a recorder)
        self.bound: dict[int, Request] = {}  # job id → the request described, until the job ends
        self.finishing: Request | None = None  # the request of the job whose final event is being fed
        self.lock = threading.RLock()
        self.loop = asyncio.get_running_loop()
        self.jobs: dict[int, Job] = {}
        self.sound = SoundStream()
        self.tasks: set[asyncio.Task[None]] = set()  # gate scorings and the interval timer

    def start(self) -> None:
        """Register with the scheduler (a fair share of the queue) and start the interval timer if any."""
        self.scheduler.register(self.key)
        self._spawn(self._tick())

    def stop(self) -> None:
        """The source is gone: cancel pending work; the core's remaining frames end as cancelled."""
        for task in list(self.tasks):
            task.cancel()
        if not self.core.ended:
            self.feed(self.core.abandon)
        self.scheduler.unregister(self.key)

    def feed(self, step: Callable[..., list[Output]], *args: Any) -> None:
        """Call one core input under the lock, then carry out its outputs."""
        with self.lock:
            outputs = step(*args)
        for o in outputs:
            self._dispatch(o)

    async def audio(self, chunk: AudioIn) -> None:
        """An audio chunk: into the core's buffer, then through the sound gate if there is one."""
        self.feed(self.core.audio, chunk, time.monotonic())
        self.metrics.audio_received(len(chunk.samples) / 16_000)
        if self.gate is None or not self.core.settings.sound_gate:
            return
        for start, end, result in await self.gate.sound(self.sound, chunk.samples, chunk.capture_time):
            self.feed(self.core.sound_scored, start, end, result, time.monotonic())

    # -- outputs --------------------------------------------------------------------------------------
    def _dispatch(self, o: Output) -> None:
        if isinstance(o, Score):
            if self.recorder is not None:
                self.frames[o.sequence] = o.image
            self._spawn(self._score(o.sequence, o.image))
        elif isinstance(o, Submit):
            self._submit(o.job_id)
        elif isinstance(o, Cancel):
            job = self.jobs.get(o.job_id)
            if job is not None:
                job.cancelled.set()
        elif isinstance(o, Ended):
            self.emit(o)
        else:
            if isinstance(o, Accepted) and o.media == "frame":
                self.metrics.frame_received()
            elif isinstance(o, Dropped) and (o.sequence or o.reason is DropReason.NO_FRAME):
                self.metrics.frame_dropped(o.reason.value)
            self.emit(self._record(o) if self.recorder is not None and is_decision(o) else o)

    def _record(self, event: Event) -> Recorded:
        assert self.recorder is not None
        seq = decision_sequence(event)
        frame = self.frames.pop(seq, None) if seq else None
        request = self.finishing if isinstance(event, Finished) else None
        committed = self.recorder.record(self.key, event, self.core.settings.context, frame, request)
        return Recorded(event, committed)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _submit(self, job_id: int) -> None:
        def emit(ev: JobEvent) -> None:  # the engine thread
            self.loop.call_soon_threadsafe(self._job_event, job_id, ev)

        def resolve() -> Any:  # the engine thread
            with self.lock:
                request = self.core.claim(job_id, time.monotonic())
                if self.recorder is not None:
                    self.bound[job_id] = request
                return request

        if self.recorder is not None:
            with self.lock:
                pending = self.core.jobs.get(job_id)
                if pending is not None and pending.final and pending.frame is not None:  # it decides its frame
                    self.frames.setdefault(pending.frame.sequence, pending.frame.image)

        job = Job(key=self.key, emit=emit, resolve=resolve)
        try:
            self.scheduler.submit(job)
        except (OverloadedError, ShuttingDownError) as exc:
            reason = DropReason.QUEUE_FULL if isinstance(exc, OverloadedError) else DropReason.SHUTDOWN
            self.feed(self.core.rejected, job_id, reason, str(exc))
            return
        self.jobs[job_id] = job

    def _job_event(self, job_id: int, ev: JobEvent) -> None:
        if not isinstance(ev, FINAL):
            self.feed(self.core.job_event, job_id, ev)
            return
        self.jobs.pop(job_id, None)
        with self.lock:
            self.finishing = self.bound.pop(job_id, None)
        try:
            self.feed(self.core.job_event, job_id, ev)
        finally:
            self.finishing = None

    async def _score(self, sequence: int, image: Any) -> None:
        """Run the image gate on its thread; the verdict goes back to the core (errors end the frame)."""
        assert self.gate is not None
        try:
            result = await self.gate.image(image, self.core.settings.gate_threshold)
        except EdgeError as exc:  # a frame that cannot be decoded, a non-finite score
            self.feed(self.core.score_failed, sequence, exc)
            return
        self.feed(self.core.scored, sequence, result, time.monotonic())

    async def _tick(self) -> None:
        while True:
            with self.lock:
                due = self.core.next_tick
            if due is None:
                return
            await asyncio.sleep(max(due - time.monotonic(), 0.0))
            self.feed(self.core.tick, time.monotonic())
