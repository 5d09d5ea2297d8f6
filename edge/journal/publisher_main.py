"""The MQTT publisher's own process: ``python -m edge.journal.publisher_main``, started by the daemon.

It reads its start line (JSON) from stdin, runs :class:`~edge.journal.mqtt.MqttPublisher` on a read-only
:class:`~edge.journal.follower.JournalFollower` of the daemon's journal, and reports on stdout (see
``edge.journal.relay``). After the start line, each stdin line is the daemon's word of a commit,
``{"head": N}`` (:func:`head_line`). It stops cleanly (``offline`` published, cursor sent) when its stdin closes, which
is how the daemon stops it: it ignores SIGTERM and SIGINT, which systemd and a terminal send to the whole
group, so the daemon's drain decides when it goes. It dies with the daemon: the kernel kills it when the
daemon's thread that started it ends (``PR_SET_PDEATHSIG``), so after a ``kill -9`` of the daemon the broker
publishes the last will and a restarted daemon never meets a publisher of its predecessor. It runs at a lower
CPU priority (``NICE``): publishing can wait a few milliseconds, the gate cannot.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, BinaryIO

from edge import LOG_FORMAT
from edge.journal.follower import POLL_SECONDS, JournalFollower
from edge.journal.mqtt import MqttPublisher
from edge.journal.mqtt_settings import MqttSettings
from edge.journal.relay import ALIVE_LINE, FLUSH_SECONDS, HEARTBEAT_SECONDS, RelayMetrics

log = logging.getLogger("edge.journal.mqtt")
NICE = 10
STALL_SECONDS = 60.0  # the publisher's loops never block longer (connect timeout 10 s, back-off 5 s, DNS)
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PATHS = ("tls_ca", "tls_cert", "tls_key")


def start_line(settings: MqttSettings, journal: Path, cursor: int, log_level: int) -> bytes:
    """What the daemon writes to a new publisher process's stdin (the password goes here, never on argv)."""
    mqtt = {k: (str(v) if k in _PATHS and v is not None else v) for k, v in asdict(settings).items()}
    doc = {"mqtt": mqtt, "journal": str(journal), "cursor": cursor, "parent": os.getpid(), "log_level": log_level}
    return json.dumps(doc).encode() + b"\n"


def head_line(head: int) -> bytes:
    """What the daemon writes to the process's stdin after a commit: the journal's newest sequence."""
    return b'{"head": %d}\n' % head


def read_head(line: bytes) -> int:
    """The sequence of a :func:`head_line`; ValueError (or KeyError, TypeError) for anything else."""
    head = json.loads(line)["head"]
    if type(head) is not int or head < 0:
        raise ValueError(f"head must be a sequence, got {head!r}")
    return head


def read_start(line: bytes) -> tuple[MqttSettings, Path, int, int, int]:
    doc = json.loads(line)
    known = {f.name for f in fields(MqttSettings)}
    mqtt: dict[str, Any] = {k: v for k, v in doc["mqtt"].items() if k in known}
    for k in _PATHS:
        if mqtt.get(k) is not None:
            mqtt[k] = Path(mqtt[k])
    return MqttSettings(**mqtt), Path(doc["journal"]), int(doc["cursor"]), int(doc["parent"]), int(doc["log_level"])


class _Out:
    """Our stdout, one whole line at a time from any thread; a daemon that is gone ends this process."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.lock = stream, threading.Lock()

    def write(self, line: bytes) -> None:
        try:
            with self.lock:
                self.stream.write(line)
                self.stream.flush()
        except (BrokenPipeError, ValueError):
            os._exit(0)


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux") and ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL):
        log.warning(
            "PR_SET_PDEATHSIG refused (%s): this process ends when its stdin closes", os.strerror(ctypes.get_errno())
        )
    if os.getppid() != parent:  # the daemon died before the line above: nobody to publish for
        os._exit(0)


def _lower_priority() -> None:
    try:
        os.nice(NICE)
    except OSError as exc:  # a seccomp filter that refuses setpriority (our unit allows it back from @resources)
        log.info("the MQTT publisher runs at the daemon's CPU priority (nice refused: %s)", exc.strerror or exc)


def _relay(
    follower: JournalFollower, publisher: MqttPublisher, metrics: RelayMetrics, out: _Out, stop: threading.Event
) -> None:
    """Metric changes to the daemon at most every FLUSH_SECONDS, and only when there are some; the heartbeat and
    the fallback poll of the journal every second. Asleep otherwise: each wake-up costs 0.1-0.2 ms of CPU on a
    small VM, which ten a second made the bulk of an idle publisher's."""
    beat_at = poll_at = time.monotonic()
    while not stop.is_set():
        due = min(beat_at + HEARTBEAT_SECONDS, poll_at + POLL_SECONDS)
        metrics.changed.wait(max(0.0, due - time.monotonic()))
        if metrics.changed.is_set() and not stop.wait(FLUSH_SECONDS):  # gather what follows for one line
            metrics.changed.clear()
            if (line := metrics.take()) is not None:
                out.write(line)
        now = time.monotonic()
        if now - poll_at >= POLL_SECONDS:
            poll_at = now
            follower.poll()  # in case word of a commit went missing (the daemon drops it rather than block)
        if now - beat_at >= HEARTBEAT_SECONDS:
            beat_at = now
            if now - publisher.beat < STALL_SECONDS:
                out.write(ALIVE_LINE)


def _follow(stdin: BinaryIO, follower: JournalFollower) -> None:
    """The daemon's word of each commit, until it closes our stdin (which is how it stops us)."""
    for line in stdin:
        try:
            follower.committed(read_head(line))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("the daemon said something unexpected on stdin: %r (%s)", line[:120], exc)


def main() -> int:
    # The daemon stops us (stdin closes): systemd's SIGTERM to the whole unit and a terminal's Ctrl-C reach this
    # process too, and it must still say goodbye and hand over its cursor when the daemon asks.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    start = sys.stdin.buffer.readline()
    if not start:
        return 0  # the daemon closed our stdin before starting us: stopping
    settings, journal, cursor, parent, level = read_start(start)
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    _die_with_parent(parent)
    _lower_priority()
    out, metrics = _Out(sys.stdout.buffer), RelayMetrics()
    follower = JournalFollower(journal, out.write, cursor)
    publisher = MqttPublisher(settings, follower, metrics)
    stop = threading.Event()
    relay = threading.Thread(
        target=_relay, args=(follower, publisher, metrics, out, stop), name="edge-relay", daemon=True
    )
    publisher.start()
    relay.start()
    _follow(sys.stdin.buffer, follower)
    publisher.stop()
    stop.set()
    metrics.changed.set()  # wakes the relay thread
    relay.join()
    if (line := metrics.take()) is not None:
        out.write(line)
    follower.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
