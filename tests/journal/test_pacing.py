"""Commit pacing: under load one commit (one fsync) covers every event that queued while the writer waited for
its interval; an event after a quiet spell is committed at once. The writer's clock and sleep are the test's, so
nothing here depends on how fast the machine is."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from edge.journal.journal import Journal, JournalSettings
from edge.journal.records import DroppedBody, Record
from edge.serve.metrics import Metrics

INTERVAL = 0.02


def rec(i: int) -> Record:
    return Record(f"camera:{i % 3}", DroppedBody("superseded", "a newer frame arrived"), i, float(i))


class HeldSleep:
    """The writer's (monotonic clock, sleep): a sleep blocks until the test releases it, then moves the clock on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.sleeping = threading.Event()
        self.release = threading.Event()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        assert self.release.wait(30), "the test never released the writer"
        self.release.clear()
        self.now += seconds


def test_events_that_queue_during_the_interval_share_one_commit(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    held = HeldSleep()
    settings = JournalSettings(tmp_path, evidence=None, commit_interval_seconds=INTERVAL)
    j = Journal(settings, metrics=Metrics(registry), pacing=(held.monotonic, held.sleep))
    assert j.append(rec(0)).result(30) == 1  # the first event after a quiet spell: no wait
    assert held.sleeps == [] and j.commits == 1

    first = j.append(rec(1))  # the writer takes it and sleeps out the interval since the last commit
    assert held.sleeping.wait(30)
    assert held.sleeps == [pytest.approx(INTERVAL)]
    futures: list[Future[int]] = []
    lock = threading.Lock()

    def burst(k: int) -> None:  # four pipelines deciding at once
        for i in range(50):
            f = j.append(rec(100 * k + i))
            with lock:
                futures.append(f)

    threads = [threading.Thread(target=burst, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not first.done()  # not reported before it is committed
    held.release.set()
    sequences = sorted([first.result(30), *(f.result(30) for f in futures)])
    assert sequences == list(range(2, 203))  # every event, each its own sequence, none lost
    assert j.commits == 2  # 201 events in one transaction: one fsync
    assert registry.get_sample_value("edge_inspector_journal_commits_total") == 2

    held.now += 10 * INTERVAL  # quiet: the next event does not wait
    assert j.append(rec(9)).result(30) == 203
    assert len(held.sleeps) == 1 and j.commits == 3
    j.close()
    assert [e.sequence for e in Journal(JournalSettings(tmp_path, evidence=None)).read(0, 500)] == list(range(1, 204))


def test_without_pacing_the_writer_never_sleeps(tmp_path: Path) -> None:
    held = HeldSleep()
    j = Journal(
        JournalSettings(tmp_path, evidence=None, commit_interval_seconds=0.0), pacing=(held.monotonic, held.sleep)
    )
    for i in range(20):  # back to back, the clock standing still: each one right after the last commit
        assert j.append(rec(i)).result(30) == i + 1
    j.close()
    assert held.sleeps == []
    assert j.commits == 20
