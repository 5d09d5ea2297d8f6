"""The scheduler with the real tiny engine, no gRPC: round-robin fairness, bounds, cancellation, close."""

from __future__ import annotations

import threading

import pytest

from edge.errors import OverloadedError, ShuttingDownError
from edge.runtime.engine import GenerationParams
from edge.serve.scheduler import FINAL, Job, Request, Scheduler


class Recorder:
    def __init__(self) -> None:
        self.order: list[str] = []
        self.final: dict[str, str] = {}
        self.done = threading.Event()
        self.lock = threading.Lock()

    def job(self, key: str, name: str, tokens: int = 4) -> Job:
        def emit(kind: str, payload: object) -> None:
            if kind in FINAL:
                with self.lock:
                    self.order.append(name)
                    self.final[name] = kind

        req = Request(prompt="Describe.", params=GenerationParams(max_new_tokens=tokens, min_new_tokens=tokens))
        return Job(key=key, request=req, emit=emit)


def test_round_robin_across_keys(engine) -> None:
    rec = Recorder()
    sched = Scheduler(engine, None, depth=16)
    jobs = [rec.job("station-a", f"a{i}") for i in range(6)] + [rec.job("station-b", "b0")]
    for job in jobs:  # queued before the worker starts, so the order is decided by the scheduler alone
        sched.submit(job)
    sched.start()
    assert sched.drain(60)
    assert rec.order[:3] == ["a0", "b0", "a1"], rec.order  # b is not stuck behind a's backlog
    assert sorted(rec.order) == sorted(j for j in [f"a{i}" for i in range(6)] + ["b0"])
    sched.close()


def test_depth_bound_cancel_and_close(engine) -> None:
    rec = Recorder()
    sched = Scheduler(engine, None, depth=2)
    first, second = rec.job("k", "first"), rec.job("k", "second")
    sched.submit(first)
    sched.submit(second)
    with pytest.raises(OverloadedError, match="queue is full"):
        sched.submit(rec.job("k", "third"))
    second.cancelled.set()
    sched.start()
    assert sched.drain(60)
    assert rec.final == {"first": "done", "second": "cancelled"}
    sched.submit(rec.job("k", "later", tokens=2))
    assert sched.drain(60)
    sched.close()
    with pytest.raises(ShuttingDownError):
        sched.submit(rec.job("k", "after-close"))
