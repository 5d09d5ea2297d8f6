"""``Inspect`` sessions: frames, audio and triggers in; accepted / dropped / description events out.

Per session: frames are buffered (latest wins, oldest superseded), a trigger describes the frame
nearest its time with the audio window around it, and in interval mode a timer describes the
latest frame every ``interval_seconds`` while no description of this session is waiting. Every
accepted frame ends as exactly one of: described, or dropped (superseded, stale, queue_full,
shutdown), so the counts add up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncGenerator
from typing import Any

import grpc

from edge.errors import EdgeError, InputError, OverloadedError, SessionError, ShuttingDownError
from edge.serve.convert import FieldError, describe_response, status_for
from edge.serve.scheduler import FINAL, Job, Request, Skip
from edge.serve.session import AudioSpan, BufferedFrame, Session, age
from edge.v1 import inspector_pb2 as pb

_REASONS = {
    "superseded": pb.DROP_REASON_SUPERSEDED,
    "stale": pb.DROP_REASON_STALE,
    "queue_full": pb.DROP_REASON_QUEUE_FULL,
    "invalid": pb.DROP_REASON_INVALID,
    "no_frame": pb.DROP_REASON_NO_FRAME,
    "shutdown": pb.DROP_REASON_SHUTDOWN,
}


class InspectSessions:
    def __init__(self, service: Any) -> None:
        self.svc = service
        self.active = 0
        self.ids = itertools.count(1)

    async def run(self, requests: Any, context: grpc.aio.ServicerContext) -> AsyncGenerator[pb.InspectResponse, None]:
        svc = self.svc
        code = "OK"
        self.active += 1
        svc.metrics.active_streams.inc()
        run: _Run | None = None
        try:
            if self.active > svc.cfg.max_streams:
                raise OverloadedError(f"{svc.cfg.max_streams} Inspect streams are already open (max_streams)")
            if svc.draining:
                raise ShuttingDownError("the daemon is shutting down; open the stream on another")
            it = requests.__aiter__()
            try:
                first = await asyncio.wait_for(it.__anext__(), svc.cfg.first_message_timeout_seconds)
            except TimeoutError:
                raise SessionError(
                    f"no first message within {svc.cfg.first_message_timeout_seconds:g} s: an Inspect "
                    "stream must start with config (InspectConfig)"
                ) from None
            except StopAsyncIteration:
                return
            if first.WhichOneof("message") != "config":
                raise SessionError(
                    f"config: the first message must be config (InspectConfig), got "
                    f"{first.WhichOneof('message') or 'an empty message'}"
                )
            run = _Run(self, first.config, context)
            async for event in run.serve(it):
                yield event
        except EdgeError as exc:
            code = status_for(exc).name
            await svc.fail(context, exc)
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception:
            code = "INTERNAL"
            await svc.internal(context)
        finally:
            if run is not None:
                run.abandon()
            self.active -= 1
            svc.metrics.active_streams.dec()
            svc.metrics.request_done("Inspect", code)


class _Run:
    """One open session."""

    def __init__(self, owner: InspectSessions, cfg: pb.InspectConfig, context: Any) -> None:
        svc = owner.svc
        self.svc, self.owner, self.cfg = svc, owner, cfg
        self.key = f"inspect:{next(owner.ids)}"
        if cfg.trigger_mode not in (pb.TRIGGER_MODE_EXPLICIT, pb.TRIGGER_MODE_INTERVAL):
            raise FieldError(
                "config.trigger_mode", f"unknown trigger mode {cfg.trigger_mode}; use EXPLICIT or INTERVAL"
            )
        if cfg.trigger_mode == pb.TRIGGER_MODE_INTERVAL and cfg.interval_seconds < svc.cfg.min_interval_seconds:
            raise FieldError(
                "config.interval_seconds",
                f"{cfg.interval_seconds:g} s is below the server minimum of {svc.cfg.min_interval_seconds:g} s",
            )
        for name in ("audio_before_seconds", "audio_after_seconds"):
            v = getattr(cfg, name)
            if not 0 <= v <= svc.cfg.max_audio_window_seconds:
                raise FieldError(f"config.{name}", f"must be in [0, {svc.cfg.max_audio_window_seconds:g}] s, got {v:g}")
        self.params, self.soft = svc.conv.params(cfg.options, "config.options")
        self.prompt = cfg.prompt.strip() or svc.cfg.default_prompt
        buffer = 1 if cfg.trigger_mode == pb.TRIGGER_MODE_INTERVAL else svc.cfg.frame_buffer
        self.session = Session(buffer, svc.cfg.audio_buffer_seconds)
        self.out: asyncio.Queue[pb.InspectResponse | None] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.jobs: set[Job] = set()
        self.described = itertools.count(1)
        self.idle = asyncio.Event()
        self.idle.set()
        self.closing = False  # the client half-closed: no new interval descriptions

    async def serve(self, it: Any) -> AsyncGenerator[pb.InspectResponse, None]:
        reader = asyncio.create_task(self._read(it))
        ticker = asyncio.create_task(self._tick()) if self.cfg.trigger_mode == pb.TRIGGER_MODE_INTERVAL else None
        try:
            while True:
                event = await self.out.get()
                if event is None:
                    return
                yield event
        finally:
            for task in (reader, ticker):
                if task is not None:
                    task.cancel()

    def abandon(self) -> None:
        """The client is gone or the stream ended: stop this session's generations."""
        for job in list(self.jobs):
            job.cancelled.set()
        for _ in self.session.take_all():
            self.svc.metrics.frame_dropped("superseded")

    # -- input --------------------------------------------------------------------------------------
    async def _read(self, it: Any) -> None:
        try:
            async for msg in it:
                kind = msg.WhichOneof("message")
                try:
                    if kind == "frame":
                        self._frame(msg.frame)
                    elif kind == "audio":
                        await self._audio(msg.audio)
                    elif kind == "trigger":
                        self._trigger(msg.trigger.capture_time, msg.trigger.context)
                    elif kind == "config":
                        raise SessionError("config: config may only be the first message of a stream")
                    else:
                        raise FieldError("message", "empty message: set config, frame, audio or trigger")
                except EdgeError as exc:
                    self._error(exc)
            # half-closed by the client: finish what was asked, then end the stream
            await self._finish()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client vanished mid-stream or sent garbage the transport rejected
            self.abandon()
            self.out.put_nowait(None)
            if not isinstance(exc, grpc.aio.AioRpcError | asyncio.InvalidStateError):
                raise

    def _frame(self, f: pb.Frame) -> None:
        svc = self.svc
        seq = self.session.next_sequence()
        try:
            image = svc.conv.image(f.image, "frame.image", decode=False)
        except InputError as exc:
            svc.metrics.frame_dropped("invalid")
            self.out.put_nowait(
                pb.InspectResponse(
                    dropped=pb.Dropped(
                        sequence=seq, capture_time=f.capture_time, reason=pb.DROP_REASON_INVALID, detail=str(exc)
                    )
                )
            )
            return
        svc.metrics.frame_received()
        self.out.put_nowait(pb.InspectResponse(accepted=pb.Accepted(sequence=seq, capture_time=f.capture_time)))
        for old in self.session.add_frame(BufferedFrame(seq, f.capture_time, time.monotonic(), image)):
            self._dropped(old, "superseded")

    async def _audio(self, a: pb.AudioChunk) -> None:
        seq = self.session.next_sequence()
        samples = await asyncio.to_thread(self.svc.conv.audio, a.audio, "audio.audio")
        self.session.add_audio(AudioSpan(a.capture_time, samples))
        self.svc.metrics.audio_received(len(samples) / 16_000)
        self.out.put_nowait(pb.InspectResponse(accepted=pb.Accepted(sequence=seq, capture_time=a.capture_time)))

    def _trigger(self, when: float | None, context: pb.PartContext | None = None) -> None:
        frame = self.session.take_nearest(when)
        if frame is None:
            self.svc.metrics.frame_dropped("no_frame")
            self.out.put_nowait(
                pb.InspectResponse(
                    dropped=pb.Dropped(
                        capture_time=when or 0.0,
                        reason=pb.DROP_REASON_NO_FRAME,
                        detail="trigger with no frame buffered",
                    )
                )
            )
            return
        did = next(self.described)
        ctx = context if context is not None and context.ByteSize() else self.cfg.context

        def emit(kind: str, payload: Any) -> None:
            self.loop.call_soon_threadsafe(self._event, job, did, frame, when, ctx, kind, payload)

        job = Job(key=self.key, request=None, emit=emit, resolve=lambda: self._resolve(frame))
        try:
            self.svc.scheduler.submit(job)
        except (OverloadedError, ShuttingDownError) as exc:
            self._dropped(frame, "queue_full" if isinstance(exc, OverloadedError) else "shutdown", str(exc))
            return
        self.jobs.add(job)
        self.idle.clear()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.interval_seconds)
            if self.closing:
                return
            if not self.svc.scheduler.pending(self.key) and self.session.frames:
                self._trigger(None)

    # -- engine side ---------------------------------------------------------------------------------
    def _resolve(self, frame: BufferedFrame) -> Request:
        """Runs on the worker thread when the job's turn comes."""
        if age(frame) > self.svc.cfg.stale_after_seconds:
            raise Skip("stale", f"frame {frame.sequence} waited {age(frame):.2f} s, over stale_after_seconds")
        image = self.svc.conv.image(frame.image, "frame.image")  # decoded only now that it is described
        t = frame.capture_time
        audio = self.session.audio_window(t - self.cfg.audio_before_seconds, t + self.cfg.audio_after_seconds)
        return Request(
            prompt=self.prompt,
            images=[image],
            audio=[audio] if audio is not None else [],
            system=self.cfg.system or None,
            params=self.params,
            max_soft_tokens=self.soft,
        )

    def _event(
        self, job: Job, did: int, frame: BufferedFrame, when: float | None, ctx: Any, kind: str, payload: Any
    ) -> None:
        """Runs on the event loop for each job event; every job ends with exactly one final event."""
        if kind == "started":
            self.out.put_nowait(
                pb.InspectResponse(
                    started=pb.DescriptionStarted(
                        description_id=did,
                        frame_sequence=frame.sequence,
                        frame_capture_time=frame.capture_time,
                        trigger_time=when if when is not None else frame.capture_time,
                    )
                )
            )
        elif kind == "token" and self.cfg.stream_tokens:
            self.out.put_nowait(
                pb.InspectResponse(
                    token=pb.DescriptionToken(
                        description_id=did, token=pb.TokenChunk(token_id=payload.token_id, text=payload.text)
                    )
                )
            )
        elif kind == "done":
            result = describe_response(
                payload.result, payload.queue_s, payload.preprocess_s, payload.total_s, self.svc.model, ctx
            )
            self.out.put_nowait(pb.InspectResponse(finished=pb.DescriptionFinished(description_id=did, result=result)))
        elif kind == "skipped":
            self._dropped(frame, payload.reason, payload.detail)
        elif kind == "error":
            self._dropped(frame, "invalid", str(payload))
            self._error(payload)
        elif kind == "cancelled":
            self.svc.metrics.frame_dropped("shutdown")
        if kind in FINAL:
            self.jobs.discard(job)
            if not self.jobs:
                self.idle.set()

    def _dropped(self, frame: BufferedFrame, reason: str, detail: str = "") -> None:
        self.svc.metrics.frame_dropped(reason)
        self.out.put_nowait(
            pb.InspectResponse(
                dropped=pb.Dropped(
                    sequence=frame.sequence, capture_time=frame.capture_time, reason=_REASONS[reason], detail=detail
                )
            )
        )

    def _error(self, exc: EdgeError) -> None:
        field = exc.field if isinstance(exc, FieldError) else ""
        self.out.put_nowait(
            pb.InspectResponse(error=pb.Error(code=status_for(exc).value[0], message=str(exc), field=field))
        )

    async def _finish(self) -> None:
        self.closing = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.idle.wait()
        for frame in self.session.take_all():
            self._dropped(frame, "superseded", "the stream ended before this frame was described")
        self.out.put_nowait(None)
