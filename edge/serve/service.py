"""The gRPC servicer: a thin adapter from edge.v1 messages to the scheduler and back.

Conversion lives in ``convert``, scheduling in ``scheduler``, Inspect sessions in ``inspect``;
this module only routes, maps errors to status codes (``convert.STATUS_TABLE``) and counts
requests. Streaming RPCs are timed inside their generators, not in an interceptor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc

from edge import __version__
from edge.errors import EdgeError, ShuttingDownError
from edge.serve.config import ServeConfig
from edge.serve.convert import Converter, describe_response, status_for
from edge.serve.scheduler import FINAL, Job, Request, Scheduler
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class JobBridge:
    """Runs a scheduler job and hands its events, emitted on the worker thread, to the event loop."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    async def events(self, key: str, request: Request) -> AsyncIterator[tuple[str, Any]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def emit(kind: str, payload: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, payload))

        job = Job(key=key, request=request, emit=emit)
        self.scheduler.submit(job)
        try:
            while True:
                kind, payload = await queue.get()
                yield kind, payload
                if kind in FINAL:
                    return
        finally:
            job.cancelled.set()  # harmless once finished; stops the generation if the client went away


class InspectorService(pb_grpc.InspectorServiceServicer):
    """``edge.v1.InspectorService`` over one engine (through the scheduler)."""

    def __init__(self, cfg: ServeConfig, engine: Any, scheduler: Scheduler, metrics: Any) -> None:
        self.cfg = cfg
        self.engine = engine
        self.scheduler = scheduler
        self.metrics = metrics
        self.bridge = JobBridge(scheduler)
        self.conv = Converter(cfg, engine.defaults.max_new_tokens)
        m = engine.manifest
        self.model = pb.ModelIdentity(
            bundle_id=m.bundle_id,
            model_id=str(m.source.get("model_id", "")),
            quantization=str(m.quantization.get("name", "")),
        )
        self.draining = False
        self.inflight = 0  # Describe/DescribeStream calls not yet answered (drain waits for them)
        self.answered = asyncio.Event()
        from edge.serve.inspect_rpc import InspectSessions

        self.sessions = InspectSessions(self)

    # -- helpers ----------------------------------------------------------------------------------
    async def fail(self, context: grpc.aio.ServicerContext, exc: EdgeError) -> None:
        code = status_for(exc)
        if code == grpc.StatusCode.INTERNAL:
            log.error("internal error: %s", exc)
        await context.abort(code, str(exc))

    async def internal(self, context: grpc.aio.ServicerContext) -> None:
        """A bug, not a bad request: log the traceback, tell the client without leaking internals."""
        log.exception("unexpected error while serving a request")
        await context.abort(grpc.StatusCode.INTERNAL, "internal error in the daemon; the traceback is in its log")

    def key(self, ctx: pb.PartContext, context: grpc.aio.ServicerContext) -> str:
        return "station:" + (ctx.station_id or context.peer())

    async def wait_answered(self, timeout: float) -> bool:
        """Wait until every Describe/DescribeStream call has sent its answer (for draining)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.inflight:
            self.answered.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.answered.wait(), left)
            except TimeoutError:
                return False
        return True

    async def _describe(self, request: pb.DescribeRequest, context: Any, stream: bool) -> AsyncGenerator[Any, None]:
        if self.draining:
            raise ShuttingDownError("the daemon is shutting down and takes no new descriptions; retry on another")
        self.inflight += 1
        try:
            async for item in self._describe_events(request, context, stream):
                yield item
        finally:
            self.inflight -= 1
            self.answered.set()

    async def _describe_events(
        self, request: pb.DescribeRequest, context: Any, stream: bool
    ) -> AsyncGenerator[Any, None]:
        req = await asyncio.to_thread(self.conv.describe_request, request)
        async for kind, payload in self.bridge.events(self.key(request.context, context), req):
            if kind == "token" and stream:
                yield pb.DescribeStreamResponse(token=pb.TokenChunk(token_id=payload.token_id, text=payload.text))
            elif kind == "done":
                yield describe_response(
                    payload.result, payload.queue_s, payload.preprocess_s, payload.total_s, self.model, request.context
                )
            elif kind == "error":
                raise payload
            elif kind == "skipped":
                raise ShuttingDownError(f"the description was not run: {payload.detail or payload.reason}")

    # -- RPCs -------------------------------------------------------------------------------------
    async def Describe(self, request: pb.DescribeRequest, context: grpc.aio.ServicerContext) -> pb.DescribeResponse:
        code = "OK"
        try:
            async with contextlib.aclosing(self._describe(request, context, stream=False)) as results:
                async for resp in results:
                    return resp
            raise EdgeError("the description ended without a result")
        except EdgeError as exc:
            code = status_for(exc).name
            await self.fail(context, exc)
            raise  # unreachable: abort raises
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception:
            code = "INTERNAL"
            await self.internal(context)
            raise
        finally:
            self.metrics.request_done("Describe", code)

    async def DescribeStream(
        self, stream_request: pb.DescribeStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DescribeStreamResponse]:
        code = "OK"
        request = stream_request.request
        try:
            async for item in self._describe(request, context, stream=True):
                yield item if isinstance(item, pb.DescribeStreamResponse) else pb.DescribeStreamResponse(done=item)
        except EdgeError as exc:
            code = status_for(exc).name
            await self.fail(context, exc)
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception:
            code = "INTERNAL"
            await self.internal(context)
        finally:
            self.metrics.request_done("DescribeStream", code)

    async def Inspect(
        self, request_iterator: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.InspectResponse]:
        async with contextlib.aclosing(self.sessions.run(request_iterator, context)) as events:
            async for event in events:
                yield event

    async def GetInfo(self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext) -> pb.GetInfoResponse:
        e, cfg = self.engine, self.cfg
        parity = e.manifest.parity or {}
        summary = {
            k: str(parity[k])
            for k in ("all_tokens_equal", "tf_mean_cosine", "tf_top1_agreement", "min_logits_cosine", "status")
            if k in parity
        }
        self.metrics.request_done("GetInfo", "OK")
        return pb.GetInfoResponse(
            model=self.model,
            version=__version__,
            schema_version=int(e.manifest.schema_version),
            context_tokens=int(e.context),
            default_max_soft_tokens=int(e.processor.get("max_soft_tokens", 280)),
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
            ),
            parity=summary,
        )
