"""The MQTT publisher's cursor as a sans-I/O state machine: connection, journal and broker inputs in, actions out.

The cursor is the last journal sequence the broker acknowledged with everything before it (PUBACK, QoS 1).
It is persisted (:class:`SaveCursor`), so after a broker outage, a network cut or a daemon crash publishing
resumes right after it: everything missing is published again in sequence order, and anything the broker
had already taken arrives twice with the same sequence (at-least-once; consumers de-duplicate on it).

At most ``window`` events are in flight; the rest stays in the journal on disk and is read (:class:`Load`)
as acknowledgements make room, so a long outage never grows memory. No sockets, threads or clock in
here: ``edge.journal.mqtt`` drives it and executes its actions.

>>> core = PublishCursor(cursor=41, head=50, window=100)
>>> core.connected()                     # [Load(after=41, limit=100)]
>>> core.loaded([(42, "{…}"), …], through=50)   # [Publish(42, "{…}"), …]
>>> core.acked(42)                       # [] … then SaveCursor(50) once all are acknowledged
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Load:
    """Read up to ``limit`` journal events with sequence > ``after`` and pass them to ``loaded``."""

    after: int
    limit: int


@dataclass(frozen=True)
class Publish:
    sequence: int
    payload: str


@dataclass(frozen=True)
class SaveCursor:
    sequence: int


Action = Load | Publish | SaveCursor


@dataclass
class PublishCursor:
    """See the module docstring. The cursor is saved every ``save_every`` acknowledgements, when the backlog
    is empty, and when the connection ends."""

    cursor: int
    head: int = 0
    window: int = 100
    save_every: int = 200
    is_connected: bool = False
    sent_to: int = field(init=False)
    inflight: dict[int, bool] = field(init=False, default_factory=dict)  # sequence → acknowledged
    loading: bool = field(init=False, default=False)
    saved: int = field(init=False)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        self.sent_to = self.cursor
        self.saved = self.cursor
        self.head = max(self.head, self.cursor)

    @property
    def backlog(self) -> int:
        """Events journaled but not acknowledged by the broker."""
        return max(self.head - self.cursor, 0)

    # -- inputs -------------------------------------------------------------------------------------------
    def connected(self) -> list[Action]:
        """A new broker session: publish again from the cursor (what was in flight may not have arrived)."""
        self.is_connected = True
        self._restart()
        return self._pump()

    def disconnected(self) -> list[Action]:
        """The session ended; unacknowledged events will be sent again on the next connection."""
        self.is_connected = False
        self._restart()
        return self._save(force=True)

    def journal_head(self, head: int) -> list[Action]:
        """New events were committed (``head`` is the newest sequence)."""
        self.head = max(self.head, head)
        return self._pump()

    def loaded(self, events: Sequence[tuple[int, str]], through: int) -> list[Action]:
        """The answer to :class:`Load`: events in order; the journal has no others up to ``through``
        (retention or a failed batch can leave gaps; they are stepped over)."""
        self.loading = False
        if not self.is_connected:
            return []
        out: list[Action] = []
        for seq, text in events:
            if seq > self.sent_to:
                out.append(Publish(seq, text))
                self.inflight[seq] = False
                self.sent_to = seq
        self.sent_to = max(self.sent_to, min(through, self.head))
        out += self._advance()
        return out + self._pump()

    def acked(self, sequence: int) -> list[Action]:
        """The broker acknowledged ``sequence`` (PUBACK)."""
        if sequence not in self.inflight:
            return []  # from a session that has ended: its events are being sent again anyway
        self.inflight[sequence] = True
        return self._advance() + self._pump()

    def failed(self) -> list[Action]:
        """A publish could not be handed to the connection: treat it as lost with the connection."""
        return self.disconnected()

    # -- internals ----------------------------------------------------------------------------------------
    def _restart(self) -> None:
        self.inflight.clear()
        self.sent_to = self.cursor
        self.loading = False

    def _advance(self) -> list[Action]:
        before = self.cursor
        while self.inflight:
            first = next(iter(self.inflight))
            if not self.inflight[first]:
                self.cursor = first - 1 if first - 1 > self.cursor else self.cursor
                break
            del self.inflight[first]
            self.cursor = first
        if not self.inflight:
            self.cursor = max(self.cursor, self.sent_to)  # gaps up to sent_to hold nothing to publish
        return self._save() if self.cursor > before else []

    def _save(self, force: bool = False) -> list[Action]:
        due = self.cursor - self.saved >= self.save_every or self.cursor >= self.head or force
        if self.cursor > self.saved and due:
            self.saved = self.cursor
            return [SaveCursor(self.cursor)]
        return []

    def _pump(self) -> list[Action]:
        room = self.window - len(self.inflight)
        if not self.is_connected or self.loading or room <= 0 or self.sent_to >= self.head:
            return []
        self.loading = True
        return [Load(self.sent_to, room)]
