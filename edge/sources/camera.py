"""One camera's capture loop: a supervisor thread runs the :class:`~edge.sources.link.CameraLink` state machine,
and each connection gets a reader thread that opens the source, reads every frame and hands on the latest.

The reader reads at the source's own rate (a camera's buffer must be drained, or its frames grow old); the
link's fps cap decides which frames are converted and handed to ``on_frame`` (on the reader's thread: the
consumer keeps only the newest, see ``edge.serve.cameras``). A file plays at its own frame rate and loops.
A reader blocked in a read is abandoned when the link says it stalled: FFmpeg's read timeout makes that read
return soon after, and the reader then exits on its own. If one never returns (a driver hang), at most
``MAX_ABANDONED`` such readers are kept before the camera stays failed instead of starting more threads.

>>> runner = CameraRunner(camera, on_frame=lambda rgb, t: ..., log=logging.getLogger("edge.cameras"))
>>> runner.start(); runner.status()   # CameraStatus(state="connecting", ...)
>>> runner.stop()
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge.errors import SourceError
from edge.sources.capture import StreamInfo, VideoSource, open_source
from edge.sources.config import CameraConfig
from edge.sources.link import Abandon, CameraLink, LinkPolicy, LinkState, Open, Problem
from edge.sources.url import scrub

MAX_ABANDONED = 2
RATE_WINDOW = 5.0  # seconds of frame arrivals behind the fps shown in GetInfo and the metrics

FrameCallback = Callable[[np.ndarray, float], None]  # RGB frame, capture time (Unix seconds)


@dataclass(frozen=True)
class CameraStatus:
    """A snapshot for GetInfo and the metrics."""

    id: str
    url: str  # redacted
    state: str  # a LinkState value
    fps: float  # frames/s read from the source over the last few seconds
    frame_age: float | None  # seconds since the last frame (None: no frame yet)
    reconnects: int
    frames: int  # frames read from the source
    decode_errors: int
    error: str  # why the last connection ended ("" while streaming)
    info: StreamInfo | None


def link_policy(camera: CameraConfig) -> LinkPolicy:
    return LinkPolicy(
        stall_seconds=camera.stall_seconds,
        fps=camera.fps,
        open_timeout_seconds=camera.open_timeout_seconds,
        initial=camera.backoff_initial_seconds,
        maximum=camera.backoff_max_seconds,
    )


class CameraRunner:
    def __init__(self, camera: CameraConfig, on_frame: FrameCallback, log: logging.Logger) -> None:
        self.camera, self.on_frame, self.log = camera, on_frame, log
        self.link = CameraLink(link_policy(camera), random.Random())
        self.lock = threading.Lock()  # the link and the counters: the supervisor and readers share them
        self.stopping = threading.Event()
        self.frames = self.decode_errors = 0
        self.arrivals: deque[float] = deque()  # monotonic times of recent frames, for the rate
        self.info: StreamInfo | None = None
        self.readers: dict[int, threading.Thread] = {}
        self.supervisor = threading.Thread(target=self._supervise, name=f"camera-{camera.id}", daemon=True)

    def start(self) -> None:
        self.supervisor.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop reading; wait up to ``timeout`` for the threads. False if a reader is still blocked in a read
        (a daemon thread: it ends at its open or read timeout, or with the process)."""
        self.stopping.set()
        with self.lock:
            self.link.stop()
        deadline = time.monotonic() + timeout
        for t in [self.supervisor, *self.readers.values()]:
            if t.is_alive():
                t.join(max(deadline - time.monotonic(), 0.0))
        return not any(t.is_alive() for t in [self.supervisor, *self.readers.values()])

    def threads(self) -> list[threading.Thread]:
        """The supervisor and every reader still alive (abandoned ones included)."""
        return [t for t in [self.supervisor, *self.readers.values()] if t.is_alive()]

    def status(self) -> CameraStatus:
        now = time.monotonic()
        with self.lock:
            recent = [t for t in self.arrivals if now - t <= RATE_WINDOW]
            fps = len(recent) / RATE_WINDOW if recent else 0.0
            problem = self.link.problem
            return CameraStatus(
                self.camera.id,
                self.camera.redacted_url,
                self.link.state.value,
                fps,
                self.link.frame_age(now),
                self.link.reconnects,
                self.frames,
                self.decode_errors,
                problem.message if problem is not None else "",
                self.info,
            )

    # -- the supervisor ---------------------------------------------------------------------------------
    def _supervise(self) -> None:
        while not self.stopping.is_set():
            now = time.monotonic()
            with self.lock:
                actions = self.link.tick(now)
                wait = self.link.next_check(now)
            for action in actions:
                if isinstance(action, Open):
                    self._start_reader(action.attempt)
                elif isinstance(action, Abandon):
                    self.log.warning("camera %s: %s; reconnecting", self.camera.id, action.problem.message)
            self.stopping.wait(min(max(wait, 0.01), 0.5))

    def _start_reader(self, attempt: int) -> None:
        self.readers = {a: t for a, t in self.readers.items() if t.is_alive()}
        if len(self.readers) > MAX_ABANDONED:  # reads that never returned: starting more threads would leak them
            problem = Problem(
                f"{len(self.readers)} reads have not returned after their timeout; the driver or decoder hangs: "
                "restart the daemon (or re-plug the camera)",
                permanent=True,
            )
            with self.lock:
                self.link.failed(time.monotonic(), attempt, problem)
            self.log.error("camera %s: %s", self.camera.id, problem.message)
            return
        t = threading.Thread(target=self._read, args=(attempt,), name=f"camera-{self.camera.id}-{attempt}", daemon=True)
        self.readers[attempt] = t
        t.start()

    # -- a reader ---------------------------------------------------------------------------------------
    def _current(self, attempt: int) -> bool:
        return not self.stopping.is_set() and self.link.attempt == attempt and self.link.state is not LinkState.STOPPED

    def _read(self, attempt: int) -> None:
        try:
            source = open_source(self.camera)
        except SourceError as exc:
            self._failed(attempt, Problem(scrub(str(exc), self.camera.url), exc.permanent), opening=True)
            return
        try:
            with self.lock:
                self.info = source.info
                self.link.opened(time.monotonic(), attempt)
            self.log.info(
                "camera %s: connected to %s (%dx%d %s, %.3g fps declared)%s",
                self.camera.id,
                self.camera.redacted_url,
                source.info.width,
                source.info.height,
                source.info.codec or "?",
                source.info.fps,
                f", reconnect {self.link.reconnects}" if self.link.reconnects else "",
            )
            self._frames(source, attempt)
        except SourceError as exc:
            self._failed(attempt, Problem(scrub(str(exc), self.camera.url), exc.permanent))
        finally:
            source.release()

    def _frames(self, source: VideoSource, attempt: int) -> None:
        pace = self.camera.kind == "file"  # a file plays in real time at its own rate, then loops
        period = 1.0 / (source.info.fps if source.info.fps > 0 else 25.0)
        next_at, looped = time.monotonic(), False
        while True:
            if pace:
                if self.stopping.wait(max(next_at - time.monotonic(), 0.0)):
                    return
                next_at = max(next_at + period, time.monotonic() - period)
            ok = source.grab()
            now = time.monotonic()
            with self.lock:
                if not self._current(attempt):
                    return
                if not ok:
                    if pace and not looped and source.rewind():  # the end of the file: play it again
                        looped = True
                        continue
                    what = "the file has no frames it can read" if pace else "the stream ended or a read timed out"
                    self.link.failed(now, attempt, Problem(what, permanent=pace and self.frames == 0))
                    self.log.warning("camera %s: %s; reconnecting", self.camera.id, what)
                    return
                looped = False
                self.frames += 1
                while self.arrivals and now - self.arrivals[0] > RATE_WINDOW:
                    self.arrivals.popleft()
                self.arrivals.append(now)
                deliver = self.link.frame(now, attempt)
            if deliver:
                rgb = source.retrieve()
                if rgb is None:
                    with self.lock:
                        self.decode_errors += 1
                    continue
                self.on_frame(rgb, time.time())

    def _failed(self, attempt: int, problem: Problem, opening: bool = False) -> None:
        with self.lock:
            if not self._current(attempt):
                return
            self.link.failed(time.monotonic(), attempt, problem)
            first = self.link.failures == 1
            wait = "" if problem.permanent else f"; retrying with backoff (failure {self.link.failures})"
        level = logging.ERROR if problem.permanent else logging.WARNING
        if first or problem.permanent or self.link.failures % 10 == 0:  # a long outage is not a log flood
            verb = "cannot open" if opening else "lost"
            self.log.log(
                level, "camera %s: %s %s: %s%s", self.camera.id, verb, self.camera.redacted_url, problem.message, wait
            )
