"""Cameras the daemon pulls itself: each one's capture runner feeds a session driver, as an Inspect stream does.

For every ``[[cameras]]`` entry there is one :class:`~edge.station.session.SessionCore` driven by a
:class:`~edge.serve.driver.SessionDriver` (the same gate, description queue and events as a pushed Inspect
session, and its own fair share of the queue, key ``camera:<id>``), a :class:`~edge.sources.camera.CameraRunner`
reading frames on its threads and, with ``audio``, an :class:`~edge.sources.audio.AudioRunner`.

Frames cross from the reader thread to the event loop through a one-slot mailbox (:class:`Latest`): a newer
frame replaces one the loop has not taken yet, so a slow loop never builds a backlog. A camera that is down
never changes the daemon's health; GetInfo and the metrics show it.

Where the events go: :meth:`CameraSessions.camera_event` is the one place every camera event passes (after
the metrics count it and the log line). Subscribers added with :meth:`CameraSessions.subscribe` get each
``(camera_id, event)`` there, on the event loop. The event journal does not need them: the driver journals
every decision with its evidence (``edge.serve.recorder``) before the event reaches this point.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.errors import ConfigError, EdgeError, FieldError, SessionError, ShuttingDownError
from edge.serve.config import ServeConfig
from edge.serve.convert import Converter
from edge.serve.driver import SessionDriver
from edge.serve.recorder import Recorded, SessionRecorder
from edge.serve.replies import source_message
from edge.sources.audio import AudioRunner
from edge.sources.camera import CameraRunner, CameraStatus
from edge.sources.config import CameraConfig
from edge.station.actions import Ended
from edge.station.events import Accepted, Dropped, DropReason, Event, Failed, Finished, Scored, Started, Token
from edge.station.gating import GateRunner
from edge.station.inputs import AudioIn, FrameIn, SessionLimits, TriggerIn
from edge.station.session import SessionCore
from edge.station.worker import Scheduler
from edge.v1 import inspector_pb2 as pb

log = logging.getLogger("edge.cameras")
EventSink = Callable[[str, Event], None]
AUDIO_BACKLOG = 20  # chunks (10 s) waiting for the sound gate before the oldest is dropped
_KINDS = {Accepted: "accepted", Dropped: "dropped", Started: "started", Token: "token", Finished: "finished"}
_KINDS |= {Scored: "scored", Failed: "failed"}
_MODES = {"gated": pb.TRIGGER_MODE_GATED, "interval": pb.TRIGGER_MODE_INTERVAL, "external": pb.TRIGGER_MODE_EXPLICIT}


@dataclass(frozen=True)
class SourceSnapshot:
    """What GetInfo and the metrics show of one camera."""

    status: CameraStatus
    trigger: str
    events: dict[str, int]
    audio_state: str = ""  # "" without a microphone
    audio_error: str = ""
    audio_seconds: float = 0.0


class Latest:
    """A one-slot mailbox from a thread to the event loop: a newer item replaces one not taken yet."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Any], None]) -> None:
        self.loop, self.deliver = loop, deliver
        self.lock = threading.Lock()
        self.item: Any = None
        self.scheduled = False
        self.replaced = 0

    def put(self, item: Any) -> None:  # any thread
        with self.lock:
            self.replaced += self.item is not None
            self.item = item
            if self.scheduled:
                return
            self.scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop closed under a reader that is just ending
            self.loop.call_soon_threadsafe(self._take)

    def _take(self) -> None:  # the event loop
        with self.lock:
            item, self.item, self.scheduled = self.item, None, False
        if item is not None:
            self.deliver(item)


def camera_settings(camera: CameraConfig, cfg: ServeConfig, conv: Converter) -> Any:
    """The camera's session settings, checked as an Inspect config is (budget, interval, threshold)."""
    where = f"cameras[{camera.id!r}]"
    has_gate = conv.gate is not None and conv.gate.image is not None and camera.gate
    trigger = camera.trigger or ("gated" if has_gate else "")
    if not trigger:
        raise ConfigError(f'{where}.trigger: there is no image gate; set trigger = "interval" or "external"')
    if trigger == "gated" and not has_gate:
        raise ConfigError(
            f'{where}.trigger = "gated" needs the station\'s image gate (gate = DIR) and gate = true for the camera'
        )
    options = pb.GenerationOptions(max_new_tokens=camera.max_new_tokens, max_soft_tokens=camera.max_soft_tokens)
    msg = pb.InspectConfig(
        trigger_mode=_MODES[trigger],
        interval_seconds=camera.interval_seconds,
        prompt=camera.prompt,
        options=options,
        audio_before_seconds=camera.audio_before_seconds,
        audio_after_seconds=camera.audio_after_seconds,
        context=pb.PartContext(station_id=camera.station, camera_id=camera.id, line_id=camera.line),
    )
    try:
        settings = conv.session_settings(msg)
    except EdgeError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('config.')}") from None
    if not camera.gate:
        settings = dataclasses.replace(settings, image_gate=False, sound_gate=False)
    return settings, trigger


class _Camera:
    """One camera: its session, its driver, its capture runners and its counts."""

    def __init__(self, owner: CameraSessions, camera: CameraConfig, settings: Any, trigger: str) -> None:
        self.owner, self.camera, self.trigger = owner, camera, trigger
        cfg = owner.cfg
        limits = SessionLimits(cfg.frame_buffer, cfg.audio_buffer_seconds, cfg.stale_after_seconds, cfg.gate_backlog)
        self.core = SessionCore(settings, limits, time.monotonic())
        self.events: Counter[str] = Counter()
        self.ended = asyncio.Event()
        key, o = f"camera:{camera.id}", owner
        self.driver = SessionDriver(self.core, key, o.scheduler, o.metrics, o.gate, self._emit, o.recorder)
        loop = asyncio.get_running_loop()
        self.frames = Latest(loop, self._frame)
        self.runner = CameraRunner(camera, lambda rgb, t: self.frames.put((rgb, t)), log)
        self.audio: AudioRunner | None = None
        self.chunks: deque[AudioIn] = deque(maxlen=AUDIO_BACKLOG)
        self.chunk_ready = asyncio.Event()
        self.sound: asyncio.Task[None] | None = None
        if camera.audio:
            self.audio = AudioRunner(camera, self._audio_chunk, log)

    def start(self) -> None:
        self.driver.start()
        self.runner.start()
        if self.audio is not None:
            self.sound = asyncio.create_task(self._sound())
            self.audio.start()

    def _emit(self, item: Event | Recorded | Ended) -> None:
        if isinstance(item, Ended):
            self.ended.set()
            return
        if isinstance(item, Recorded):  # journaled by the driver (nobody waits for a camera's decision)
            item = item.event
        self.owner.camera_event(self.camera.id, item)
        self.events[_KINDS[type(item)]] += 1

    def _frame(self, item: tuple[np.ndarray, float]) -> None:
        rgb, t = item
        self.driver.feed(self.core.frame, FrameIn(t, rgb), time.monotonic())

    def _audio_chunk(self, samples: np.ndarray, t: float) -> None:  # the audio thread
        def put() -> None:
            self.chunks.append(AudioIn(t, samples))
            self.chunk_ready.set()

        with contextlib.suppress(RuntimeError):  # the loop closed under a reader that is just ending
            self.driver.loop.call_soon_threadsafe(put)

    async def _sound(self) -> None:
        while True:
            await self.chunk_ready.wait()
            self.chunk_ready.clear()
            while self.chunks:
                await self.driver.audio(self.chunks.popleft())

    def snapshot(self) -> SourceSnapshot:
        a = self.audio
        return SourceSnapshot(
            self.runner.status(),
            self.trigger,
            dict(self.events),
            a.state.value if a is not None else "",
            a.error if a is not None else "",
            a.seconds if a is not None else 0.0,
        )


class CameraSessions:
    """Every configured camera of the daemon."""

    def __init__(
        self,
        cfg: ServeConfig,
        conv: Converter,
        scheduler: Scheduler,
        metrics: Any,
        gate: GateRunner | None = None,
        recorder: SessionRecorder | None = None,
    ) -> None:
        self.cfg, self.conv, self.scheduler, self.metrics, self.gate = cfg, conv, scheduler, metrics, gate
        self.recorder = recorder  # every camera decision is journaled by its driver
        self.cameras: dict[str, _Camera] = {}
        self.sinks: list[EventSink] = []
        # checked now (before the server starts): a camera that cannot be set up is a config error, exit 2
        self.settings = {c.id: camera_settings(c, cfg, conv) for c in cfg.cameras}

    def subscribe(self, sink: EventSink) -> None:
        """``sink(camera_id, event)`` for every camera event, on the event loop (the journal's hook)."""
        self.sinks.append(sink)

    def start(self) -> None:
        """Start every camera (on the event loop); none of them can fail the daemon from here on."""
        for camera in self.cfg.cameras:
            settings, trigger = self.settings[camera.id]
            cam = _Camera(self, camera, settings, trigger)
            self.cameras[camera.id] = cam
            cam.start()
            log.info("camera %s: %s, trigger %s, fps cap %g", camera.id, camera.redacted_url, trigger, camera.fps)
        if hasattr(self.metrics, "cameras"):
            self.metrics.cameras.attach(self.snapshots)

    def camera_event(self, camera_id: str, event: Event) -> None:
        """Every event of every camera passes here: logged, then handed to each subscriber (the journal)."""
        if isinstance(event, Finished):
            text = event.outcome.result.text.strip().replace("\n", " ")
            gate = f" (gate score {event.gate.score:.2f})" if event.gate is not None else ""
            log.info("camera %s: description %d%s: %s", camera_id, event.description_id, gate, text[:300])
        elif isinstance(event, Failed):
            log.warning("camera %s: %s", camera_id, event.error)
        elif isinstance(event, Dropped) and event.reason not in (DropReason.SUPERSEDED, DropReason.SHUTDOWN):
            log.info(
                "camera %s: frame %d dropped (%s): %s", camera_id, event.sequence, event.reason.value, event.detail
            )
        for sink in self.sinks:
            try:
                sink(camera_id, event)
            except Exception:  # a subscriber's bug must not stop the camera
                log.exception("camera %s: an event subscriber failed", camera_id)

    def snapshots(self) -> list[SourceSnapshot]:
        return [cam.snapshot() for cam in list(self.cameras.values())]

    def trigger(self, camera_id: str, capture_time: float | None, part_id: str, reason: str) -> tuple[int, float]:
        """Describe the frame of ``camera_id`` nearest ``capture_time`` (None: the latest); its sequence and time."""
        cam = self.cameras.get(camera_id)
        if cam is None:
            known = ", ".join(self.cameras) or "none are configured"
            raise FieldError("camera_id", f"no camera {camera_id!r} (cameras: {known})")
        if cam.trigger == "gated":
            raise SessionError(
                f'camera {camera_id} has trigger = "gated": the gate judges every frame; set trigger = '
                '"external" to describe on the line\'s trigger'
            )
        with cam.driver.lock:
            if cam.core.state != "open":
                raise ShuttingDownError("the daemon is shutting down; the trigger was not taken")
            frame = cam.core.frames.nearest(capture_time)
            if frame is None:
                state = cam.runner.status().state
                raise SessionError(f"camera {camera_id} has no frame to describe (it is {state})")
            context = dataclasses.replace(cam.core.settings.context, part_id=part_id) if part_id else None
            cam.driver.feed(cam.core.trigger, TriggerIn(capture_time, context), time.monotonic())
        log.info(
            "camera %s: trigger%s%s → frame %d",
            camera_id,
            f" part {part_id}" if part_id else "",
            f" ({reason})" if reason else "",
            frame.sequence,
        )
        return frame.sequence, frame.capture_time

    def shutdown(self, force: bool = False) -> None:
        """Drain: stop reading (no new frames); buffered frames are dropped; with ``force`` descriptions end too."""
        for cam in self.cameras.values():
            cam.runner.stopping.set()
            if cam.audio is not None:
                cam.audio.stopping.set()
            cam.driver.feed(cam.core.shutdown, force)

    async def wait_closed(self, timeout: float) -> bool:
        """Wait for every camera session to end, then for the capture threads (each bounded by ``timeout``)."""
        deadline = time.monotonic() + max(timeout, 0.0)
        ended = True
        for cam in self.cameras.values():
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                    await cam.ended.wait()
            except TimeoutError:
                ended = False
            if cam.sound is not None:
                cam.sound.cancel()
            cam.driver.stop()

        def stop_threads() -> None:
            for cam in self.cameras.values():
                cam.runner.stop(max(deadline - time.monotonic(), 0.0))
                if cam.audio is not None:
                    cam.audio.stop(max(deadline - time.monotonic(), 0.0))

        await asyncio.to_thread(stop_threads)
        return ended

    def info(self) -> list[pb.SourceStatus]:
        return [source_message(s) for s in self.snapshots()]
