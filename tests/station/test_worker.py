"""The scheduler with the real tiny engine, no gRPC: round-robin, fair shares, bounds, cancellation, close."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edge.errors import FieldError, OverloadedError, ShuttingDownError
from edge.runtime.engine import GenerationParams
from edge.runtime.image import ImageLimits
from edge.station.admission import encoded_image
from edge.station.engine import Request
from edge.station.events import DropReason
from edge.station.worker import FINAL, Job, JobCancelled, JobDone, JobEvent, JobFailed, JobSkipped, Scheduler


class Recorder:
    def __init__(self) -> None:
        self.order: list[str] = []
        self.final: dict[str, JobEvent] = {}
        self.lock = threading.Lock()

    def job(self, key: str, name: str, tokens: int = 4, request: Request | None = None) -> Job:
        def emit(ev: JobEvent) -> None:
            if isinstance(ev, FINAL):
                with self.lock:
                    self.order.append(name)
                    self.final[name] = ev

        req = request or Request(
            prompt="Describe.", params=GenerationParams(max_new_tokens=tokens, min_new_tokens=tokens)
        )
        return Job(key=key, request=req, emit=emit)


def test_round_robin_across_keys(engine) -> None:
    rec = Recorder()
    sched = Scheduler(engine, None, depth=16)
    sched.register("station-a")  # a registered source: its share is 16 // 2 = 8
    jobs = [rec.job("station-a", f"a{i}") for i in range(6)] + [rec.job("station-b", "b0")]
    for job in jobs:  # queued before the worker starts, so the order is decided by the scheduler alone
        sched.submit(job)
    sched.start()
    assert sched.drain(60)
    assert rec.order[:3] == ["a0", "b0", "a1"], rec.order  # b is not stuck behind a's backlog
    assert sorted(rec.order) == sorted([f"a{i}" for i in range(6)] + ["b0"])
    assert all(isinstance(ev, JobDone) for ev in rec.final.values())
    sched.close()


def test_a_source_is_refused_at_its_share_and_the_slot_goes_to_another(engine) -> None:
    rec = Recorder()
    sched = Scheduler(engine, None, depth=4)
    sched.register("inspect:1")  # an open session holds its share even with nothing waiting
    for i in range(2):
        sched.submit(rec.job("station:7", f"s{i}"))
    with pytest.raises(OverloadedError, match="fair share of queue_depth 4 among 2 sources"):
        sched.submit(rec.job("station:7", "s2"))
    sched.submit(rec.job("inspect:1", "i0"))  # the session still gets in
    sched.submit(rec.job("inspect:1", "i1"))
    with pytest.raises(OverloadedError, match="queue is full"):
        sched.submit(rec.job("station:9", "x"))
    sched.start()
    assert sched.drain(60)
    assert rec.order == ["s0", "i0", "s1", "i1"]
    sched.close()


def test_depth_bound_cancel_and_close(engine) -> None:
    rec = Recorder()
    sched = Scheduler(engine, None, depth=2)
    first, second = rec.job("k", "first"), rec.job("k", "second")
    sched.submit(first)
    sched.submit(second)
    with pytest.raises(OverloadedError):
        sched.submit(rec.job("k", "third"))
    second.cancelled.set()
    sched.start()
    assert sched.drain(60)
    assert isinstance(rec.final["first"], JobDone)
    assert rec.final["second"] == JobCancelled(started=False)
    sched.submit(rec.job("k", "later", tokens=2))
    assert sched.drain(60)
    waiting = rec.job("k", "waiting")
    sched.close()
    with pytest.raises(ShuttingDownError):
        sched.submit(waiting)


def test_close_ends_waiting_jobs_as_shutdown(engine) -> None:
    rec = Recorder()
    sched = Scheduler(engine, None, depth=4)
    sched.submit(rec.job("k", "a"))
    sched.submit(rec.job("j", "b"))
    assert len(sched.close()) == 2  # never started: the worker was not running
    assert rec.final == {"a": JobSkipped(DropReason.SHUTDOWN, "the daemon is shutting down"), "b": rec.final["b"]}
    assert isinstance(rec.final["b"], JobSkipped)


def test_a_corrupt_image_fails_the_job_naming_the_field(engine) -> None:
    import cv2

    _, png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    data = bytearray(png.tobytes())
    at = data.find(b"IDAT")
    data[at + 20 : at + 60] = bytes(40)  # corrupt pixel data; header and IEND intact: passes the arrival checks
    image = encoded_image(bytes(data), "images[0].encoded", ImageLimits())
    rec = Recorder()
    sched = Scheduler(engine, None, depth=2)
    sched.start()
    sched.submit(rec.job("k", "bad", request=Request(prompt="Describe.", images=[image])))
    assert sched.drain(60)
    sched.close()
    ev = rec.final["bad"]
    assert isinstance(ev, JobFailed) and isinstance(ev.error, FieldError), ev
    assert ev.error.field == "images[0].encoded" and "cannot decode the PNG" in str(ev.error)
