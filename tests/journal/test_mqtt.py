"""Store-and-forward to a real mosquitto: outages, order, duplicates, TLS, and the payload schema."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import jsonschema
import pytest
from prometheus_client import CollectorRegistry

from edge.bench.mosquitto import Mosquitto
from edge.journal.journal import Journal, JournalSettings
from edge.journal.mqtt_settings import MqttSettings
from edge.journal.publisher_process import PublisherProcess
from edge.journal.records import DroppedBody, Record
from edge.serve.metrics import Metrics
from tests.journal.broker import Broker, Subscriber, first_occurrences
from tests.serve.certs import make_certs

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "deploy" / "mqtt" / "event.schema.json").read_text())
TOPIC = "edge-inspector/line-1/st-7/events"
WAIT = 120.0  # generous: a deadline so a broken run fails instead of hanging, not a speed requirement


def validate(events: list[dict]) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for e in events:
        validator.validate(e)


def record(i: int) -> Record:
    return Record(f"inspect:{1 + i % 3}", DroppedBody("stale", f"frame {i} waited"), i, float(i))


class Station:
    """A journal and its publisher's process, as ``edge serve`` runs them (metrics on a private registry)."""

    def __init__(self, state: Path, broker: Mosquitto, **mqtt: object) -> None:
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        settings = JournalSettings(state, floor_cursors=("mqtt",), origin=("line-1", "st-7"))
        self.journal = Journal(settings, metrics=self.metrics)
        self.pub = PublisherProcess(
            MqttSettings("127.0.0.1", "line-1", "st-7", port=broker.port, **mqtt),  # type: ignore[arg-type]
            self.journal,
            self.metrics,
        )
        self.pub.start()

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.registry.get_sample_value(name, labels or {}) or 0.0

    def close(self) -> None:
        self.pub.stop()
        self.journal.close()


def refused(station: Station) -> float:
    return station.sample("edge_inspector_mqtt_connection_errors_total", {"reason": "network"})


def test_broker_outage_mid_run_subscriber_gets_all_100_in_order_without_gaps(broker: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(broker, TOPIC)
    station = Station(tmp_path / "state", broker)
    try:
        sub.wait(lambda: station.pub.connected, WAIT, "the publisher did not connect")
        for i in range(1, 101):
            station.journal.append(record(i)).result()
            if i == 30:
                sub.wait(lambda: len(sub.events()) >= 30, WAIT, "the first 30 events did not arrive")
                broker.stop()
                sub.wait(lambda: not station.pub.connected, WAIT, "the publisher did not notice the outage")
            if i == 70:
                assert station.sample("edge_inspector_journal_backlog_events") >= 40  # on disk, waiting
                assert station.sample("edge_inspector_mqtt_connected") == 0
                sub.wait(lambda: refused(station) >= 1, WAIT, "no reconnect attempt failed during the outage")
                broker.start()
        sub.wait(lambda: set(range(1, 101)) <= {e["sequence"] for e in sub.events()}, WAIT, "not all 100 arrived")
        sub.wait(lambda: station.sample("edge_inspector_journal_backlog_events") == 0, WAIT, "backlog not drained")
    finally:
        station.close()
        sub.close()
    events = sub.events()
    assert first_occurrences(events) == list(range(1, 101))  # in sequence order, no gaps
    by_seq: dict[int, bytes] = {}
    for payload in sub.payloads():  # a repeat carries the same sequence and the same bytes
        seq = json.loads(payload)["sequence"]
        assert by_seq.setdefault(seq, payload) == payload
    validate(events)
    assert {e["line"] for e in events} == {"line-1"} and {e["station"] for e in events} == {"st-7"}
    reopened = Journal(JournalSettings(tmp_path / "state"))
    try:
        assert reopened.cursor("mqtt") == 100  # persisted: a restart publishes nothing again
    finally:
        reopened.close()


def test_status_is_retained_online_and_the_last_will_says_offline(broker: Mosquitto, tmp_path: Path) -> None:
    station = Station(tmp_path / "state", broker)
    status = "edge-inspector/line-1/st-7/status"
    try:
        watcher = Subscriber(broker, status, client_id="status-watcher")
        watcher.wait(lambda: any(p == b"online" for _, p, _ in watcher.messages), WAIT, "no online status")
        watcher.close()
        retained = Subscriber(broker, status, client_id="retained-watcher")  # subscribes after it was published
        retained.wait(lambda: (status, b"online", True) in retained.messages, WAIT, "online is not retained")
        retained.close()
    finally:
        station.close()
    late = Subscriber(broker, status, client_id="late-watcher")  # a clean stop leaves a retained offline
    try:
        late.wait(lambda: (status, b"offline", True) in late.messages, WAIT, "no retained offline after stop")
    finally:
        late.close()


def test_the_payloads_follow_the_schema_for_every_kind(broker: Mosquitto, tmp_path: Path) -> None:
    import numpy as np

    from edge.journal.records import ErrorBody, Evidence, FinishedBody, ScoredBody

    sub = Subscriber(broker, TOPIC)
    station = Station(tmp_path / "state", broker)
    bodies = [
        ScoredBody(0.91, True, 0.5, "gate-1", (3, 4, 20, 30), 0.004),
        ScoredBody(0.12, False, 0.5, "gate-1", None, 0.003),
        FinishedBody(1, "A scratch.", '{"anomaly": true}', "", "end_of_turn", "ab" * 32, "", 0.1, 2.0, 300, 12),
        DroppedBody("queue_full", "the queue was full"),
        ErrorBody("EngineError", "onnxruntime failed", ""),
    ]
    frame = np.full((48, 64, 3), 200, np.uint8)
    try:
        for i, body in enumerate(bodies, 1):
            ev = Evidence(frame=frame, anomaly_map=np.zeros((8, 8), np.float32)) if i == 1 else None
            station.journal.append(Record("inspect:1", body, i, float(i), anomalous=i == 1, evidence=ev)).result()
        sub.wait(lambda: len(sub.events()) >= len(bodies), WAIT, "events did not arrive")
    finally:
        station.close()
        sub.close()
    events = sub.events()
    validate(events)
    assert [e["kind"] for e in events] == ["scored", "scored", "finished", "dropped", "error"]
    assert [r["role"] for r in events[0]["evidence"]] == ["frame", "anomaly_map"]


def test_normal_scores_can_stay_in_the_journal(broker: Mosquitto, tmp_path: Path) -> None:
    """mqtt_normal_scores = false: the broker gets anomalous scores and every other kind, in order, and the cursor
    steps over the normal scores (acknowledged with the rest, backlog drained); the journal keeps all of them."""
    from edge.journal.records import ScoredBody

    sub = Subscriber(broker, TOPIC)
    station = Station(tmp_path / "state", broker, normal_scores=False)
    try:
        sub.wait(lambda: station.pub.connected, WAIT, "the publisher did not connect")
        for i in range(1, 31):
            bad = i % 5 == 0
            body = ScoredBody(0.9 if bad else 0.1, bad, 0.5, "gate-1", None, 0.003)
            station.journal.append(Record("camera:1", body, i, float(i), anomalous=bad)).result()
        station.journal.append(Record("camera:1", ScoredBody(0.1, False, 0.5, "g", None, 0.0), 31, 31.0)).result()
        station.journal.append(record(32)).result()  # a drop: published as always
        sub.wait(lambda: 32 in {e["sequence"] for e in sub.events()}, WAIT, "the last event did not arrive")
        sub.wait(lambda: station.sample("edge_inspector_journal_backlog_events") == 0, WAIT, "backlog not drained")
        assert [e.sequence for e in station.journal.read(0, 100)] == list(range(1, 33))
    finally:
        station.close()
        sub.close()
    events = sub.events()
    # the 6 anomalous scores, the score whose record left anomalous unknown (kept: only a known normal is
    # skipped), the drop
    assert first_occurrences(events) == [5, 10, 15, 20, 25, 30, 31, 32]
    validate(events)
    reopened = Journal(JournalSettings(tmp_path / "state"))
    try:
        assert reopened.cursor("mqtt") == 32
    finally:
        reopened.close()


@pytest.fixture()
def pki(tmp_path: Path) -> dict[str, Path]:
    return make_certs(tmp_path / "pki")


def test_tls_with_a_client_certificate_and_a_wrong_ca_is_refused(
    tmp_path: Path, pki: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    broker = Broker(tmp_path / "broker", tls=pki).start()
    try:
        good = Station(tmp_path / "good", broker, tls_ca=pki["ca"], tls_cert=pki["client"], tls_key=pki["client_key"])
        try:
            for i in range(1, 6):
                good.journal.append(record(i)).result()
            check = threading.Event()
            deadline_ok = _wait(lambda: good.sample("edge_inspector_journal_published_sequence") == 5, check)
            assert deadline_ok, "events were not acknowledged over TLS"
            assert good.sample("edge_inspector_mqtt_connected") == 1
        finally:
            good.close()
        capfd.readouterr()
        # the publisher's process logs to the daemon's stderr
        bad = Station(
            tmp_path / "bad", broker, tls_ca=pki["other_ca"], tls_cert=pki["client"], tls_key=pki["client_key"]
        )
        try:
            bad.journal.append(record(1)).result()
            refused = _wait(
                lambda: bad.sample("edge_inspector_mqtt_connection_errors_total", {"reason": "tls"}) >= 1,
                threading.Event(),
            )
            assert refused, "a broker certificate from another CA was not refused"
            assert bad.sample("edge_inspector_mqtt_connected") == 0
            assert bad.sample("edge_inspector_journal_published_sequence") == 0
            assert bad.sample("edge_inspector_journal_backlog_events") == 1
        finally:
            bad.close()
        lines = [line for line in capfd.readouterr().err.splitlines() if "ERROR edge.journal.mqtt:" in line]
        assert any("not trusted" in line and "mqtt_tls_ca" in line and str(broker.port) in line for line in lines), (
            lines
        )
    finally:
        broker.stop()


def _wait(condition, stop: threading.Event, timeout: float = WAIT) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        stop.wait(0.05)
    return False


def test_the_publishers_loop_sleeps_until_a_commit_wakes_it(broker: Mosquitto) -> None:
    """A connected, idle publisher waits in one turn of the loop for as long as it is told (a second in the
    daemon) unless a commit wakes it: the wake-up ends the turn long before its timeout, and a wake-up that came
    before the turn makes the next one return at once."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

    from edge.journal.mqtt_loop import WakeableLoop

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="loop-probe")
    client.connect("127.0.0.1", broker.port)
    loop = WakeableLoop()
    try:
        while not client.is_connected():
            assert loop.turn(client, 1.0) == MQTTErrorCode.MQTT_ERR_SUCCESS
        codes: list[MQTTErrorCode] = []

        def turn_for_an_hour() -> threading.Thread:
            turn = threading.Thread(target=lambda: codes.append(loop.turn(client, 3600.0)), daemon=True)
            turn.start()
            return turn

        turn = turn_for_an_hour()
        loop.wake()
        turn.join(WAIT)  # generous: a turn that ignored the wake-up would sleep for an hour
        assert not turn.is_alive() and codes == [MQTTErrorCode.MQTT_ERR_SUCCESS]
        loop.wake()  # before the turn: the byte waits in the pipe
        turn = turn_for_an_hour()
        turn.join(WAIT)
        assert not turn.is_alive() and codes == [MQTTErrorCode.MQTT_ERR_SUCCESS] * 2
        assert client.is_connected()
    finally:
        loop.wake()
        client.disconnect()
        loop.close()
    loop.wake()  # after close: nothing is written anywhere, nothing raised
