"""One engine, many sources: the description queue served by a single engine thread.

Every description becomes a :class:`Job` under a source key (a station, an Inspect session, a camera).
Admission and service order come from :class:`~edge.station.queue.FairQueue` (a fair share per source,
round-robin service). onnxruntime runs only on this thread, never on an event loop. A job reports back
through ``emit`` with typed :class:`JobEvent`s, called on the engine thread (adapters hop them to their
own loop), and always ends with exactly one of :data:`FINAL`. It stops between tokens once ``cancelled``
is set.

>>> sched = Scheduler(engine, metrics, depth=8); sched.start()
>>> sched.submit(Job(key="station:7", emit=on_event, request=Request(prompt="Describe.")))
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.errors import EdgeError, EngineError, ShuttingDownError
from edge.station.engine import DescriptionEngine, Request
from edge.station.events import DropReason
from edge.station.queue import FairQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """A finished generation and the timings the station reports on top of the engine's own."""

    result: Any  # edge.runtime.engine.Generation
    queue_s: float
    preprocess_s: float
    total_s: float
    inputs_sha256: str = ""
    schema_sha256: str = ""


@dataclass(frozen=True)
class JobStarted:
    pass


@dataclass(frozen=True)
class JobToken:
    token_id: int
    text: str


@dataclass(frozen=True)
class JobDone:
    outcome: Outcome


@dataclass(frozen=True)
class JobFailed:
    error: EdgeError


@dataclass(frozen=True)
class JobSkipped:
    reason: DropReason
    detail: str = ""


@dataclass(frozen=True)
class JobCancelled:
    started: bool


JobEvent = JobStarted | JobToken | JobDone | JobFailed | JobSkipped | JobCancelled
FINAL = (JobDone, JobFailed, JobSkipped, JobCancelled)


class Skip(Exception):
    """Raised by a job's ``resolve`` to end it without describing (e.g. its frame went stale)."""

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        super().__init__(detail or reason.value)
        self.reason, self.detail = reason, detail


@dataclass(eq=False)  # identity semantics: sessions keep jobs in sets
class Job:
    key: str
    emit: Callable[[JobEvent], None]
    request: Request | None = None
    resolve: Callable[[], Request] | None = None  # binds the inputs when the job's turn comes (sessions)
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted: float = 0.0


class Scheduler:
    def __init__(
        self, engine: DescriptionEngine, metrics: Any | None, depth: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.engine, self.metrics, self.depth, self.clock = engine, metrics, depth, clock
        self._queue: FairQueue[Job] = FairQueue(depth)
        self._cond = threading.Condition()
        self._closed = False
        self._running: Job | None = None
        self._thread = threading.Thread(target=self._run, name="edge-engine", daemon=True)
        if metrics is not None:
            metrics.set_queue_capacity(depth)

    def start(self) -> None:
        self._thread.start()

    # -- sources (any thread) ---------------------------------------------------------------------
    def register(self, key: str) -> None:
        """A long-lived source keeps its share of the queue while open (see FairQueue)."""
        with self._cond:
            self._queue.register(key)

    def unregister(self, key: str) -> None:
        with self._cond:
            self._queue.unregister(key)

    def submit(self, job: Job) -> None:
        """Queue ``job``; OverloadedError if the queue or the source's share is full, ShuttingDownError."""
        with self._cond:
            if self._closed:
                raise ShuttingDownError("the daemon is shutting down and takes no new descriptions; retry on another")
            job.submitted = self.clock()
            self._queue.push(job.key, job)
            self._gauge()
            self._cond.notify()

    def pending(self, key: str) -> int:
        with self._cond:
            return self._queue.waiting(key)

    # -- shutdown ---------------------------------------------------------------------------------
    def close(self) -> list[Job]:
        """Take no new jobs; the waiting ones end as skipped (shutdown) and are returned."""
        with self._cond:
            self._closed = True
            dropped = self._queue.clear()
            self._gauge()
            self._cond.notify_all()
        for job in dropped:
            job.emit(JobSkipped(DropReason.SHUTDOWN, "the daemon is shutting down"))
        return dropped

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the running job and the queue to finish; True if idle in time."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            while self._running is not None or len(self._queue):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def cancel_running(self) -> bool:
        """Stop the running description between tokens; True if there was one."""
        with self._cond:
            job = self._running
        if job is None:
            return False
        job.cancelled.set()
        return True

    @property
    def busy(self) -> bool:
        return self._running is not None

    # -- the engine thread --------------------------------------------------------------------------
    def _next(self) -> Job | None:
        with self._cond:
            while not len(self._queue) and not self._closed:
                self._cond.wait()
            job = self._queue.pop()
            self._running = job
            self._gauge()
            return job

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._execute(job)
            except Exception:  # a bug must not kill the only engine thread
                log.exception("unexpected failure while describing for %s", job.key)
                job.emit(JobFailed(EngineError("internal error while describing; see the daemon log")))
            finally:
                with self._cond:
                    self._running = None
                    self._cond.notify_all()

    def _execute(self, job: Job) -> None:
        start = self.clock()
        queue_s = start - job.submitted
        if job.cancelled.is_set():
            self._observe_failure(queue_s, 0.0, start, "cancelled")
            job.emit(JobCancelled(started=False))
            return
        try:
            req = job.resolve() if job.resolve is not None else job.request
        except Skip as skip:
            job.emit(JobSkipped(skip.reason, skip.detail))
            return
        if req is None:
            raise EngineError(f"job for {job.key} has neither a request nor a resolver")
        job.emit(JobStarted())
        preprocess_s = 0.0
        try:
            prepared = self.engine.prepare(
                req.prompt, req.decoded_images(), req.audio, system=req.system, max_soft_tokens=req.max_soft_tokens
            )
            preprocess_s = self.clock() - start
            last: float | None = None
            for chunk in self.engine.stream(prepared, params=req.params):
                if job.cancelled.is_set():
                    self._observe_failure(queue_s, preprocess_s, start, "cancelled")
                    job.emit(JobCancelled(started=True))
                    return
                if chunk.done:
                    schema = getattr(req.params, "schema", None)
                    outcome = Outcome(
                        chunk.result,
                        queue_s,
                        preprocess_s,
                        self.clock() - start,
                        req.inputs_sha256,
                        schema.sha256 if schema is not None else "",
                    )
                    self._observe(outcome)
                    job.emit(JobDone(outcome))
                    return
                now = self.clock()
                if self.metrics is not None and last is not None:  # gaps between tokens, not the prefill
                    self.metrics.observe_inter_token(now - last)
                last = now
                job.emit(JobToken(int(chunk.token_id), chunk.text))
        except EdgeError as exc:
            self._observe_failure(queue_s, preprocess_s, start, "error")
            job.emit(JobFailed(exc))

    def _observe_failure(self, queue_s: float, preprocess_s: float, start: float, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_description(
                preprocess_s, queue_s, 0.0, 0.0, self.clock() - start, 0, 0, outcome=outcome
            )

    def _observe(self, o: Outcome) -> None:
        if self.metrics is None:
            return
        t = o.result.timings
        self.metrics.observe_description(
            o.preprocess_s,
            o.queue_s,
            t.prefill_s,
            t.ttft_s + o.preprocess_s,
            o.total_s,
            t.prompt_tokens,
            t.new_tokens,
            outcome="ok",
        )

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(len(self._queue))
