"""``Inspect`` streams: the adapter between a gRPC bidirectional stream and a station session core.

It parses each message (wire bytes) into domain inputs, feeds them to a
:class:`~edge.station.session.SessionCore` with the daemon's clock, hands the description jobs the core
asks for to the scheduler, feeds the scheduler's job events back, and writes the core's events out as
protobuf. All decisions (buffering, triggers, staleness, the exactly-one-final-event accounting) are the
core's; this module only moves messages and counts them in the metrics.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from edge.errors import EdgeError, FieldError, InputError, OverloadedError, SessionError, ShuttingDownError
from edge.journal.records import Evidence, from_event
from edge.serve.config import ServeConfig
from edge.serve.convert import Converter, parse
from edge.serve.replies import inspect_event
from edge.station.events import Accepted, Dropped, DropReason, Finished, is_final_for_frame
from edge.station.inputs import SessionLimits
from edge.station.session import Cancel, Ended, Output, SessionCore, Submit
from edge.station.worker import FINAL, Job, JobEvent, Scheduler
from edge.v1 import inspector_pb2 as pb


@dataclass(frozen=True)
class _Journaled:
    """A final event's reply, held back until the journal has committed the decision."""

    future: Future[int]
    reply: pb.InspectResponse


class InspectSessions:
    """Every open Inspect stream of the daemon."""

    def __init__(
        self,
        cfg: ServeConfig,
        conv: Converter,
        scheduler: Scheduler,
        metrics: Any,
        model: pb.ModelIdentity,
        journaling: Any = None,
    ) -> None:
        self.cfg, self.conv, self.scheduler, self.metrics, self.model = cfg, conv, scheduler, metrics, model
        self.journaling = journaling  # edge.serve.journaling.Journaling: final events are journaled first
        self.streams: set[_Stream] = set()
        self.ids = itertools.count(1)
        self.draining = False
        self.closed = asyncio.Event()
        self.closed.set()

    async def run(self, requests: AsyncIterator[bytes]) -> AsyncGenerator[pb.InspectResponse, None]:
        if len(self.streams) >= self.cfg.max_streams:
            raise OverloadedError(f"{self.cfg.max_streams} Inspect streams are already open (max_streams)")
        if self.draining:
            raise ShuttingDownError("the daemon is shutting down; open the stream on another")
        it = aiter(requests)
        try:
            async with asyncio.timeout(self.cfg.first_message_timeout_seconds):
                raw = await anext(it)
        except TimeoutError:
            raise SessionError(
                f"no first message within {self.cfg.first_message_timeout_seconds:g} s: an Inspect "
                "stream must start with config (InspectConfig)"
            ) from None
        except StopAsyncIteration:
            return
        first = parse(pb.InspectRequest, raw)
        if first.WhichOneof("message") != "config":
            raise SessionError(
                "config: the first message must be config (InspectConfig), got "
                f"{first.WhichOneof('message') or 'an empty message'}"
            )
        settings = self.conv.session_settings(first.config)
        limits = SessionLimits(self.cfg.frame_buffer, self.cfg.audio_buffer_seconds, self.cfg.stale_after_seconds)
        stream = _Stream(self, SessionCore(settings, limits, time.monotonic()), f"inspect:{next(self.ids)}")
        self.streams.add(stream)
        self.closed.clear()
        self.metrics.active_streams.inc()
        try:
            async for reply in stream.serve(it):
                yield reply
        finally:
            self.streams.discard(stream)
            self.metrics.active_streams.dec()
            if not self.streams:
                self.closed.set()

    def shutdown(self, force: bool = False) -> None:
        """Drain: buffered frames are dropped now; with ``force``, unfinished descriptions end too."""
        self.draining = True
        for stream in list(self.streams):
            stream.feed(stream.core.shutdown, force)

    async def wait_closed(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await self.closed.wait()
        except TimeoutError:
            return False
        return True


class _Stream:
    """Drives one session core; the core is only touched under ``lock`` (the engine thread claims jobs)."""

    def __init__(self, owner: InspectSessions, core: SessionCore, key: str) -> None:
        self.owner, self.core, self.key = owner, core, key
        self.conv, self.scheduler, self.metrics = owner.conv, owner.scheduler, owner.metrics
        self.lock = threading.RLock()
        self.loop = asyncio.get_running_loop()
        self.out: asyncio.Queue[pb.InspectResponse | Ended | _Journaled] = asyncio.Queue()
        self.jobs: dict[int, Job] = {}
        self.described: dict[int, Any] = {}  # frame sequence → its image, kept as evidence of its decision

    def feed(self, step: Callable[..., list[Output]], *args: Any) -> None:
        with self.lock:
            outputs = step(*args)
        for o in outputs:
            self._dispatch(o)

    def _dispatch(self, o: Output) -> None:
        if isinstance(o, Submit):
            self._submit(o.job_id)
        elif isinstance(o, Cancel):
            job = self.jobs.get(o.job_id)
            if job is not None:
                job.cancelled.set()
        elif isinstance(o, Ended):
            self.out.put_nowait(o)
        else:
            if isinstance(o, Accepted) and o.media == "frame":
                self.metrics.frame_received()
            elif isinstance(o, Dropped) and (o.sequence or o.reason is DropReason.NO_FRAME):
                self.metrics.frame_dropped(o.reason.value)
            reply = inspect_event(o, self.owner.model)
            journaling = self.owner.journaling
            if journaling is not None and (is_final_for_frame(o) or isinstance(o, Dropped)):
                image = self.described.pop(getattr(o, "frame_sequence", getattr(o, "sequence", 0)), None)
                report = o.outcome.result.text if isinstance(o, Finished) and o.outcome.result.report else ""
                evidence = Evidence(frame=image, report=report) if isinstance(o, Finished) else None
                rec = from_event(self.key, o, context=getattr(o, "context", None) or self.core.settings.context,
                                 evidence=evidence)  # fmt: skip
                self.out.put_nowait(_Journaled(journaling.journal.append(rec), reply))
            else:
                self.out.put_nowait(reply)

    def _submit(self, job_id: int) -> None:
        def emit(ev: JobEvent) -> None:  # the engine thread
            self.loop.call_soon_threadsafe(self._job_event, job_id, ev)

        def resolve() -> Any:  # the engine thread
            with self.lock:
                return self.core.claim(job_id, time.monotonic())

        if self.owner.journaling is not None:
            with self.lock:
                pending = self.core.jobs.get(job_id)
            if pending is not None:
                self.described[pending.frame.sequence] = pending.frame.image
        job = Job(key=self.key, emit=emit, resolve=resolve)
        try:
            self.scheduler.submit(job)
        except (OverloadedError, ShuttingDownError) as exc:
            reason = DropReason.QUEUE_FULL if isinstance(exc, OverloadedError) else DropReason.SHUTDOWN
            self.feed(self.core.rejected, job_id, reason, str(exc))
            return
        self.jobs[job_id] = job

    def _job_event(self, job_id: int, ev: JobEvent) -> None:
        if isinstance(ev, FINAL):
            self.jobs.pop(job_id, None)
        self.feed(self.core.job_event, job_id, ev)

    # -- the stream -----------------------------------------------------------------------------------
    async def serve(self, it: AsyncIterator[bytes]) -> AsyncGenerator[pb.InspectResponse, None]:
        self.scheduler.register(self.key)
        reader = asyncio.create_task(self._read(it))
        ticker = asyncio.create_task(self._tick())
        try:
            while True:
                item = await self.out.get()
                if isinstance(item, Ended):
                    if item.status == "UNAVAILABLE":
                        raise ShuttingDownError(item.message)
                    return
                if isinstance(item, _Journaled):  # reported only once journaled
                    await self.owner.journaling.settle(item.future)
                    item = item.reply
                yield item
        finally:
            for task in (reader, ticker):
                task.cancel()
            if not self.core.ended:  # the client cancelled or vanished: stop our descriptions
                self.feed(self.core.abandon)
            self.scheduler.unregister(self.key)

    async def _read(self, it: AsyncIterator[bytes]) -> None:
        try:
            async for raw in it:
                await self._message(raw)
        except asyncio.CancelledError:
            raise
        except Exception:  # the transport failed: the client vanished mid-stream
            self.feed(self.core.abandon)
            return
        self.feed(self.core.close)  # half-closed by the client: finish what was asked, then end

    async def _message(self, raw: bytes) -> None:
        try:
            msg = parse(pb.InspectRequest, raw)
            kind = msg.WhichOneof("message")
            if kind == "frame":
                try:
                    frame = self.conv.frame(msg.frame)
                except InputError as exc:
                    t = msg.frame.capture_time
                    self.feed(self.core.refuse_frame, t if t == t and abs(t) != float("inf") else 0.0, exc)
                    return
                self.feed(self.core.frame, frame, time.monotonic())
            elif kind == "audio":
                chunk = await asyncio.to_thread(self.conv.audio_chunk, msg.audio)
                self.feed(self.core.audio, chunk, time.monotonic())
                self.metrics.audio_received(len(chunk.samples) / 16_000)
            elif kind == "trigger":
                self.feed(self.core.trigger, self.conv.trigger(msg.trigger), time.monotonic())
            elif kind == "config":
                raise SessionError("config: config may only be the first message of a stream")
            else:
                raise FieldError("message", "empty message: set config, frame, audio or trigger")
        except EdgeError as exc:
            self.feed(self.core.refuse, exc)

    async def _tick(self) -> None:
        while True:
            with self.lock:
                due = self.core.next_tick
            if due is None:
                return
            await asyncio.sleep(max(due - time.monotonic(), 0.0))
            self.feed(self.core.tick, time.monotonic())
