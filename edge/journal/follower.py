"""The journal as the MQTT publisher's own process sees it: read-only, polled for new commits.

The daemon's writer commits; this process reads the same SQLite file (WAL lets it read while the other
commits) and never writes it. Cursor saves go back to the daemon as a line on stdout
(:func:`edge.journal.relay.cursor_line`), which commits them with its next batch, so the journal keeps a
single writer. New commits arrive as the daemon's word (:meth:`JournalFollower.committed`, a ``{"head": N}``
line on this process's stdin after each commit) and, should one be missed, from :meth:`JournalFollower.poll`
(a query of the head, every ``POLL_SECONDS`` from the process's relay thread); either calls the listeners as
the daemon's journal does. (Polling alone, every 20 ms, cost this process 12 ms of CPU a second while idle:
the query opens a read transaction on the WAL each time.)

>>> follower = JournalFollower(Path("/var/lib/edge-inspector/journal.db"), send=out.write, start_cursor=1843)
>>> follower.committed(1850)   # the daemon committed up to 1850: listeners run
>>> follower.poll()            # the same, from the file, if the daemon committed since
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from edge.journal.listeners import Listeners
from edge.journal.relay import cursor_line
from edge.journal.store import StoredEvent, cursor_of, head_of, open_read_only, read_events

log = logging.getLogger("edge.journal.mqtt")
POLL_SECONDS = 1.0  # the fallback: the daemon says when it commits


class JournalFollower:
    """See the module docstring; satisfies :class:`edge.journal.mqtt.JournalSource`."""

    def __init__(self, path: Path, send: Callable[[bytes], None], start_cursor: int = 0) -> None:
        """``start_cursor``: the newest cursor the daemon knows (it may not have committed it yet)."""
        self.path, self.send, self.start_cursor = path, send, start_cursor
        self.conn = open_read_only(path)
        self._lock = threading.Lock()
        self._listeners = Listeners()
        with self._lock:
            self._head = head_of(self.conn)

    @property
    def head(self) -> int:
        return self._head

    def read(self, after: int, limit: int) -> list[StoredEvent]:
        with self._lock:
            return read_events(self.conn, after, limit)

    def cursor(self, name: str) -> int:
        with self._lock:
            return max(cursor_of(self.conn, name), self.start_cursor)

    def save_cursor(self, name: str, seq: int) -> None:
        self.send(cursor_line(seq))

    def add_listener(self, fn: Callable[[int], None]) -> Callable[[], None]:
        return self._listeners.add(fn)

    def committed(self, head: int) -> None:
        """The daemon committed events up to ``head``: tell the listeners if that is news."""
        with self._lock:
            if head <= self._head:
                return
            self._head = head
        self._listeners.notify(head)

    def poll(self) -> None:
        """Tell the listeners if the daemon committed since the last poll (or word of it)."""
        try:
            with self._lock:
                head = head_of(self.conn)
        except sqlite3.Error as exc:  # the daemon is mid-checkpoint or the disk hiccuped: next poll
            log.debug("journal poll failed: %s", exc)
            return
        self.committed(head)

    def close(self) -> None:
        with self._lock:
            self.conn.close()
