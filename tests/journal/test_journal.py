"""The journal on a real SQLite file: group commit, sequences, a kill during a write burst, retention's floor."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from edge.errors import JournalError
from edge.journal.journal import Journal, JournalSettings
from edge.journal.records import DroppedBody, Record
from edge.serve.metrics import Metrics


def rec(i: int, t: float | None = None) -> Record:
    return Record("inspect:1", DroppedBody("superseded", "x" * 200), i, float(i), time=t)


def test_sequences_are_assigned_in_order_and_survive_a_reopen(tmp_path: Path) -> None:
    j = Journal(JournalSettings(tmp_path, origin=("l", "s")))
    futures = [j.append(rec(i)) for i in range(1, 301)]
    assert [f.result(30) for f in futures] == list(range(1, 301))
    assert j.head == 300
    kinds = j.read(0, 5, kinds=("dropped",))
    assert [e.sequence for e in kinds] == [1, 2, 3, 4, 5]
    assert j.read(0, 5, kinds=("finished",)) == []
    assert json.loads(j.read(299, 1)[0].payload)["sequence"] == 300
    j.close()
    again = Journal(JournalSettings(tmp_path))
    assert again.head == 300 and again.append(rec(1)).result(30) == 301
    again.close()
    assert again.append(rec(1)).exception(1) is not None  # closed: refused, never lost silently


def test_a_damaged_file_is_refused_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "journal.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match=r"journal\.db: cannot open the event journal"):
        Journal(JournalSettings(tmp_path))


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from edge.journal.journal import Journal, JournalSettings
    from edge.journal.records import DroppedBody, Record

    j = Journal(JournalSettings(Path(sys.argv[1])))
    def report(fut):
        print(fut.result(), flush=True)
    i = 0
    while True:  # a burst until killed; each committed sequence is printed when its future resolves
        i += 1
        j.append(Record("inspect:1", DroppedBody("stale", "burst"), i, float(i))).add_done_callback(report)
        if i % 64 == 0:
            j.append(Record("inspect:1", DroppedBody("stale", "burst"), i, float(i))).result()
    """
)


@pytest.mark.parametrize("run", range(3))
def test_a_kill_during_a_write_burst_leaves_a_journal_that_opens_cleanly(tmp_path: Path, run: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = []
    for line in proc.stdout:
        committed.append(int(line))
        if len(committed) >= 2000 + 700 * run:
            break
    os.kill(proc.pid, signal.SIGKILL)  # mid-burst: the writer thread is between commits or inside one
    proc.wait()
    proc.stdout.close()
    conn = sqlite3.connect(tmp_path / "journal.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    seqs = [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
    conn.close()
    assert set(committed) <= set(seqs)  # every event a caller was told is journaled is there
    assert seqs == list(range(1, len(seqs) + 1))  # and no holes
    j = Journal(JournalSettings(tmp_path))
    assert j.append(rec(1)).result(30) == len(seqs) + 1
    j.close()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_retention_by_size_and_age_never_deletes_what_the_broker_has_not_acknowledged(tmp_path: Path) -> None:
    clock = Clock(1_000_000.0)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    settings = JournalSettings(tmp_path, max_bytes=40_000, max_age_seconds=3600.0, floor_cursors=("mqtt",))
    j = Journal(settings, metrics=metrics, clock=clock)
    for i in range(1, 1001):  # about 500 bytes each: 500 KB, far over the budget, nothing published
        j.append(rec(i)).result(30)
        clock.t += 1.0
    j.close()  # a close prunes
    j = Journal(settings, metrics=metrics, clock=clock)
    lo, hi = j.store.bounds()
    assert (lo, hi) == (1, 1000)  # unpublished: every event is kept, whatever the budget
    j.save_cursor("mqtt", 600)  # the broker acknowledged 1..600
    clock.t += 100.0
    j.append(rec(1001)).result(30)
    j.close()
    j = Journal(settings, clock=clock)
    lo, hi = j.store.bounds()
    assert hi == 1001 and lo == 601  # published ones went (size), the unacknowledged stayed
    clock.t += 7200.0  # everything is now older than max_age_seconds
    j.save_cursor("mqtt", 1001)
    j.append(rec(1002)).result(30)
    j.close()
    j = Journal(settings, clock=clock)
    assert j.store.bounds() == (1002, 1002)  # the newest is younger than an hour and not acknowledged
    assert j.append(rec(1)).result(30) == 1003  # sequences never go back
    j.close()
    assert registry.get_sample_value("edge_inspector_journal_head_sequence") == 1001


def test_without_a_publisher_retention_keeps_to_the_byte_budget(tmp_path: Path) -> None:
    settings = JournalSettings(tmp_path, max_bytes=50_000)
    j = Journal(settings)
    for i in range(1, 2001):
        j.append(rec(i))
    j.append(rec(0)).result(30)
    j.close()
    conn = sqlite3.connect(tmp_path / "journal.db")
    total, n = conn.execute("SELECT SUM(length(payload)), COUNT(*) FROM events").fetchone()
    conn.close()
    assert total <= 50_000 and n > 50
