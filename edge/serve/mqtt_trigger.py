"""The plant's "part in position" over MQTT: ``<prefix>/<line>/<station>/trigger`` into a camera's session.

The same as the ``Trigger`` RPC, for PLCs and line controllers that speak MQTT: a JSON message

    {"camera_id": "press-1", "part_id": "P-0042", "capture_time": 1764552000.125, "reason": "in position"}

(only ``camera_id`` is required; ``capture_time`` is seconds since the Unix epoch on the daemon's clock, 0 or
absent = the latest frame) describes the buffered frame of that camera nearest the time; the description is
an event of that camera, journaled and published on the events topic with the part id in its context.

A message that cannot be taken (not JSON, an unknown key or camera, a camera whose trigger is ``gated``, no
frame yet) is refused with one log line naming the problem and counted in
``edge_inspector_mqtt_triggers_total{result="refused"}``; nothing answers on MQTT, because the description is
the answer. The subscriber is its own paho client (client id ``<publisher id>-trigger``) with QoS 1, started
only when ``mqtt_host`` is set and a camera has ``trigger = "external"``; paho reconnects it on its own.

>>> sub = TriggerSubscriber(settings, TriggerHandler(loop, cameras, metrics))
>>> sub.start(); …; sub.stop()
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.errors import EdgeError, FieldError
from edge.journal.mqtt_settings import MqttSettings, tls_context
from edge.serve.config import ServeConfig
from edge.serve.journaling import mqtt_settings

log = logging.getLogger("edge.serve")

MAX_TRIGGER_BYTES = 4096
KEYS: dict[str, type | tuple[type, ...]] = {
    "camera_id": str,
    "part_id": str,
    "capture_time": (int, float),
    "reason": str,
}


def start_triggers(cfg: ServeConfig, cameras: Any, metrics: Any) -> TriggerSubscriber | None:
    """The subscriber, started, when the station has a broker and a camera triggered from outside."""
    if not cfg.mqtt_host or not any(c.trigger == "external" for c in cfg.cameras):
        return None
    settings = mqtt_settings(cfg)
    assert settings is not None
    sub = TriggerSubscriber(settings, TriggerHandler(asyncio.get_running_loop(), cameras, metrics))
    sub.start()
    return sub


@dataclass(frozen=True)
class MqttTrigger:
    camera_id: str
    part_id: str = ""
    capture_time: float | None = None  # None: the latest frame
    reason: str = ""


def parse_trigger(payload: bytes) -> MqttTrigger:
    """The trigger in ``payload``; FieldError naming the key (or ``payload``) and what is expected."""
    if len(payload) > MAX_TRIGGER_BYTES:
        raise FieldError("payload", f"{len(payload)} bytes; a trigger is a small JSON object (≤ {MAX_TRIGGER_BYTES})")
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FieldError("payload", f'not JSON ({exc}); send {{"camera_id": "…", "part_id": "…"}}') from None
    if not isinstance(doc, dict):
        raise FieldError("payload", "must be a JSON object with camera_id (and part_id, capture_time, reason)")
    for key, value in doc.items():
        if key not in KEYS:
            raise FieldError(key, f"unknown key; a trigger has {', '.join(KEYS)}")
        if not isinstance(value, KEYS[key]) or isinstance(value, bool):
            raise FieldError(key, f"must be a {'number' if key == 'capture_time' else 'string'}, got {value!r}")
    if not doc.get("camera_id"):
        raise FieldError("camera_id", 'is required: the id of a [[cameras]] entry with trigger = "external"')
    t = doc.get("capture_time") or 0
    if not math.isfinite(t) or t < 0:
        raise FieldError("capture_time", f"must be seconds since the Unix epoch (or 0 for the latest frame), got {t}")
    return MqttTrigger(doc["camera_id"], doc.get("part_id", ""), float(t) or None, doc.get("reason", ""))


class TriggerHandler:
    """Takes a message on paho's thread, handles it on the event loop (where the camera sessions live)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cameras: Any, metrics: Any) -> None:
        self.loop, self.cameras, self.metrics = loop, cameras, metrics

    def __call__(self, payload: bytes) -> None:  # paho's network thread
        self.loop.call_soon_threadsafe(self.handle, payload)

    def handle(self, payload: bytes) -> None:
        try:
            t = parse_trigger(payload)
            self.cameras.trigger(t.camera_id, t.capture_time, t.part_id, t.reason or "mqtt")
        except EdgeError as exc:
            log.warning("MQTT trigger refused: %s", exc)
            self.metrics.mqtt_triggers.labels("refused").inc()
            return
        self.metrics.mqtt_triggers.labels("accepted").inc()


class TriggerSubscriber:
    """A paho client subscribed to the station's trigger topic (QoS 1), on paho's own thread."""

    def __init__(self, settings: MqttSettings, handler: TriggerHandler) -> None:
        self.settings, self.handler, self.topic = settings, handler, settings.trigger_topic
        s = settings
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{s.client_name}-trigger")
        if s.username:
            self.client.username_pw_set(s.username, s.password or None)
        context = tls_context(s)
        if context is not None:
            self.client.tls_set_context(context)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.subscribed = threading.Event()  # set once the broker granted the subscription

    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive)
        self.client.loop_start()
        log.info("MQTT triggers: subscribing to %s on %s", self.topic, self.settings.address)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT triggers: the broker refused the connection (%s)", reason)
            return
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        if all(not r.is_failure for r in reasons):
            self.subscribed.set()
        else:
            log.warning("MQTT triggers: the broker refused the subscription to %s (%s)", self.topic, reasons)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.handler(bytes(message.payload))
