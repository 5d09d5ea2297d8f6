"""One engine, many callers: a bounded, fair description queue served by a single worker thread.

Every description request becomes a ``Job`` under a fairness key (a station, or an Inspect
session). The worker takes keys round-robin, so one busy camera cannot starve the others; the
total number of waiting jobs is bounded by ``depth``. onnxruntime runs only on the worker thread,
never on the event loop. Each job reports back through its ``emit`` callback (called from the
worker thread; the gRPC layer hops it onto the event loop) and stops between tokens once its
``cancelled`` event is set.

>>> sched = Scheduler(engine, metrics, depth=8); sched.start()
>>> sched.submit(Job(key="station-7", request=req, emit=callback))
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge.errors import EdgeError, OverloadedError, ShuttingDownError

log = logging.getLogger(__name__)
FINAL = ("done", "error", "skipped", "cancelled")  # every job emits exactly one of these, last


class EngineLike(Protocol):
    """What the scheduler needs from an engine (``edge.runtime.engine.Engine`` is one)."""

    def prepare(
        self,
        prompt: str,
        images: Sequence[Any] = (),
        audio: Sequence[Any] = (),
        system: str | None = None,
        max_soft_tokens: int | None = None,
    ) -> Any: ...

    def stream(
        self,
        prompt: Any,
        images: Sequence[Any] = (),
        audio: Sequence[Any] = (),
        params: Any = None,
        system: str | None = None,
    ) -> Iterator[Any]: ...


@dataclass
class Request:
    """A description request in domain terms (no protobuf)."""

    prompt: str
    images: list[Any] = field(default_factory=list)
    audio: list[Any] = field(default_factory=list)
    system: str | None = None
    params: Any = None  # GenerationParams
    max_soft_tokens: int | None = None


class Skip(Exception):
    """Raised by a job's ``resolve`` to drop it without describing (e.g. its frame went stale)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason, self.detail = reason, detail


@dataclass(eq=False)  # identity semantics: sessions keep jobs in sets
class Job:
    key: str
    request: Request | None
    emit: Callable[[str, Any], None]  # (kind, payload): started/token/done/error/skipped/cancelled
    resolve: Callable[[], Request] | None = None  # binds inputs when the job starts (Inspect)
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.monotonic)
    started: bool = False


@dataclass
class Outcome:
    """Timings the gRPC layer reports, on top of the engine's own."""

    result: Any  # Generation
    queue_s: float
    preprocess_s: float
    total_s: float


class Scheduler:
    def __init__(self, engine: EngineLike, metrics: Any | None, depth: int) -> None:
        self.engine = engine
        self.metrics = metrics
        self.depth = depth
        self._queues: OrderedDict[str, deque[Job]] = OrderedDict()
        self._waiting = 0
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="edge-engine", daemon=True)
        if metrics is not None:
            metrics.set_queue_capacity(depth)

    def start(self) -> None:
        self._thread.start()

    # -- submission (event loop side) ---------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closed:
                raise ShuttingDownError("the daemon is shutting down and takes no new descriptions; retry on another")
            if self._waiting >= self.depth:
                raise OverloadedError(
                    f"the description queue is full ({self.depth} waiting); retry later, send fewer triggers, "
                    "or raise queue_depth"
                )
            self._queues.setdefault(job.key, deque()).append(job)
            self._waiting += 1
            self._gauge()
            self._cond.notify()

    def pending(self, key: str) -> int:
        with self._cond:
            return len(self._queues.get(key, ()))

    def close(self) -> list[Job]:
        """Take no new jobs; return the jobs that were still waiting (they will not run)."""
        with self._cond:
            self._closed = True
            dropped = [job for q in self._queues.values() for job in q]
            self._queues.clear()
            self._waiting = 0
            self._gauge()
            self._cond.notify_all()
        for job in dropped:
            job.emit("skipped", Skip("shutdown", "the daemon is shutting down"))
        return dropped

    def drain(self, timeout: float) -> bool:
        """Wait for the running job to finish; True if the worker went idle in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy or self._waiting:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    @property
    def busy(self) -> bool:
        return self._busy

    # -- worker ---------------------------------------------------------------------------------
    def _next(self) -> Job | None:
        with self._cond:
            while not self._waiting and not self._closed:
                self._cond.wait()
            if not self._waiting:
                return None
            key, q = next(iter(self._queues.items()))
            job = q.popleft()
            self._queues.pop(key)
            if q:
                self._queues[key] = q  # to the back of the line: round-robin across keys
            self._waiting -= 1
            self._busy = True
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
                job.emit("error", EdgeError("internal error while describing; see the daemon log"))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _execute(self, job: Job) -> None:
        start = time.monotonic()
        queue_s = start - job.submitted
        if job.cancelled.is_set():
            self._cancelled(queue_s, 0.0, start)
            job.emit("cancelled", None)
            return
        try:
            req = job.resolve() if job.resolve is not None else job.request
        except Skip as skip:
            job.emit("skipped", skip)
            return
        assert req is not None
        job.started = True
        job.emit("started", None)
        try:
            prepared = self.engine.prepare(
                req.prompt, req.images, req.audio, system=req.system, max_soft_tokens=req.max_soft_tokens
            )
            preprocess_s = time.monotonic() - start
            last: float | None = None
            for chunk in self.engine.stream(prepared, params=req.params):
                if job.cancelled.is_set():
                    self._cancelled(queue_s, preprocess_s, start)
                    job.emit("cancelled", None)
                    return
                if chunk.done:
                    outcome = Outcome(chunk.result, queue_s, preprocess_s, time.monotonic() - start)
                    self._observe(outcome)
                    job.emit("done", outcome)
                    return
                now = time.monotonic()
                if self.metrics is not None and last is not None:  # gaps between tokens, not the prefill
                    self.metrics.observe_inter_token(now - last)
                last = now
                job.emit("token", chunk)
        except EdgeError as exc:
            if self.metrics is not None:
                self.metrics.observe_description(
                    0.0, queue_s, 0.0, 0.0, time.monotonic() - start, 0, 0, outcome="error"
                )
            job.emit("error", exc)

    def _cancelled(self, queue_s: float, preprocess_s: float, start: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_description(
                preprocess_s, queue_s, 0.0, 0.0, time.monotonic() - start, 0, 0, outcome="cancelled"
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
            self.metrics.queue_depth.set(self._waiting)
