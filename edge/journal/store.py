"""The journal's SQLite file: events by sequence, the publishers' cursors and the evidence index, in WAL mode.

One writer connection (the journal's writer thread) and one reader connection (shared under a lock by the
MQTT publisher and the gRPC handlers; WAL lets readers run while the writer commits). Sequences only ever
grow: before retention deletes rows, the highest sequence is kept as the cursor ``_head``. (Not
``AUTOINCREMENT``, which rewrites ``sqlite_sequence`` on every insert: one more page per commit.) Events are
kept in sequence order only, without a time index, for the same reason: retention walks them oldest first.

``synchronous``: ``FULL`` (the default) syncs the WAL at every commit; the writer commits a whole batch at
once, so that is one fsync per batch, not per event. A power cut then loses nothing a caller was told was
journaled. ``NORMAL`` syncs only at checkpoints: a power cut may lose the last commits (never corrupts the
file), which breaks "journaled before reported". The benchmark (``python -m edge.journal.bench``) measures
both; see the README for the figures that made FULL the default.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.errors import JournalError

SCHEMA_VERSION = 1
SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA", "OFF")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors(name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS evidence(
    id TEXT PRIMARY KEY,
    class TEXT NOT NULL,
    name TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_class_time ON evidence(class, time);
"""


@dataclass(frozen=True)
class StoredEvent:
    """A journaled event; ``payload`` is its JSON text exactly as published."""

    sequence: int
    time: float
    kind: str
    source: str
    payload: str


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open (creating if needed) the journal file in WAL mode; JournalError naming the file on failure."""
    if synchronous not in SYNCHRONOUS:
        raise JournalError(f"journal_synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"{path}: SQLite refused WAL mode ({mode}); put state_dir on a local filesystem")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=OFF")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"{path}: written by a newer edge-inspector (journal schema {version}, this one reads "
                f"{SCHEMA_VERSION}); upgrade the daemon or move the file away"
            )
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return conn
    except sqlite3.DatabaseError as exc:
        raise JournalError(
            f"{path}: cannot open the event journal ({exc}); check state_dir's permissions and free space, or "
            "move a damaged file away (the daemon starts a new journal)"
        ) from exc
    except OSError as exc:
        raise JournalError(f"{path}: cannot create the journal's folder ({exc.strerror or exc})") from exc


class EventStore:
    """Queries on the journal file. Writes happen on one thread (the journal's writer); reads anywhere.

    >>> store = EventStore(Path("/var/lib/edge-inspector/journal.db"))
    >>> store.insert([(1, 1700000000.0, "dropped", "inspect:1", '{"sequence":1,…}')])
    """

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        self.writer = connect(path, synchronous)
        self.reader = connect(path, synchronous)
        self._read_lock = threading.Lock()

    # -- the writer thread --------------------------------------------------------------------------------
    def head(self) -> int:
        """The highest sequence ever assigned (also after retention deleted it)."""
        return head_of(self.writer)

    def insert(self, rows: Iterable[tuple[int, float, str, str, str]]) -> None:
        self.writer.executemany("INSERT INTO events(seq, time, kind, source, payload) VALUES (?, ?, ?, ?, ?)", rows)

    def set_cursor(self, name: str, seq: int) -> None:
        self.writer.execute(
            "INSERT INTO cursors(name, seq) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET seq=MAX(seq, excluded.seq)",
            (name, seq),
        )

    def payload_bytes(self) -> int:
        return int(self.writer.execute("SELECT COALESCE(SUM(length(payload)), 0) FROM events").fetchone()[0])

    def prune(self, max_bytes: int, before: float, floor: int, total: int) -> tuple[int, int]:
        """Delete, oldest first, events at or below ``floor`` that are older than ``before`` or that put the
        payload (``total`` bytes now) over ``max_bytes``; returns (events, bytes) deleted."""
        deleted = freed = cut = 0
        excess = total - max_bytes
        done = False
        while not done:
            rows = self.writer.execute(
                "SELECT seq, time, length(payload) FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT 2000",
                (cut, floor),
            ).fetchall()
            done = not rows
            for seq, t, length in rows:
                if t >= before and freed >= excess:
                    done = True
                    break
                cut, freed, deleted = seq, freed + length, deleted + 1
        if cut:
            self.set_cursor("_head", self.head())  # the sequence goes on after the newest row, even if it goes
            self.writer.execute("DELETE FROM events WHERE seq <= ?", (cut,))
        return deleted, freed

    # -- any thread ---------------------------------------------------------------------------------------
    def read(
        self, after: int, limit: int, kinds: Sequence[str] = (), source: str = "", before: int = 0
    ) -> list[StoredEvent]:
        """Up to ``limit`` events with sequence > ``after`` (and < ``before`` when set), in order."""
        with self._read_lock:
            return read_events(self.reader, after, limit, kinds, source, before)

    def cursor(self, name: str) -> int:
        with self._read_lock:
            return cursor_of(self.reader, name)

    def bounds(self) -> tuple[int, int]:
        """(oldest sequence kept, newest sequence), (0, 0) when empty."""
        with self._read_lock:
            lo, hi = self.reader.execute("SELECT MIN(seq), MAX(seq) FROM events").fetchone()
        return int(lo or 0), int(hi or 0)

    def close(self) -> None:
        for conn in (self.reader, self.writer):
            with contextlib.suppress(sqlite3.Error):
                conn.close()


# -- queries any connection can run (also the MQTT publisher process's read-only one) ---------------------------
def head_of(conn: sqlite3.Connection) -> int:
    """The highest sequence ever assigned (also after retention deleted it)."""
    row = conn.execute(
        "SELECT MAX(COALESCE((SELECT MAX(seq) FROM events), 0), COALESCE((SELECT seq FROM cursors "
        "WHERE name = '_head'), 0))"
    ).fetchone()
    return int(row[0])


def read_events(
    conn: sqlite3.Connection, after: int, limit: int, kinds: Sequence[str] = (), source: str = "", before: int = 0
) -> list[StoredEvent]:
    """Up to ``limit`` events with sequence > ``after`` (and < ``before`` when set), in order."""
    sql = "SELECT seq, time, kind, source, payload FROM events WHERE seq > ?"
    args: list[object] = [after]
    if before:
        sql += " AND seq < ?"
        args.append(before)
    if kinds:
        sql += f" AND kind IN ({','.join('?' * len(kinds))})"
        args += list(kinds)
    if source:
        sql += " AND source = ?"
        args.append(source)
    sql += " ORDER BY seq LIMIT ?"
    args.append(limit)
    rows = conn.execute(sql, args).fetchall()
    return [StoredEvent(int(r[0]), float(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]


def cursor_of(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to a journal another process writes (WAL lets it read while that one commits)."""
    try:
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30.0)
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: cannot open the event journal to read it ({exc})") from exc
