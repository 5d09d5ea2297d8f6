"""The MQTT publisher: one thread that drives paho-mqtt and the :class:`~edge.journal.cursor.PublishCursor`.

Events go to ``<mqtt_topic_prefix>/<line>/<station>/events`` (prefix ``edge-inspector`` by default) with QoS 1,
each payload the journaled JSON text (with its sequence). ``…/status`` carries a retained ``online`` once
connected, and the broker publishes the retained last will ``offline`` when the daemon vanishes (a clean stop
publishes ``offline`` itself).

Each connection is a fresh paho client on a clean session, its network loop turned by this thread
(:class:`~edge.journal.mqtt_loop.WakeableLoop`: a commit wakes it, idle it sleeps a second; no paho thread):
nothing paho queued for a dead connection is ever resent behind our back, so the order
on the wire is the cursor's order. A refused connection is logged once per outage with its cause (a TLS
certificate that ``mqtt_tls_ca`` does not trust, a refused login, an unreachable broker) and counted in
``edge_inspector_mqtt_connection_errors_total{reason}``; reconnects back off up to ``RETRY_MAX_SECONDS``.

>>> pub = MqttPublisher(MqttSettings(host="broker", line="l1", station="st-7"), journal, metrics)
>>> pub.start() … pub.stop()
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from edge.journal.cursor import Load, Publish, PublishCursor, SaveCursor
from edge.journal.mqtt_loop import WakeableLoop
from edge.journal.mqtt_settings import MqttSettings, tls_context
from edge.journal.store import StoredEvent

log = logging.getLogger("edge.journal.mqtt")
CURSOR = "mqtt"
RETRY_MIN_SECONDS = 0.25
RETRY_MAX_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 10.0
LOOP_SECONDS = 0.05  # while connecting and saying goodbye (paho's own loop)
IDLE_SECONDS = 1.0  # the longest a connected publisher sleeps: a commit wakes it (mqtt_loop), keepalive needs ~1 s
CURSOR_SAVE_SECONDS = 1.0  # the cursor is persisted at most this often (and at every disconnect and stop)
GOODBYE_SECONDS = 0.3  # a clean stop waits this long for the broker to take the retained "offline"


class JournalSource(Protocol):
    """What the publisher needs of a journal: :class:`edge.journal.journal.Journal` in the daemon's process, or
    :class:`edge.journal.follower.JournalFollower` in the publisher's own process."""

    @property
    def head(self) -> int: ...

    def read(self, after: int, limit: int) -> Sequence[StoredEvent]: ...

    def cursor(self, name: str) -> int: ...

    def save_cursor(self, name: str, seq: int) -> None: ...

    def add_listener(self, fn: Callable[[int], None]) -> Callable[[], None]: ...


def is_normal_score(event: StoredEvent) -> bool:
    """A gate's score of a frame it judged normal: what ``mqtt_normal_scores = false`` keeps off the broker."""
    if event.kind != "scored":
        return False
    try:
        return json.loads(event.payload).get("anomalous") is False
    except (ValueError, AttributeError):  # not a JSON object: published, as every event the journal cannot judge
        return False


class MqttPublisher:
    """Publishes the journal to one broker from the persisted cursor (see the module docstring)."""

    def __init__(self, settings: MqttSettings, journal: JournalSource, metrics: Any = None) -> None:
        self.settings, self.journal, self.metrics = settings, journal, metrics
        self.tls = tls_context(settings)
        self.core = PublishCursor(journal.cursor(CURSOR), journal.head, window=settings.window)
        self._stop = threading.Event()
        self._net = WakeableLoop()
        self._thread = threading.Thread(target=self._run, name="edge-mqtt", daemon=True)
        self._remove_listener = journal.add_listener(self._journaled)
        self._mids: dict[int, int] = {}  # paho message id → journal sequence, this connection only
        self._session_ok: bool | None = None
        self._unsaved: int | None = None  # a cursor the core asked to save, not yet handed to the journal
        self._saved_at = 0.0
        self._outage_logged = False
        self._acks = 0  # acknowledgements not yet counted in the metrics (this thread only)
        self.connected = False
        self.beat = time.monotonic()  # the publisher's thread was last seen running its loops (a hang shows)

    def start(self) -> None:
        self._gauges()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``offline`` (retained), disconnect cleanly and save the cursor; within ``timeout``."""
        self._remove_listener()
        self._stop.set()
        self._net.wake()
        self._thread.join(timeout)

    # -- the thread -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = RETRY_MIN_SECONDS
        while not self._stop.is_set():
            self.beat = time.monotonic()
            client = self._session()
            if client is None:
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            self._serve(client)
            delay = RETRY_MIN_SECONDS
            self._stop.wait(delay)  # a session that just broke is not retried in a tight loop
        self._net.close()

    def _client(self) -> paho.Client:
        s = self.settings
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=s.client_name)
        # The window's events and the status message: the cursor never hands paho more, so nothing waits in it.
        client.max_inflight_messages_set(s.window + 1)
        client.max_queued_messages_set(s.window + 2)
        client.will_set(s.status_topic, b"offline", qos=1, retain=True)
        if s.username:
            client.username_pw_set(s.username, s.password or None)
        if self.tls is not None:
            client.tls_set_context(self.tls)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_disconnect = self._on_disconnect
        return client

    def _session(self) -> paho.Client | None:
        """Connect and wait for the broker's CONNACK; None (logged, counted) when that fails."""
        client = self._client()
        self._session_ok = None
        try:
            client.connect(self.settings.host, self.settings.port, keepalive=self.settings.keepalive)
            deadline = time.monotonic() + CONNECT_TIMEOUT_SECONDS
            while self._session_ok is None and time.monotonic() < deadline and not self._stop.is_set():
                client.loop(LOOP_SECONDS)
                self.beat = time.monotonic()
        except ssl.SSLCertVerificationError as exc:
            self._refused(
                "tls", f"TLS: the broker's certificate is not trusted ({exc.verify_message}); check mqtt_tls_ca"
            )
        except ssl.SSLError as exc:
            self._refused("tls", f"TLS handshake failed ({exc.reason or exc}); check mqtt_tls_ca/cert/key")
        except OSError as exc:
            self._refused("network", f"cannot reach it ({exc.strerror or exc})")
        if self._session_ok:
            return client
        if self._session_ok is None and not self._stop.is_set() and client.socket() is not None:
            self._refused("network", "no answer to CONNECT")
        _close(client)
        if self.tls is not None:
            self.tls.close_wrapped()
        return None

    def _refused(self, reason: str, why: str) -> None:
        if self.metrics is not None:
            self.metrics.mqtt_connection_errors.labels(reason).inc()
        level = logging.ERROR if reason in ("tls", "auth") else logging.WARNING
        if not self._outage_logged or reason in ("tls", "auth"):
            log.log(
                level,
                "MQTT broker %s: %s; events stay in the journal (%d waiting) and are published once it is reachable",
                self.settings.address,
                why,
                self.core.backlog,
            )
        self._outage_logged = True

    def _serve(self, client: paho.Client) -> None:
        s = self.settings
        self._set_connected(True)
        self.core.journal_head(self.journal.head)  # not connected yet in the core: only updates its head
        log.info(
            "MQTT connected to %s; publishing to %s from sequence %d (%d waiting)",
            s.address,
            s.topic,
            self.core.cursor + 1,
            self.core.backlog,
        )
        self._outage_logged = False
        client.publish(s.status_topic, b"online", qos=1, retain=True)
        self._execute(client, self.core.connected())
        while not self._stop.is_set() and self.connected:
            # every turn: the core finds nothing to do unless the head moved, and a commit ends the turn at once
            self._execute(client, self.core.journal_head(self.journal.head))
            rc = self._net.turn(client, IDLE_SECONDS)
            self.beat = time.monotonic()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and self.connected:
                self._lost(client, f"connection lost ({paho.error_string(rc)})")
            self._save_cursor()
            self._gauges()  # once per loop, not per acknowledgement: a fifth of this thread's own work at 200/s
        if self.connected:  # stopping: say goodbye so the status is not left to the last will
            info = client.publish(s.status_topic, b"offline", qos=1, retain=True)
            deadline = time.monotonic() + GOODBYE_SECONDS
            while not info.is_published() and time.monotonic() < deadline:
                client.loop(LOOP_SECONDS)
            client.disconnect()
            self._set_connected(False)
            self._execute(client, self.core.disconnected())
        self._gauges()
        _close(client)

    def _lost(self, client: paho.Client, why: str) -> None:
        log.warning("MQTT broker %s: %s; will reconnect and resume from sequence %d", self.settings.address, why,
                    self.core.cursor + 1)  # fmt: skip
        self._outage_logged = True
        self._set_connected(False)
        self._execute(client, self.core.disconnected())

    def _execute(self, client: paho.Client, actions: list[Any]) -> None:
        pending = list(actions)
        while pending:
            a = pending.pop(0)
            if isinstance(a, Load):
                through = self.journal.head
                events = self.journal.read(a.after, a.limit)
                if len(events) == a.limit:
                    through = events[-1].sequence
                if not self.settings.normal_scores:  # stepped over like a gap: the cursor moves past them
                    events = [e for e in events if not is_normal_score(e)]
                pending += self.core.loaded([(e.sequence, e.payload) for e in events], through)
            elif isinstance(a, Publish):
                info = client.publish(self.settings.topic, a.payload.encode(), qos=1)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    if self.metrics is not None:
                        self.metrics.mqtt_publish_errors.inc()
                    self._lost(client, f"publish failed ({paho.error_string(info.rc)})")
                    return
                self._mids[info.mid] = a.sequence
            elif isinstance(a, SaveCursor):
                self._unsaved = a.sequence
        self._save_cursor(force=not self.connected)

    def _save_cursor(self, force: bool = False) -> None:
        """Hand the cursor to the journal, at most every CURSOR_SAVE_SECONDS: saving after every acknowledgement
        would cost a commit per event; a crash in between only means a few events are published twice."""
        now = time.monotonic()
        if self._unsaved is not None and (force or now - self._saved_at >= CURSOR_SAVE_SECONDS):
            self.journal.save_cursor(CURSOR, self._unsaved)
            self._unsaved, self._saved_at = None, now

    # -- paho callbacks (on this thread, inside client.loop) --------------------------------------------------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            kind = "auth" if reason.value in (4, 5, 134, 135) else "refused"
            self._refused(kind, f"the broker refused the connection ({reason}); check mqtt_username/password_file")
            self._session_ok = False
        else:
            self._mids.clear()
            self._session_ok = True

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        seq = self._mids.pop(mid, None)
        if seq is None:
            return  # the status message
        self._acks += 1
        self._execute(client, self.core.acked(seq))

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if self.connected and not self._stop.is_set():
            self._lost(client, f"disconnected ({reason})")

    def _journaled(self, head: int) -> None:  # the journal's writer thread, after each commit
        self._net.wake()

    def _set_connected(self, value: bool) -> None:
        self.connected = value
        if self.metrics is not None:
            self.metrics.mqtt_connected.set(int(value))

    def _gauges(self) -> None:
        # Once per loop of the thread. mqtt_enabled and journal_backlog are the daemon's
        # (edge.journal.publisher_process): it knows the journal's head at every commit.
        if self.metrics is not None:
            self.metrics.journal_published.set(self.core.cursor)
            if self._acks:
                self.metrics.mqtt_published.inc(self._acks)
        self._acks = 0


def _close(client: paho.Client) -> None:
    try:
        sock = client.socket()
        if sock is not None:
            sock.close()
    except OSError:
        pass
