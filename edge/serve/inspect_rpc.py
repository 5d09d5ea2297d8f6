"""``Inspect`` streams: the adapter between a gRPC bidirectional stream and a station session core.

It parses each message (wire bytes) into domain inputs for a :class:`~edge.serve.driver.SessionDriver`,
which runs the :class:`~edge.station.session.SessionCore` with the gate, the scheduler and the clock, and
writes the session's events out as protobuf. All decisions (buffering, triggers, staleness, the
exactly-one-final-event accounting) are the core's; this module only moves messages. With a journal, a
decision is written to the client only once the journal has committed it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from edge.errors import EdgeError, FieldError, InputError, OverloadedError, SessionError, ShuttingDownError
from edge.serve.config import ServeConfig
from edge.serve.convert import Converter, parse
from edge.serve.driver import SessionDriver
from edge.serve.recorder import Recorded, SessionRecorder
from edge.serve.replies import inspect_event
from edge.station.actions import Ended
from edge.station.events import Event
from edge.station.gating import GateRunner
from edge.station.inputs import SessionLimits
from edge.station.session import SessionCore
from edge.station.worker import Scheduler
from edge.v1 import inspector_pb2 as pb


class InspectSessions:
    """Every open Inspect stream of the daemon."""

    def __init__(
        self,
        cfg: ServeConfig,
        conv: Converter,
        scheduler: Scheduler,
        metrics: Any,
        model: pb.ModelIdentity,
        gate: GateRunner | None = None,
        recorder: SessionRecorder | None = None,
    ) -> None:
        self.cfg, self.conv, self.scheduler, self.metrics, self.model = cfg, conv, scheduler, metrics, model
        self.gate, self.recorder = gate, recorder
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
        limits = SessionLimits(
            self.cfg.frame_buffer, self.cfg.audio_buffer_seconds, self.cfg.stale_after_seconds, self.cfg.gate_backlog
        )
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


@dataclass(frozen=True)
class _Committing:
    """A decision's reply, held back until the journal has committed the decision."""

    committed: Future[int]
    reply: pb.InspectResponse


class _Stream:
    """One Inspect stream: parses its messages into the session driver, writes the driver's events out."""

    def __init__(self, owner: InspectSessions, core: SessionCore, key: str) -> None:
        self.owner, self.core, self.conv = owner, core, owner.conv
        self.out: asyncio.Queue[pb.InspectResponse | _Committing | Ended] = asyncio.Queue()
        o = owner
        self.driver = SessionDriver(core, key, o.scheduler, o.metrics, o.gate, self._emit, o.recorder)
        self.feed = self.driver.feed

    def _emit(self, item: Event | Recorded | Ended) -> None:
        if isinstance(item, Recorded):
            self.out.put_nowait(_Committing(item.committed, inspect_event(item.event, self.owner.model)))
        else:
            self.out.put_nowait(item if isinstance(item, Ended) else inspect_event(item, self.owner.model))

    async def serve(self, it: AsyncIterator[bytes]) -> AsyncGenerator[pb.InspectResponse, None]:
        self.driver.start()
        reader = asyncio.create_task(self._read(it))
        try:
            while True:
                item = await self.out.get()
                if isinstance(item, Ended):
                    if item.status == "UNAVAILABLE":
                        raise ShuttingDownError(item.message)
                    return
                if isinstance(item, _Committing):  # reported once journaled
                    assert self.owner.recorder is not None
                    await self.owner.recorder.journaling.settle(item.committed)
                    item = item.reply
                yield item
        finally:
            reader.cancel()
            self.driver.stop()  # the client cancelled or vanished: stop our descriptions

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
                    self.feed(self.core.refuse_frame, t if math.isfinite(t) else 0.0, exc)
                    return
                self.feed(self.core.frame, frame, time.monotonic())
            elif kind == "audio":
                await self.driver.audio(await asyncio.to_thread(self.conv.audio_chunk, msg.audio))
            elif kind == "trigger":
                self.feed(self.core.trigger, self.conv.trigger(msg.trigger), time.monotonic())
            elif kind == "config":
                raise SessionError("config: config may only be the first message of a stream")
            else:
                raise FieldError("message", "empty message: set config, frame, audio or trigger")
        except EdgeError as exc:
            self.feed(self.core.refuse, exc)
