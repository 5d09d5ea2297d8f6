"""Fair admission and round-robin service, as a pure data structure (no threads, no clock)."""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest

from edge.errors import OverloadedError
from edge.station.queue import FairQueue


def simulate(depth: int, retriers: int, sessions: int, steps: int) -> Counter:
    """Each step: every retrier submits until refused (a client retrying at once on RESOURCE_EXHAUSTED),
    each session submits one trigger, then the engine finishes one job. Count jobs served per source."""
    q: FairQueue[str] = FairQueue(depth)
    for s in range(sessions):
        q.register(f"inspect:{s}")
    served: Counter = Counter()
    for _ in range(steps):
        for s in range(sessions):
            with contextlib.suppress(OverloadedError):  # refused: a dropped trigger (queue_full)
                q.push(f"inspect:{s}", f"inspect:{s}")
        for r in range(retriers):
            while True:
                try:
                    q.push(f"station:{r}", f"station:{r}")
                except OverloadedError:
                    break
        job = q.pop()
        assert job is not None
        served[job] += 1
    return served


@pytest.mark.parametrize(
    ("depth", "retriers", "sessions"), [(8, 4, 4), (8, 2, 4), (4, 4, 1), (16, 1, 3), (4, 4, 2), (2, 8, 8)]
)
def test_retrying_describe_callers_cannot_starve_sessions(depth: int, retriers: int, sessions: int) -> None:
    served = simulate(depth, retriers, sessions, steps=800)
    fair = 800 / (retriers + sessions)
    for s in range(sessions):
        assert served[f"inspect:{s}"] >= 0.9 * fair, served  # round robin over sources: each gets its turn


def test_share_follows_the_active_sources() -> None:
    q: FairQueue[int] = FairQueue(8)
    assert q.share("a") == 8
    q.register("s1")
    q.register("s2")
    q.register("s3")
    assert q.share("a") == 2  # 8 // 4
    for i in range(2):
        q.push("a", i)
    with pytest.raises(OverloadedError, match="already has 2 description"):
        q.push("a", 2)
    q.unregister("s1")
    q.unregister("s2")
    assert q.share("a") == 4 and q.share("s3") == 4
    q.register("s3")
    q.unregister("s3")
    assert q.sources() == 2  # s3 was registered twice (two streams of one key) and is still open once


def test_a_registered_source_with_nothing_waiting_gets_in_even_when_full() -> None:
    q: FairQueue[str] = FairQueue(2)
    q.register("inspect:1")
    q.push("station:1", "a")
    q.push("station:2", "b")
    with pytest.raises(OverloadedError, match="queue is full"):
        q.push("station:3", "c")
    q.push("inspect:1", "s1")  # beyond depth: bounded by the number of open sessions
    with pytest.raises(OverloadedError, match="queue is full"):
        q.push("inspect:1", "s2")
    assert len(q) == 3 and q.pop() == "a" and q.pop() == "b" and q.pop() == "s1"


def test_global_bound_and_round_robin_order() -> None:
    q: FairQueue[str] = FairQueue(3)
    q.push("a", "a1")
    q.push("a", "a2")
    q.push("b", "b1")
    with pytest.raises(OverloadedError, match="queue is full"):
        q.push("c", "c1")
    assert [q.pop(), q.pop(), q.pop(), q.pop()] == ["a1", "b1", "a2", None]
    assert len(q) == 0
    q.push("a", "x")
    assert q.clear() == ["x"] and len(q) == 0
