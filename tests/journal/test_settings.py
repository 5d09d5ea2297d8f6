"""The journal's and the publisher's settings: refused at start with one line naming the key, before any model loads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.journal.mqtt_settings import MqttSettings
from edge.serve.config import ServeConfig
from edge.serve.journaling import check_journaling, journal_settings, mqtt_settings
from tests.serve.certs import make_certs

MQTT = {"state_dir": Path("/tmp/x"), "line_id": "line-1", "station_id": "st-7", "mqtt_host": "broker"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mqtt_host": "broker"}, "mqtt_host needs state_dir"),
        ({**MQTT, "station_id": ""}, "mqtt_host needs line_id and station_id"),
        ({**MQTT, "mqtt_port": 0}, "mqtt_port must be in 1..65535"),
        ({**MQTT, "mqtt_tls_cert": Path("c.crt")}, "mqtt_tls_cert and mqtt_tls_key must be given together"),
        ({**MQTT, "mqtt_password_file": Path("p")}, "mqtt_password_file needs mqtt_username"),
        ({**MQTT, "mqtt_topic_prefix": ""}, "mqtt_topic_prefix '' must not be empty"),
        ({**MQTT, "mqtt_topic_prefix": "acme/+/insp"}, r"mqtt_topic_prefix 'acme/\+/insp' must not contain '\+', '#'"),
        ({**MQTT, "mqtt_topic_prefix": "plant/#"}, "must not contain '\\+', '#'"),
        ({**MQTT, "mqtt_topic_prefix": "$SYS/edge"}, "must not start with '\\$'"),
        ({**MQTT, "mqtt_topic_prefix": "/acme"}, "must not have an empty level"),
        ({**MQTT, "mqtt_topic_prefix": "acme/"}, "must not have an empty level"),
        ({**MQTT, "mqtt_topic_prefix": "acme//insp"}, "must not have an empty level"),
        ({"journal_synchronous": "OFF"}, "journal_synchronous must be FULL or NORMAL"),
        ({"evidence_normal_sample_rate": 1.5}, r"evidence_normal_sample_rate must be in \[0, 1\]"),
        ({"evidence_min_free_bytes": -1}, "evidence_min_free_bytes must be >= 0"),
        ({"journal_max_age_seconds": 0.0}, "journal_max_age_seconds must be > 0 seconds"),
        ({"journal_commit_interval_seconds": -0.01}, r"journal_commit_interval_seconds must be in \[0, 1\]"),
        ({"journal_commit_interval_seconds": 5.0}, r"journal_commit_interval_seconds must be in \[0, 1\]"),
        (
            {"journal_camera_commit_interval_seconds": -1.0},
            r"journal_camera_commit_interval_seconds must be in \[0, 1\]",
        ),
    ],
)
def test_bad_settings_are_named(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServeConfig(**overrides)


def test_commit_pacing_reaches_the_journal(tmp_path: Path) -> None:
    assert journal_settings(ServeConfig(state_dir=tmp_path)).commit_interval_seconds == 0.02  # the default
    cfg = ServeConfig(state_dir=tmp_path, journal_commit_interval_seconds=0.0)
    assert journal_settings(cfg).commit_interval_seconds == 0.0
    assert journal_settings(ServeConfig(state_dir=tmp_path)).unawaited_interval_seconds == 0.1  # the default
    cfg = ServeConfig(state_dir=tmp_path, journal_camera_commit_interval_seconds=0.25)
    assert journal_settings(cfg).unawaited_interval_seconds == 0.25


def test_the_topic_prefix_starts_every_topic() -> None:
    default = mqtt_settings(ServeConfig(**MQTT))
    assert default is not None and default.topic == "edge-inspector/line-1/st-7/events"
    s = mqtt_settings(ServeConfig(**{**MQTT, "mqtt_topic_prefix": "acme/plant-3/inspection"}))
    assert s is not None
    assert (s.topic, s.status_topic, s.trigger_topic) == tuple(
        f"acme/plant-3/inspection/line-1/st-7/{kind}" for kind in ("events", "status", "trigger")
    )
    assert s.client_name == "edge-inspector-line-1-st-7"  # the client id does not follow the topics
    with pytest.raises(ConfigError, match="mqtt_topic_prefix 'a#' must not contain"):
        MqttSettings("broker", "line-1", "st-7", topic_prefix="a#")  # the publisher's process checks it too


def test_a_topic_level_cannot_hold_a_wildcard() -> None:
    cfg = ServeConfig(**{**MQTT, "station_id": "st/7"})
    with pytest.raises(ConfigError, match="must not contain '/', '\\+', '#'"):
        mqtt_settings(cfg)


def test_state_dir_must_be_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"state_dir .*file.*not a folder this user can write"):
        check_journaling(ServeConfig(state_dir=blocker / "state"))
    check_journaling(ServeConfig(state_dir=tmp_path / "new" / "state"))
    assert (tmp_path / "new" / "state").is_dir() and not list((tmp_path / "new" / "state").iterdir())


def test_the_password_file_must_be_owner_only_and_the_tls_files_must_load(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    password.chmod(0o644)
    cfg = ServeConfig(**{**MQTT, "state_dir": tmp_path, "mqtt_username": "st7", "mqtt_password_file": password})
    with pytest.raises(ConfigError, match="too open; chmod 600"):
        check_journaling(cfg)
    password.chmod(0o600)
    check_journaling(cfg)
    assert mqtt_settings(cfg).password == "s3cret"  # type: ignore[union-attr]
    pki = make_certs(tmp_path / "pki")
    bad = dataclasses.replace(cfg, mqtt_tls_ca=pki["ca"], mqtt_tls_cert=pki["client"], mqtt_tls_key=pki["server_key"])
    with pytest.raises(ConfigError, match=r"mqtt TLS files .*cannot load them"):
        check_journaling(bad)  # a key that is not the certificate's
    check_journaling(dataclasses.replace(bad, mqtt_tls_key=pki["client_key"]))
