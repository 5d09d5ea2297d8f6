"""What the MQTT publisher's own process tells the daemon: metric changes and cursor saves, as JSON lines.

The publisher runs in a process of its own (``edge.journal.publisher_process``), so paho's per-message work
never holds the daemon's GIL. It reports on its stdout, one JSON object per line:

- ``{"cursor": 1843}``: save the MQTT cursor (the last sequence the broker acknowledged); sent as the
  publisher asks for it (at most once a second, and at every disconnect and stop);
- ``{"metrics": [["mqtt_published", [], "inc", 12.0], ["mqtt_connected", [], "set", 1.0], …]}``: the
  changes since the last such line, flushed every ``FLUSH_SECONDS``: counter increments summed, the last
  value of each gauge;
- ``{"alive": 1}`` every ``HEARTBEAT_SECONDS`` while the publisher's thread is seen running its loops (it
  stops when that thread hangs, and the daemon's watchdog then replaces the process).

Only the metrics named in ``RELAYED`` are applied; anything else on the pipe is logged and ignored.

>>> metrics = RelayMetrics()              # in the publisher's process, in place of edge.serve.metrics.Metrics
>>> metrics.mqtt_published.inc()
>>> line = metrics.take()                 # b'{"metrics":[["mqtt_published",[],"inc",1.0]]}\\n' (None if unchanged)
>>> for msg in decode(line): apply(msg, daemon_metrics)
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

FLUSH_SECONDS = 0.1
HEARTBEAT_SECONDS = 1.0
ALIVE_LINE = b'{"alive": 1}\n'
RELAYED = {
    "mqtt_connected": "set",
    "mqtt_published": "inc",
    "mqtt_publish_errors": "inc",
    "mqtt_connection_errors": "inc",
    "journal_published": "set",
}


@dataclass(frozen=True)
class CursorSave:
    sequence: int


@dataclass(frozen=True)
class Alive:
    pass


@dataclass(frozen=True)
class MetricChange:
    name: str  # an attribute of edge.serve.metrics.Metrics, one of RELAYED
    labels: tuple[str, ...]
    op: str  # "inc" | "set"
    value: float


Message = CursorSave | MetricChange | Alive


def cursor_line(sequence: int) -> bytes:
    return json.dumps({"cursor": int(sequence)}).encode() + b"\n"


def decode(line: bytes) -> list[Message]:
    """The messages of one line; ValueError for a line this protocol does not know."""
    doc = json.loads(line)
    if not isinstance(doc, dict):
        raise ValueError(f"not a JSON object: {line[:80]!r}")
    if "cursor" in doc:
        return [CursorSave(int(doc["cursor"]))]
    if "alive" in doc:
        return [Alive()]
    out: list[Message] = []
    for name, labels, op, value in doc.get("metrics", []):
        if RELAYED.get(name) != op:
            raise ValueError(f"metric {name!r} with {op!r} is not relayed")
        out.append(MetricChange(str(name), tuple(str(x) for x in labels), op, float(value)))
    return out


def apply(change: MetricChange, metrics: Any) -> None:
    """Apply a relayed change to the daemon's metrics."""
    metric = getattr(metrics, change.name)
    if change.labels:
        metric = metric.labels(*change.labels)
    if change.op == "inc":
        metric.inc(change.value)
    else:
        metric.set(change.value)


class _Relayed:
    """One metric (or one labelled child) as the publisher uses it: ``inc``, ``set``, ``labels``."""

    def __init__(self, owner: RelayMetrics, name: str, labels: tuple[str, ...] = ()) -> None:
        self.owner, self.name, self.labels_ = owner, name, labels

    def labels(self, *values: str) -> _Relayed:
        return _Relayed(self.owner, self.name, tuple(values))

    def inc(self, amount: float = 1.0) -> None:
        self.owner.record(self.name, self.labels_, "inc", amount)

    def set(self, value: float) -> None:
        self.owner.record(self.name, self.labels_, "set", value)


class RelayMetrics:
    """Stands in for the daemon's metrics in the publisher's process; :meth:`take` returns what changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changes: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        self.changed = threading.Event()  # set by every change: the relay thread sleeps until then

    def __getattr__(self, name: str) -> _Relayed:
        if name not in RELAYED:
            raise AttributeError(name)
        return _Relayed(self, name)

    def record(self, name: str, labels: tuple[str, ...], op: str, value: float) -> None:
        with self._lock:
            entry = self._changes.get((name, labels))
            if entry is None or op == "set":
                self._changes[(name, labels)] = [op, float(value)]
            else:
                entry[1] += float(value)
        self.changed.set()

    def take(self) -> bytes | None:
        """One line with every change since the last call (None if nothing changed)."""
        with self._lock:
            changes, self._changes = self._changes, {}
        if not changes:
            return None
        rows = [[name, list(labels), op, value] for (name, labels), (op, value) in changes.items()]
        return json.dumps({"metrics": rows}).encode() + b"\n"
