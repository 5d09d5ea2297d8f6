"""Commit pacing: under load one commit (one fsync) covers every event that queued while the writer waited for
its interval; after a quiet spell, and for a client that waits for each commit, nothing waits. The writer's
clock and sleep are the test's, so nothing here depends on how fast the machine is."""

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


class Held:
    """The writer's (monotonic clock, sleep). A sleep blocks until the test releases it, then moves the clock
    on; with ``hold_clock`` set, so does the next reading of the clock (the writer holding its first event)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.hold_clock = False
        self.waiting = threading.Event()
        self.release = threading.Event()

    def _hold(self) -> None:
        self.waiting.set()
        assert self.release.wait(30), "the test never released the writer"
        self.release.clear()
        self.waiting.clear()

    def monotonic(self) -> float:
        if self.hold_clock:
            self.hold_clock = False
            self._hold()
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._hold()
        self.now += seconds


def appended_meanwhile(j: Journal, threads: int, each: int) -> list[Future[int]]:
    """``threads`` pipelines deciding at once, ``each`` events apiece."""
    futures: list[Future[int]] = []
    lock = threading.Lock()

    def burst(k: int) -> None:
        for i in range(each):
            f = j.append(rec(1000 * k + i))
            with lock:
                futures.append(f)

    workers = [threading.Thread(target=burst, args=(k,)) for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return futures


def test_under_load_the_events_that_queue_during_the_interval_share_one_commit(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    held = Held()
    settings = JournalSettings(tmp_path, evidence=None, commit_interval_seconds=INTERVAL)
    j = Journal(settings, metrics=Metrics(registry), pacing=(held.monotonic, held.sleep))

    held.hold_clock = True  # the writer takes the first event and is held while nine more queue: load
    first = [j.append(rec(0))]
    assert held.waiting.wait(30)
    first += [j.append(rec(i)) for i in range(1, 10)]
    held.release.set()
    assert [f.result(30) for f in first] == list(range(1, 11))
    assert held.sleeps == [] and j.commits == 1  # group commit, no pacing yet

    lone = j.append(rec(10))  # under load: the writer sleeps out the interval since that commit started
    assert held.waiting.wait(30)
    assert held.sleeps == [pytest.approx(INTERVAL)]
    futures = appended_meanwhile(j, threads=4, each=50)
    assert not lone.done()  # not reported before it is committed
    held.release.set()
    sequences = sorted([lone.result(30), *(f.result(30) for f in futures)])
    assert sequences == list(range(11, 212))  # every event, each its own sequence, none lost
    assert j.commits == 2  # 201 events in one transaction: one fsync
    assert registry.get_sample_value("edge_inspector_journal_commits_total") == 2

    held.now += 10 * INTERVAL  # a quiet spell: the next event does not wait
    assert j.append(rec(9)).result(30) == 212
    assert len(held.sleeps) == 1 and j.commits == 3
    j.close()
    assert [e.sequence for e in Journal(JournalSettings(tmp_path, evidence=None)).read(0, 500)] == list(range(1, 213))


@pytest.mark.parametrize("interval", [INTERVAL, 0.0])
def test_a_client_that_waits_for_each_commit_is_never_held_back(tmp_path: Path, interval: float) -> None:
    held = Held()
    settings = JournalSettings(tmp_path, evidence=None, commit_interval_seconds=interval)
    j = Journal(settings, pacing=(held.monotonic, held.sleep))
    for i in range(20):  # back to back, the clock standing still: each one right after the last commit started
        assert j.append(rec(i)).result(30) == i + 1
    j.close()
    assert held.sleeps == []
    assert j.commits == 20


def test_events_nobody_waits_for_share_a_paced_commit_even_when_the_writer_keeps_up(tmp_path: Path) -> None:
    held = Held()
    settings = JournalSettings(
        tmp_path, evidence=None, commit_interval_seconds=INTERVAL, unawaited_interval_seconds=5 * INTERVAL
    )
    j = Journal(settings, pacing=(held.monotonic, held.sleep))
    assert j.append(rec(0), awaited=False).result(30) == 1  # the first one: no commit to pace against
    assert held.sleeps == [] and j.commits == 1

    second = j.append(rec(1), awaited=False)  # one event, the writer idle: still, it waits out its interval
    assert held.waiting.wait(30)
    assert held.sleeps == [pytest.approx(5 * INTERVAL)]
    more = [j.append(rec(i), awaited=False) for i in range(2, 12)]  # a camera's next decisions meanwhile
    assert not second.done()
    held.release.set()
    assert [second.result(30), *(f.result(30) for f in more)] == list(range(2, 13))
    assert j.commits == 2  # eleven events, one transaction
    j.close()
    # (an awaited event after a lone commit is never held back: test_a_client_that_waits_for_each_commit…)
