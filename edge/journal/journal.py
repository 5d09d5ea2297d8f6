"""The durable event journal: ``append(record)`` returns a future that resolves once the event is committed.

One writer thread takes everything queued since its last commit and commits it as one transaction (group
commit): under load a batch holds many events and costs one fsync, idle it holds one and adds no wait.
Under load commits are paced: one starts at most every ``commit_interval_seconds`` (20 ms by default), the
writer sleeping out the rest of the interval, so one transaction, one fsync and one wake-up of the publisher
cover everything that queued meanwhile (the pipeline's threads have the GIL to themselves while it sleeps).
Load means the last commit held several events, or more were queued when it finished: a lone client that
waits for each commit before sending the next is never held back, and an event that arrives when the last
commit started longer ago than the interval is committed at once. Pacing adds at most
``commit_interval_seconds`` to a decision's reply, and nothing at a camera's pace. Events that nobody waits
for (``append(…, awaited=False)``: a pulled camera's decisions) are paced also when the writer keeps up
with them one by one (a fast fsync), at ``unawaited_interval_seconds`` (100 ms): above 10 events per second
they share commits, where each would otherwise cost a transaction, an fsync and a wake-up of its own.

Evidence files are written by the same thread, before the commit that references them, never on an
event loop. The future resolves with the event's sequence (or a :class:`~edge.errors.JournalError`), so
the daemon reports a decision to its client only once it is journaled. Listeners (the MQTT publisher,
``WatchEvents``) are told the new head after every commit. Retention runs on the same thread between
batches: events older than ``max_age_seconds`` or beyond ``max_bytes`` go, oldest first, but never one
that a publisher named in ``floor_cursors`` has not had acknowledged.

>>> journal = Journal(JournalSettings(Path("/var/lib/edge-inspector")))
>>> seq = await asyncio.wrap_future(journal.append(from_event("inspect:1", event)))
>>> journal.close()
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import JournalError
from edge.journal.evidence import EvidenceBudgets, EvidenceStore, read_evidence
from edge.journal.listeners import Listeners
from edge.journal.records import Record, payload
from edge.journal.store import EventStore, StoredEvent

log = logging.getLogger("edge.journal")
MAX_BATCH = 512
PRUNE_EVERY_SECONDS = 10.0


@dataclass(frozen=True)
class JournalSettings:
    state_dir: Path
    synchronous: str = "FULL"
    max_bytes: int = 256 * 1024**2  # JSON payload of published events kept
    max_age_seconds: float = 30 * 86400.0
    floor_cursors: tuple[str, ...] = ()  # publishers whose unacknowledged events retention must keep
    origin: tuple[str, str] = ("", "")  # (line, station) written into every event
    evidence: EvidenceBudgets | None = field(default_factory=EvidenceBudgets)
    commit_interval_seconds: float = 0.02  # commits start at most this often; 0 = whenever the writer is free
    # ... and at most this often when they hold only events nobody awaits (0: as commit_interval_seconds)
    unawaited_interval_seconds: float = 0.1

    @property
    def unawaited_interval(self) -> float:
        """How often a commit holding only events nobody awaits may start (0 = whenever the writer is free)."""
        return self.unawaited_interval_seconds or self.commit_interval_seconds

    @property
    def path(self) -> Path:
        return self.state_dir / "journal.db"

    @property
    def evidence_dir(self) -> Path:
        return self.state_dir / "evidence"


@dataclass(frozen=True)
class _Append:
    record: Record
    future: Future[int]
    awaited: bool  # somebody waits for this commit before reporting the decision


@dataclass(frozen=True)
class _Cursor:
    name: str
    seq: int


_STOP = object()


class Journal:
    """See the module docstring. Thread-safe; ``append`` never blocks on the disk."""

    def __init__(
        self,
        settings: JournalSettings,
        *,
        metrics: Any = None,
        clock: Callable[[], float] = time.time,
        pacing: tuple[Callable[[], float], Callable[[float], None]] = (time.monotonic, time.sleep),
    ):
        """``clock`` stamps events and drives retention; ``pacing`` is the (monotonic clock, sleep) that paces
        commits (tests pass their own, to hold the writer in its sleep)."""
        self.settings, self.metrics, self.clock = settings, metrics, clock
        self._monotonic, self._sleep = pacing
        self.store = EventStore(settings.path, settings.synchronous)
        self.evidence = (
            EvidenceStore(
                settings.evidence_dir,
                settings.evidence,
                self.store.writer,
                durable=settings.synchronous in ("FULL", "EXTRA"),
                metrics=metrics,
            )
            if settings.evidence is not None
            else None
        )
        self._next = self.store.head() + 1
        self._head = self._next - 1
        self._bytes = self.store.payload_bytes()
        self._cursors = {n: self.store.cursor(n) for n in settings.floor_cursors}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._listeners = Listeners()
        self._lock = threading.Lock()
        self._closed = False
        self._last_prune = 0.0
        self.commits = 0  # transactions that committed events or cursors (not retention's)
        self._busy = False  # under load: the last batch held several events, or more queued during its commit
        self._thread = threading.Thread(target=self._run, name="edge-journal", daemon=True)
        self._thread.start()
        self._gauges()

    # -- any thread ---------------------------------------------------------------------------------------
    def append(self, record: Record, *, awaited: bool = True) -> Future[int]:
        """Queue ``record``; the future resolves with its sequence once committed (JournalError if not).

        ``awaited=False``: nobody waits for this commit (a pulled camera's decision), so it may wait for the
        next paced commit even when the writer is idle; see the module docstring.
        """
        fut: Future[int] = Future()
        with self._lock:
            if self._closed:
                fut.set_exception(JournalError("the journal is closed (the daemon is shutting down)"))
                return fut
            self._queue.put(_Append(record, fut, awaited))
        return fut

    def save_cursor(self, name: str, seq: int) -> None:
        """Persist a publisher's cursor (the last sequence its broker acknowledged), in the next batch."""
        with self._lock:
            if not self._closed:
                self._queue.put(_Cursor(name, seq))

    def add_listener(self, fn: Callable[[int], None]) -> Callable[[], None]:
        """Call ``fn(head)`` on the writer thread after each commit; returns the function that removes it."""
        return self._listeners.add(fn)

    @property
    def head(self) -> int:
        """The sequence of the last committed event (0 for an empty journal)."""
        return self._head

    def read(
        self, after: int, limit: int, kinds: Sequence[str] = (), source: str = "", before: int = 0
    ) -> list[StoredEvent]:
        return self.store.read(after, limit, kinds, source, before)

    def cursor(self, name: str) -> int:
        return self.store.cursor(name)

    def evidence_file(self, evidence_id: str) -> tuple[str, bytes]:
        return read_evidence(self.settings.evidence_dir, evidence_id)

    def close(self, timeout: float = 10.0) -> bool:
        """Commit what is queued, stop the writer and close the file; True if it finished within ``timeout``."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        if done:
            self.store.close()
        else:
            log.warning("the journal writer did not finish within %.1f s; queued events may be lost", timeout)
        return done

    # -- the writer thread ----------------------------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        started = -float("inf")  # when the last commit started (time.monotonic)
        while not stop:
            batch = self._gather(started)
            stop = any(item is _STOP for item in batch)
            items = [item for item in batch if item is not _STOP]
            if items:
                started = self._monotonic()
                self._commit(items)
            if stop or self.clock() - self._last_prune >= PRUNE_EVERY_SECONDS:
                self._prune()

    def _gather(self, started: float) -> list[Any]:
        """The next batch: the first item queued; a sleep until one interval after ``started`` (monotonic:
        when the last commit started) if that has not passed yet, under load or when nobody awaits the item
        (the longer unawaited interval then); and everything queued by then, up to MAX_BATCH. Sleeping rather
        than waking for each event keeps this thread off the GIL while the pipeline works; ``close`` waits at
        most one interval longer."""
        batch = [self._queue.get()]
        first, s = batch[0], self.settings
        interval = s.commit_interval_seconds if self._busy else 0.0
        if isinstance(first, _Append) and not first.awaited:
            interval = max(interval, s.unawaited_interval)
        wait = started + interval - self._monotonic()
        if interval > 0 and wait > 0 and first is not _STOP:
            self._sleep(wait)
        while len(batch) < MAX_BATCH and batch[-1] is not _STOP:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _commit(self, items: list[Any]) -> None:
        appends = [i for i in items if isinstance(i, _Append)]
        cursors = [i for i in items if isinstance(i, _Cursor)]
        rows, done = [], []
        conn = self.store.writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            seq = self._next
            for item in appends:
                rec, now = item.record, item.record.time if item.record.time is not None else self.clock()
                refs, skipped = self.evidence.put(rec, now) if self.evidence is not None else ([], "")
                text = payload(rec, seq, now, self.settings.origin, refs, skipped)
                rows.append((seq, now, rec.kind.value, rec.source, text))
                done.append((item.future, seq, len(text)))
                seq += 1
            self.store.insert(rows)
            if self.evidence is not None:
                self.evidence.sync()  # the files these rows reference, before the commit
            for c in cursors:
                self.store.set_cursor(c.name, c.seq)
            conn.execute("COMMIT")
            self.commits += 1
            # Before any future resolves: a client that waits for its commit cannot have queued its next event
            # yet, so it is never taken for load (pacing would only slow it down, nobody else would join).
            self._busy = len(appends) > 1 or not self._queue.empty()
            if self.metrics is not None:
                self.metrics.journal_commits.inc()
        except (sqlite3.Error, ValueError, OSError) as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            err = JournalError(f"{self.settings.path}: cannot write to the event journal ({exc})")
            log.error("%s", err)
            if self.metrics is not None:
                self.metrics.journal_errors.inc(len(appends))
            for item in appends:
                item.future.set_exception(err)
            return
        self._next = seq
        for c in cursors:
            if c.name in self._cursors:
                self._cursors[c.name] = max(self._cursors[c.name], c.seq)
        if done:
            self._head = seq - 1
            self._bytes += sum(n for _, _, n in done)
        for fut, s, _ in done:
            fut.set_result(s)
        self._gauges()
        if done:
            self._listeners.notify(self._head)

    def floor(self) -> int:
        """The highest sequence retention may delete: every floor cursor's acknowledged sequence."""
        return min(self._cursors.values(), default=self._head)

    def _prune(self) -> None:
        now = self.clock()
        self._last_prune = now
        s = self.settings
        conn = self.store.writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            deleted, freed = self.store.prune(s.max_bytes, now - s.max_age_seconds, self.floor(), self._bytes)
            if self.evidence is not None:
                self.evidence.prune(now)
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            log.error("journal retention failed: %s", exc)
            return
        self._bytes -= freed
        if deleted:
            log.debug("journal retention deleted %d event(s), %d bytes", deleted, freed)
        self._gauges()

    def _gauges(self) -> None:
        if self.metrics is None:
            return
        self.metrics.journal_head.set(self._head)
        self.metrics.journal_bytes.set(self._bytes)
