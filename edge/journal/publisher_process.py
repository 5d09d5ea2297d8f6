"""The daemon's side of the MQTT publisher's own process: start it, relay what it reports, restart it, stop it.

Publishing runs in a process of its own (``edge.journal.publisher_main``) so that paho's per-message work
(packets, socket writes, acknowledgements: about 0.1 ms of Python per event) never holds the daemon's GIL
beside the gate; measured in ``edge bench --journal``. The process reads the journal's SQLite file itself
and tells the daemon what to commit (cursor saves) and what to count (metrics) on its stdout; its log lines
go to the daemon's stderr under the same logger name (``edge.journal.mqtt``). If it dies, it is started
again (backing off from ``RESTART_MIN_SECONDS`` to ``RESTART_MAX_SECONDS``), logged and counted in
``edge_inspector_mqtt_publisher_restarts_total``; the events wait in the journal and are published from the
cursor, in order, as after a broker outage. A process that hangs (no line, not even its heartbeat, for
``WATCHDOG_SECONDS``; it beats only while its publishing loop runs) is killed and takes the same path.

>>> publisher = PublisherProcess(settings, journal, metrics)
>>> publisher.start()
>>> publisher.cursor, publisher.connected      # as the process last reported
>>> publisher.stop(timeout=2.5)                # closes its stdin: "offline" published, cursor saved
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

from edge.journal.journal import Journal
from edge.journal.mqtt import CURSOR
from edge.journal.mqtt_settings import MqttSettings
from edge.journal.publisher_main import head_line, start_line
from edge.journal.relay import Alive, CursorSave, apply, decode

log = logging.getLogger("edge.journal.mqtt")
RESTART_MIN_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a process that ran this long restarts after the shortest delay again
WATCHDOG_SECONDS = 90.0  # no line (heartbeats come every second) for this long: the process hangs, replace it


class PublisherProcess:
    """See the module docstring. ``cursor`` and ``connected`` are what the process last reported."""

    def __init__(
        self,
        settings: MqttSettings,
        journal: Journal,
        metrics: Any = None,
        *,
        watchdog_seconds: float = WATCHDOG_SECONDS,
    ) -> None:
        self.settings, self.journal, self.metrics = settings, journal, metrics
        self.watchdog_seconds = watchdog_seconds
        self._heard = time.monotonic()  # the last line from the process (heartbeats every HEARTBEAT_SECONDS)
        self.cursor = journal.cursor(CURSOR)
        self.connected = False
        self.restarts = 0
        self.pid: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stdin: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        # This thread starts the process and lives as long as it: the process's PR_SET_PDEATHSIG follows it.
        self._thread = threading.Thread(target=self._run, name="edge-mqtt-process", daemon=True)
        self._remove_listener: Any = None

    def start(self) -> None:
        if self.metrics is not None:
            self.metrics.mqtt_enabled.set(1)
        # At every commit: the backlog (the daemon's own head minus the reported cursor), and word to the process.
        self._remove_listener = self.journal.add_listener(self._committed)
        self._backlog()
        self._thread.start()
        threading.Thread(target=self._watch, name="edge-mqtt-watchdog", daemon=True).start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the process's stdin (it publishes ``offline`` and sends its cursor), wait, then kill it."""
        self._stop.set()
        if self._remove_listener is not None:
            self._remove_listener()
        self._close_stdin()
        self._thread.join(timeout)
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            log.warning("the MQTT publisher process did not stop within %.1f s; killing it", timeout)
            proc.kill()
            self._thread.join(1.0)
        self._set_connected(False)

    # -- the thread ---------------------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = RESTART_MIN_SECONDS
        while not self._stop.is_set():
            started = time.monotonic()
            code = self._serve()
            if self._stop.is_set():
                break
            self._set_connected(False)
            self.restarts += 1
            if self.metrics is not None:
                self.metrics.mqtt_publisher_restarts.inc()
            delay = RESTART_MIN_SECONDS if time.monotonic() - started >= STABLE_SECONDS else delay
            log.error(
                "the MQTT publisher process ended (%s); starting it again in %.0f s, events wait in the journal",
                _exit_reason(code),
                delay,
            )
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, RESTART_MAX_SECONDS)

    def _watch(self) -> None:
        """Kill a process that sent nothing (not even its heartbeat) for ``watchdog_seconds``: it hangs. Its end
        then takes the restart path."""
        while not self._stop.wait(1.0):
            with self._lock:
                proc = self._proc
            if proc is not None and proc.poll() is None and time.monotonic() - self._heard > self.watchdog_seconds:
                log.error(
                    "the MQTT publisher process sent nothing for %.0f s (not even its heartbeat); killing it",
                    self.watchdog_seconds,
                )
                proc.kill()
                self._heard = time.monotonic()

    def _serve(self) -> int:
        """Run one publisher process until it ends; its exit code."""
        cmd = [sys.executable, "-m", "edge.journal.publisher_main"]
        self._heard = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        assert proc.stdin is not None and proc.stdout is not None
        cursor = max(self.cursor, self.journal.cursor(CURSOR))
        with self._lock:
            self._proc, self._stdin, self.pid = proc, proc.stdin, proc.pid
            try:
                proc.stdin.write(start_line(self.settings, self.journal.settings.path, cursor, log.getEffectiveLevel()))
                proc.stdin.flush()
                # word of commits goes out from the journal's writer thread, which must never wait on this pipe
                os.set_blocking(proc.stdin.fileno(), False)
            except OSError:
                pass  # it died at once: its exit code says why
        if self._stop.is_set():  # stop() came while it was starting
            self._close_stdin()
        with proc.stdout:
            for line in proc.stdout:
                self._handle(line)
        code = proc.wait()
        self._close_stdin()
        with self._lock:
            self._proc = None
        return code

    def _handle(self, line: bytes) -> None:
        self._heard = time.monotonic()
        try:
            messages = decode(line)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("the MQTT publisher process said something unexpected: %r (%s)", line[:120], exc)
            return
        for m in messages:
            if isinstance(m, Alive):
                continue
            if isinstance(m, CursorSave):
                self.cursor = max(self.cursor, m.sequence)
                self.journal.save_cursor(CURSOR, m.sequence)
            else:
                if m.name == "journal_published":
                    self.cursor = max(self.cursor, int(m.value))
                elif m.name == "mqtt_connected":
                    self.connected = bool(m.value)
                if self.metrics is not None:
                    apply(m, self.metrics)
        self._backlog()

    def _committed(self, head: int) -> None:
        """After each commit (on the journal's writer thread): the backlog, and word to the process, which then
        publishes without polling the file. Never blocks: with the pipe full (a process that stopped reading:
        the watchdog's case) the word is dropped, and the process's own slow poll finds the head."""
        self._backlog()
        with self._lock:
            stdin = self._stdin
            if stdin is None:
                return
            # each commit's head is a new, higher one: nothing here repeats. BlockingIOError: the pipe is full;
            # BrokenPipeError: the process just ended (the restart path)
            with contextlib.suppress(OSError):
                os.write(stdin.fileno(), head_line(head))

    def _close_stdin(self) -> None:
        with self._lock:
            stdin, self._stdin = self._stdin, None
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()

    def _backlog(self) -> None:
        if self.metrics is not None:
            self.metrics.journal_backlog.set(max(self.journal.head - self.cursor, 0))

    def _set_connected(self, value: bool) -> None:
        self.connected = value
        if self.metrics is not None:
            self.metrics.mqtt_connected.set(int(value))


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
