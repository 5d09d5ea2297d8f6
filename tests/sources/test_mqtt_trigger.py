"""The line's trigger over MQTT: a PLC publishes "part in position", the daemon describes the pulled camera's
nearest frame, and the description comes back on the events topic with the part id; bad messages are refused
with a log line and a count, and the daemon goes on. The station runs under a plant's own topic namespace
(``mqtt_topic_prefix``): trigger and events both follow it; the default prefix is what the journal tests use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.errors import FieldError
from edge.serve.mqtt_trigger import parse_trigger
from edge.sources.config import CameraConfig
from tests.journal.broker import Broker, Subscriber
from tests.serve.conftest import RunningDaemon, serve_config
from tests.sources.conftest import eventually

pytestmark = pytest.mark.slow
PREFIX = "acme/plant-3/inspection"
TOPIC = f"{PREFIX}/line-1/st-7/"


def test_parse_trigger_names_the_key_at_fault() -> None:
    t = parse_trigger(b'{"camera_id": "press-1", "part_id": "P-1", "capture_time": 1764552000.5}')
    assert (t.camera_id, t.part_id, t.capture_time, t.reason) == ("press-1", "P-1", 1764552000.5, "")
    assert parse_trigger(b'{"camera_id": "c"}').capture_time is None  # the latest frame
    for payload, field in (
        (b"part in position", "payload"),
        (b"[1]", "payload"),
        (b'{"part_id": "P-1"}', "camera_id"),
        (b'{"camera_id": "c", "part": "P-1"}', "part"),
        (b'{"camera_id": "c", "capture_time": "now"}', "capture_time"),
        (b'{"camera_id": "c", "capture_time": -1}', "capture_time"),
        (b'{"camera_id": 7}', "camera_id"),
        (b" " * 5000, "payload"),
    ):
        with pytest.raises(FieldError) as err:
            parse_trigger(payload)
        assert err.value.field == field, payload


def test_a_plc_triggers_over_mqtt_and_reads_the_description_there(
    fp32_bundle: Path, engine: Any, video_file: Path, tmp_path: Path
) -> None:
    broker = Broker(tmp_path / "broker").start()
    cam = CameraConfig(id="press-1", url=str(video_file), trigger="external", fps=10)
    cfg = serve_config(
        fp32_bundle,
        cameras=(cam,),
        state_dir=tmp_path / "state",
        mqtt_host="127.0.0.1",
        mqtt_port=broker.port,
        line_id="line-1",
        station_id="st-7",
        mqtt_topic_prefix=PREFIX,
    )
    d = RunningDaemon(cfg, engine)
    sub = Subscriber(broker, TOPIC + "events")
    plc = paho.Client(CallbackAPIVersion.VERSION2, client_id="plc")
    plc.connect("127.0.0.1", broker.port)
    plc.loop_start()
    try:
        triggers = d.daemon.triggers
        assert triggers is not None and triggers.topic == TOPIC + "trigger"
        eventually(triggers.subscribed.is_set, "the daemon subscribed to the trigger topic")
        eventually(lambda: d.sample("edge_inspector_camera_frames_received_total", {"camera": "press-1"}) > 2, "frames")

        def refused() -> float:
            return d.sample("edge_inspector_mqtt_triggers_total", {"result": "refused"})

        for bad in (b"not json", b'{"camera_id": "nope"}', b'{"camera_id": "press-1", "when": 3}'):
            plc.publish(TOPIC + "trigger", bad, qos=1).wait_for_publish(30)
        eventually(lambda: refused() == 3, "three bad triggers refused")
        msg = {"camera_id": "press-1", "part_id": "P-0042", "reason": "in position"}
        plc.publish(TOPIC + "trigger", json.dumps(msg).encode(), qos=1).wait_for_publish(30)
        done = eventually(lambda: [e for e in sub.events() if e["kind"] == "finished"], "the description on MQTT")
        assert done[0]["source"] == "camera:press-1" and done[0]["context"]["part_id"] == "P-0042"
        assert done[0]["frame"]["sequence"] > 0 and done[0]["finished"]["generated_tokens"] > 0
        assert d.sample("edge_inspector_mqtt_triggers_total", {"result": "accepted"}) == 1 and refused() == 3
    finally:
        plc.loop_stop()
        plc.disconnect()
        sub.close()
        d.stop()
        broker.stop()
