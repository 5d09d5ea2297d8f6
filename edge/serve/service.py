"""The gRPC servicer: a thin adapter from edge.v1 messages to the station pipeline and back.

Requests arrive as wire bytes and are parsed in ``convert`` (so malformed protobuf is an
INVALID_ARGUMENT like any other bad field); every RPC runs inside ``rpc.Rpc.guarded`` (errors to status
codes, one metrics count per reply); descriptions run on the ``station.worker.Scheduler``; Inspect
streams are driven by ``inspect_rpc``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc

from edge import __version__
from edge.errors import FieldError, ShuttingDownError
from edge.journal.records import Record, context_of, describe_record, error_body
from edge.serve.cameras import CameraSessions
from edge.serve.config import ServeConfig
from edge.serve.convert import Converter, gate_result, parse
from edge.serve.events_rpc import EventsRpc
from edge.serve.inspect_rpc import InspectSessions
from edge.serve.journaling import Journaling
from edge.serve.recorder import SessionRecorder
from edge.serve.replies import describe_response, gate_message
from edge.serve.rpc import Rpc
from edge.station.admission import finite
from edge.station.describe import with_gate
from edge.station.engine import Request
from edge.station.gating import GateRunner
from edge.station.worker import FINAL, Job, JobCancelled, JobDone, JobEvent, JobFailed, JobSkipped, JobToken, Scheduler
from edge.v1 import inspector_pb2 as pb


async def job_events(scheduler: Scheduler, key: str, request: Request) -> AsyncIterator[JobEvent]:
    """Run one job and yield its events (emitted on the engine thread) on this event loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[JobEvent] = asyncio.Queue()

    def emit(ev: JobEvent) -> None:  # on the engine thread
        loop.call_soon_threadsafe(queue.put_nowait, ev)

    job = Job(key=key, request=request, emit=emit)
    scheduler.submit(job)
    try:
        while True:
            ev = await queue.get()
            yield ev
            if isinstance(ev, FINAL):
                return
    finally:
        job.cancelled.set()  # harmless once finished; stops the generation if the client went away


class InspectorService:
    """``edge.v1.InspectorService`` over one engine, through the scheduler."""

    def __init__(
        self,
        cfg: ServeConfig,
        engine: Any,
        scheduler: Scheduler,
        metrics: Any,
        gate: GateRunner | None = None,
        journaling: Journaling | None = None,
    ) -> None:
        self.cfg, self.engine, self.scheduler, self.metrics, self.gate = cfg, engine, scheduler, metrics, gate
        self.journaling = journaling  # None: nothing is journaled
        self.rpc = Rpc(metrics)
        self.conv = Converter(cfg, engine, engine.defaults.max_new_tokens, gate.gate if gate is not None else None)
        m = engine.manifest
        self.model = pb.ModelIdentity(
            bundle_id=m.bundle_id,
            model_id=str(m.source.get("model_id", "")),
            quantization=str(m.quantization.get("name", "")),
        )
        self.draining = False
        self.inflight = 0  # Describe/DescribeStream calls not yet answered (the drain waits for them)
        self.answered = asyncio.Event()
        recorder = SessionRecorder(journaling) if journaling is not None else None
        self.sessions = InspectSessions(cfg, self.conv, scheduler, metrics, self.model, gate, recorder)
        # started with the server; nobody waits for a camera's commits (they share the next paced one)
        unawaited = SessionRecorder(journaling, awaited=False) if journaling is not None else None
        self.cameras = CameraSessions(cfg, self.conv, scheduler, metrics, gate, unawaited)
        self.events = EventsRpc(journaling, cfg)

    async def wait_answered(self, timeout: float) -> bool:
        """Wait until every Describe/DescribeStream call has sent its answer (for draining)."""
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                while self.inflight:
                    self.answered.clear()
                    await self.answered.wait()
        except TimeoutError:
            return False
        return True

    # -- descriptions ---------------------------------------------------------------------------------
    async def _describe(
        self, request: pb.DescribeRequest, context: grpc.aio.ServicerContext, stream: bool
    ) -> AsyncGenerator[pb.DescribeResponse | pb.TokenChunk, None]:
        if self.draining:
            raise ShuttingDownError("the daemon is shutting down and takes no new descriptions; retry on another")
        self.inflight += 1
        try:
            req = received = await asyncio.to_thread(self.conv.describe_request, request)
            gate = await self._gate(request, req)
            if gate is not None:
                req = with_gate(req, gate, self.conv.references)
            key = "station:" + (request.context.station_id or context.peer())
            async for ev in job_events(self.scheduler, key, req):
                if isinstance(ev, JobToken) and stream:
                    yield pb.TokenChunk(token_id=ev.token_id, text=ev.text)
                elif isinstance(ev, JobDone):
                    if self.journaling is not None:  # journaled before it is reported, with the frame as received
                        rec = describe_record(key, ev.outcome, request.context, received.images, received.audio, gate)
                        await self.journaling.record(rec)
                    yield describe_response(ev.outcome, self.model, request.context, gate_message(gate))
                elif isinstance(ev, JobFailed):
                    if self.journaling is not None:
                        await self.journaling.record(
                            Record(key, error_body(ev.error), context=context_of(request.context))
                        )
                    raise ev.error
                elif isinstance(ev, JobSkipped | JobCancelled):
                    raise ShuttingDownError("the description was not finished: the daemon is shutting down")
        finally:
            self.inflight -= 1
            self.answered.set()

    async def _gate(self, request: pb.DescribeRequest, req: Request) -> Any:
        """The gate's verdict on the first image: the caller's own, or the station gate's (None without one)."""
        if not req.images:
            return None
        if request.HasField("gate"):
            result = gate_result(request.gate)
            first = req.images[0]
            if result.region is not None and not (result.region[2] <= first.width and result.region[3] <= first.height):
                raise FieldError("gate.region", f"{result.region} is outside the {first.width}x{first.height} image")
            return result
        if self.gate is None or self.gate.gate.image is None:
            return None
        override = request.gate_threshold if request.HasField("gate_threshold") else None
        return await self.gate.image(req.images[0], self.conv.threshold(override, "gate_threshold"))

    async def _describe_once(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.DescribeResponse:
        async for reply in self._describe(parse(pb.DescribeRequest, raw), context, stream=False):
            if isinstance(reply, pb.DescribeResponse):
                return reply
        raise ShuttingDownError("the description ended without a result")  # pragma: no cover

    async def _describe_stream(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[pb.DescribeStreamResponse, None]:
        request = parse(pb.DescribeStreamRequest, raw).request
        async for reply in self._describe(request, context, stream=True):
            if isinstance(reply, pb.TokenChunk):
                yield pb.DescribeStreamResponse(token=reply)
            else:
                yield pb.DescribeStreamResponse(done=reply)

    # -- RPCs (registered with raw-bytes requests; see server.py) ------------------------------------
    async def Describe(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.DescribeResponse:
        return await self.rpc.unary("Describe", context, self._describe_once(raw, context))

    async def DescribeStream(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[pb.DescribeStreamResponse, None]:
        async for reply in self.rpc.guarded("DescribeStream", context, self._describe_stream(raw, context)):
            yield reply

    async def Inspect(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[pb.InspectResponse, None]:
        async for reply in self.rpc.guarded("Inspect", context, self.sessions.run(requests)):
            yield reply

    async def ListEvents(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.ListEventsResponse:
        return await self.rpc.unary("ListEvents", context, self.events.list(raw))

    async def WatchEvents(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[pb.WatchEventsResponse, None]:
        async for reply in self.rpc.guarded("WatchEvents", context, self.events.watch(raw)):
            yield reply

    async def GetEvidence(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.GetEvidenceResponse:
        return await self.rpc.unary("GetEvidence", context, self.events.evidence(raw))

    async def GetInfo(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.GetInfoResponse:
        return await self.rpc.unary("GetInfo", context, self._info(raw))

    async def _info(self, raw: bytes) -> pb.GetInfoResponse:
        parse(pb.GetInfoRequest, raw)
        e, cfg, lim = self.engine, self.cfg, self.conv.limits
        parity = e.manifest.parity or {}
        summary = {
            k: str(parity[k])
            for k in ("all_tokens_equal", "tf_mean_cosine", "tf_top1_agreement", "min_logits_cosine", "status")
            if k in parity
        }
        return pb.GetInfoResponse(
            model=self.model,
            version=__version__,
            schema_version=int(e.manifest.schema_version),
            context_tokens=int(e.context),
            default_max_soft_tokens=int(e.default_soft_tokens),
            has_vision=e.spec.vision is not None,
            has_audio=e.spec.audio is not None,
            limits=pb.Limits(
                max_message_bytes=cfg.max_message_bytes,
                max_image_bytes=cfg.max_image_bytes,
                max_image_pixels=cfg.max_image_pixels,
                max_audio_seconds=cfg.max_audio_seconds,
                max_new_tokens=cfg.max_new_tokens,
                queue_depth=cfg.queue_depth,
                stale_after_seconds=cfg.stale_after_seconds,
                min_interval_seconds=cfg.min_interval_seconds,
                max_streams=cfg.max_streams,
                max_prompt_bytes=lim.max_prompt_bytes,
                max_images_per_request=lim.max_images,
                max_audio_clips_per_request=lim.max_audio_clips,
                max_interval_seconds=cfg.max_interval_seconds,
                max_schema_bytes=cfg.max_schema_bytes,
            ),
            parity=summary,
            gate=self._gate_info(),
            sources=self.cameras.info(),
        )

    def _gate_info(self) -> pb.GateInfo | None:
        if self.gate is None:
            return None
        g = self.gate.gate
        return pb.GateInfo(
            gate_id=g.gate_id,
            image=g.image is not None,
            sound=g.sound is not None,
            threshold=self.cfg.gate_threshold or 0.5,
            reference_images=len(self.conv.references),
            sound_window_seconds=g.sound.window_seconds if g.sound is not None else 0.0,
        )

    # -- pulled cameras -------------------------------------------------------------------------------
    async def Trigger(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.TriggerResponse:
        return await self.rpc.unary("Trigger", context, self._trigger(raw))

    async def _trigger(self, raw: bytes) -> pb.TriggerResponse:
        t = parse(pb.TriggerRequest, raw)
        when = finite(t.capture_time, "capture_time") if t.capture_time else None
        sequence, captured = self.cameras.trigger(t.camera_id, when, t.part_id, t.reason)
        return pb.TriggerResponse(frame_sequence=sequence, frame_capture_time=captured)
