"""The camera connection state machine, fed inputs with an injected clock: exact states, waits and actions."""

from __future__ import annotations

import random

import pytest

from edge.sources.link import Abandon, CameraLink, LinkPolicy, LinkState, Open, Problem


def link(**kw: float) -> CameraLink:
    return CameraLink(LinkPolicy(**{"stall_seconds": 10, "fps": 5, "open_timeout_seconds": 15, **kw}), random.Random(7))


def test_connect_stream_cap_and_stall() -> None:
    lk = link()
    assert lk.tick(0.0) == [Open(1)] and lk.state is LinkState.CONNECTING
    assert lk.tick(1.0) == []
    lk.opened(2.0, 1)
    passed = [lk.frame(2.0 + i * 0.04, 1) for i in range(50)]  # 25 fps for 2 s under a 5 fps cap
    # 1.96 s at 5 fps: 10 frames, give or take the first (no credit piles up before it)
    assert lk.state is LinkState.STREAMING and 10 <= sum(passed) <= 11 and passed[0]
    assert lk.tick(11.0) == []  # last frame at 3.96: not yet stalled
    [action] = lk.tick(14.0)
    assert isinstance(action, Abandon) and action.attempt == 1 and "no frame for 10.0 s" in action.problem.message
    assert lk.state is LinkState.BACKOFF and lk.reconnects == 0
    assert not lk.frame(14.1, 1)  # the abandoned reader's late frame is ignored
    assert lk.frame_age(14.1) == pytest.approx(10.14)


def test_backoff_grows_with_jitter_and_a_frame_resets_it() -> None:
    lk, now, waits = link(initial=1.0, maximum=8.0, jitter=0.2), 0.0, []
    for attempt in range(1, 7):
        assert lk.tick(now) == [Open(attempt)]
        lk.failed(now, attempt, Problem("connection refused"))
        assert lk.state is LinkState.BACKOFF and lk.failures == attempt
        retry = lk._retry_at
        assert retry is not None
        waits.append(retry - now)
        assert lk.tick(retry - 1e-6) == []
        now = retry
    for w, nominal in zip(waits, (1, 2, 4, 8, 8, 8), strict=True):
        assert 0.8 * nominal <= w <= 1.2 * nominal
    assert len(set(waits)) == len(waits)  # jittered: cameras that fell together do not retry in step
    assert lk.tick(now) == [Open(7)] and lk.reconnects == 6
    lk.opened(now, 7)
    assert lk.frame(now + 0.1, 7) and lk.failures == 0 and lk.problem is None


def test_a_permanent_problem_is_failed_until_a_frame_and_retried_slowly() -> None:
    lk = link(initial=1.0, maximum=60.0)
    lk.tick(0.0)
    lk.failed(0.5, 1, Problem("authentication failed (401)", permanent=True))
    assert lk.state is LinkState.FAILED and lk._retry_at is not None and lk._retry_at >= 0.5 + 48
    assert lk.tick(lk._retry_at) == [Open(2)] and lk.state is LinkState.FAILED  # stays failed while it retries
    lk.opened(60.0, 2)
    lk.frame(60.1, 2)
    assert lk.state is LinkState.STREAMING


def test_an_open_that_never_returns_is_abandoned_after_open_timeout_plus_stall() -> None:
    lk = link(stall_seconds=2, open_timeout_seconds=3)
    lk.tick(0.0)
    assert lk.tick(4.9) == []
    [action] = lk.tick(5.1)
    assert isinstance(action, Abandon) and "did not open" in action.problem.message
    lk.failed(5.2, 1, Problem("late report of the abandoned reader"))  # ignored: it was already counted
    assert lk.failures == 1


def test_stop_ends_everything() -> None:
    lk = link()
    lk.tick(0.0)
    lk.stop()
    assert lk.tick(100.0) == [] and not lk.frame(100.0, 1) and lk.state is LinkState.STOPPED
