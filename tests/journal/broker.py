"""A real Debian ``mosquitto`` (edge.bench.mosquitto) for the tests, and a real paho subscriber that records what
it gets, with a persistent session (clean_session False, QoS 1) like a plant's consumer."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.bench.mosquitto import Mosquitto, mosquitto_binary
from tests.tools import required_tool


def Broker(root: Path, tls: dict[str, Path] | None = None) -> Mosquitto:
    """A :class:`~edge.bench.mosquitto.Mosquitto`; skipped where mosquitto is not installed, a failure in CI."""
    if mosquitto_binary() is None:
        required_tool("mosquitto", "mosquitto")
    return Mosquitto(root, tls)


class Subscriber:
    """A paho client (its own network thread) with a persistent session that records every message."""

    def __init__(self, broker: Mosquitto, topic: str, client_id: str = "test-subscriber") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []  # topic, payload, retained
        self.lock = threading.Lock()
        self.connects = 0
        self.topic = topic
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()
        self.wait(lambda: self.connects >= 1, 20, "the subscriber did not connect")

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        client.subscribe(self.topic, qos=1)
        with self.lock:
            self.connects += 1

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/events")]

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith("/events")]

    def wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"{what} within {timeout:g} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def first_occurrences(events: list[dict]) -> list[int]:
    """Sequences in arrival order with repeats removed (what a de-duplicating consumer keeps)."""
    seen: set[int] = set()
    out = []
    for e in events:
        if e["sequence"] not in seen:
            seen.add(e["sequence"])
            out.append(e["sequence"])
    return out
