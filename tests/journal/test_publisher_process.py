"""The MQTT publisher's own process against a real mosquitto: killed and restarted, dying with the daemon,
and what it reports (cursor saves and metrics, JSON lines on its stdout)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.bench.mosquitto import Mosquitto
from edge.journal.journal import Journal, JournalSettings
from edge.journal.mqtt_settings import MqttSettings
from edge.journal.publisher_process import PublisherProcess
from edge.journal.relay import ALIVE_LINE, Alive, CursorSave, MetricChange, RelayMetrics, cursor_line, decode
from tests.journal.broker import Subscriber, first_occurrences
from tests.journal.test_mqtt import TOPIC, WAIT, Station, record, validate

STATUS = "edge-inspector/line-1/st-7/status"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_killed_publisher_process_is_restarted_and_nothing_is_lost(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sub = Subscriber(broker, TOPIC)
    station = Station(tmp_path / "state", broker)
    try:
        sub.wait(lambda: station.pub.connected, WAIT, "the publisher did not connect")
        first = station.pub.pid
        assert first is not None and first != os.getpid()
        for i in range(1, 101):
            station.journal.append(record(i))
        sub.wait(lambda: len(sub.events()) >= 30, WAIT, "the first events did not arrive")
        os.kill(first, signal.SIGKILL)  # while it publishes
        for i in range(101, 201):
            station.journal.append(record(i))
        sub.wait(lambda: station.pub.restarts >= 1, WAIT, "the publisher's process was not started again")
        sub.wait(lambda: set(range(1, 201)) <= {e["sequence"] for e in sub.events()}, WAIT, "not all 200 arrived")
        sub.wait(lambda: station.sample("edge_inspector_journal_backlog_events") == 0, WAIT, "backlog not drained")
        sub.wait(lambda: station.sample("edge_inspector_mqtt_connected") == 1, WAIT, "not connected again")
        assert station.pub.pid != first
        assert station.sample("edge_inspector_mqtt_publisher_restarts_total") == 1
    finally:
        station.close()
        sub.close()
    events = sub.events()
    assert first_occurrences(events) == list(range(1, 201))  # in order, no gaps
    by_seq: dict[int, bytes] = {}
    for payload in sub.payloads():  # a repeat carries the same sequence and bytes
        assert by_seq.setdefault(json.loads(payload)["sequence"], payload) == payload
    validate(events)
    assert any(
        r.levelname == "ERROR" and "the MQTT publisher process ended (killed by SIGKILL)" in r.getMessage()
        for r in caplog.records
    ), caplog.text
    reopened = Journal(JournalSettings(tmp_path / "state"))
    try:
        assert reopened.cursor("mqtt") == 200  # saved through the daemon's journal at stop
    finally:
        reopened.close()


DAEMON = """
import sys, time
from pathlib import Path
from edge.journal.journal import Journal, JournalSettings
from edge.journal.mqtt_settings import MqttSettings
from edge.journal.publisher_process import PublisherProcess
journal = Journal(JournalSettings(Path(sys.argv[1]), floor_cursors=("mqtt",), origin=("line-1", "st-7")))
pub = PublisherProcess(MqttSettings("127.0.0.1", "line-1", "st-7", port=int(sys.argv[2])), journal)
pub.start()
while not pub.connected:
    time.sleep(0.01)
print(pub.pid, flush=True)
time.sleep(600)
"""


def test_the_publisher_process_dies_with_the_daemon_and_the_broker_says_offline(
    broker: Mosquitto, tmp_path: Path
) -> None:
    daemon = subprocess.Popen(
        [sys.executable, "-c", DAEMON, str(tmp_path / "state"), str(broker.port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert daemon.stdout is not None
        child = int(daemon.stdout.readline())
        watcher = Subscriber(broker, STATUS, client_id="status-watcher")
        watcher.wait(lambda: (STATUS, b"online", True) in watcher.messages, WAIT, "no retained online")
        assert alive(child)
        daemon.kill()  # kill -9: no clean stop, nobody closes the child's stdin first
        daemon.wait(WAIT)
        watcher.wait(lambda: not alive(child), WAIT, "the publisher's process outlived the daemon")
        watcher.wait(lambda: any(p == b"offline" for _, p, _ in watcher.messages), WAIT, "no last will offline")
        watcher.close()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if daemon.stdout is not None:
            daemon.stdout.close()


def test_sigterm_to_the_whole_group_leaves_stopping_to_the_daemon(broker: Mosquitto, tmp_path: Path) -> None:
    station = Station(tmp_path / "state", broker)
    try:
        Subscriber(broker, TOPIC).wait(lambda: station.pub.connected, WAIT, "the publisher did not connect")
        pid = station.pub.pid
        assert pid is not None
        os.kill(pid, signal.SIGTERM)  # as systemd's stop (KillMode=control-group) and Ctrl-C reach it
        os.kill(pid, signal.SIGINT)
        station.journal.append(record(1)).result()
        sub = Subscriber(broker, TOPIC, client_id="after-sigterm")
        sub.wait(lambda: station.pub.cursor >= 1, WAIT, "the publisher stopped publishing after SIGTERM")
        assert alive(pid) and station.pub.restarts == 0
        sub.close()
    finally:
        station.close()
    assert not alive(pid)  # the daemon's stop ended it
    reopened = Journal(JournalSettings(tmp_path / "state"))
    try:
        assert reopened.cursor("mqtt") == 1  # and it handed over its cursor on the way out
    finally:
        reopened.close()


def test_a_hung_publisher_process_is_replaced_by_the_watchdog(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sub = Subscriber(broker, TOPIC)
    journal = Journal(JournalSettings(tmp_path / "state", floor_cursors=("mqtt",), origin=("line-1", "st-7")))
    settings = MqttSettings("127.0.0.1", "line-1", "st-7", port=broker.port)
    pub = PublisherProcess(settings, journal, watchdog_seconds=3.0)
    pub.start()
    try:
        sub.wait(lambda: pub.connected, WAIT, "the publisher did not connect")
        hung = pub.pid
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)  # alive, but silent: no heartbeat, nothing published
        for i in range(1, 21):
            journal.append(record(i))
        sub.wait(lambda: pub.restarts >= 1, WAIT, "the hung process was not replaced")
        sub.wait(lambda: set(range(1, 21)) <= {e["sequence"] for e in sub.events()}, WAIT, "not all 20 arrived")
        assert pub.pid != hung and not alive(hung)
    finally:
        pub.stop()
        journal.close()
        sub.close()
    assert "sent nothing for 3 s (not even its heartbeat); killing it" in caplog.text
    assert "the MQTT publisher process ended (killed by SIGKILL)" in caplog.text


def test_the_relay_sums_counters_keeps_the_last_gauge_and_refuses_unknown_lines() -> None:
    metrics = RelayMetrics()
    assert metrics.take() is None
    metrics.mqtt_published.inc()
    metrics.mqtt_published.inc(2)
    metrics.mqtt_connected.set(1)
    metrics.mqtt_connected.set(0)
    metrics.mqtt_connection_errors.labels("tls").inc()
    line = metrics.take()
    assert line is not None and line.endswith(b"\n")
    assert set(decode(line)) == {
        MetricChange("mqtt_published", (), "inc", 3.0),
        MetricChange("mqtt_connected", (), "set", 0.0),
        MetricChange("mqtt_connection_errors", ("tls",), "inc", 1.0),
    }
    assert metrics.take() is None  # taken
    assert decode(cursor_line(1843)) == [CursorSave(1843)]
    assert decode(ALIVE_LINE) == [Alive()]
    with pytest.raises(AttributeError):
        metrics.journal_head.set(1)  # the publisher never sets the journal's own gauges
    with pytest.raises(ValueError, match="not relayed"):
        decode(b'{"metrics": [["journal_head", [], "set", 5]]}')
    with pytest.raises(ValueError):
        decode(b"[1, 2]")
