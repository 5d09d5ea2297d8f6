"""A real Debian ``mosquitto`` on a free loopback port, and a real paho subscriber that records what it gets.

The broker keeps its sessions on disk (``persistence true``), as a plant broker does: a subscriber with a
persistent session (clean_session False, QoS 1) gets what was published while it was reconnecting after a
broker restart.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.tools import required_tool


def mosquitto_binary() -> str:
    """Debian installs the broker in /usr/sbin, which is not on every user's PATH."""
    path = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    return path or required_tool("mosquitto", "mosquitto")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    """``mosquitto -c`` in ``root``; ``stop()``/``start()`` keep the port and the persisted sessions."""

    root: Path
    tls: dict[str, Path] | None = None  # ca, server, server_key: require client certificates
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.binary = mosquitto_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.root}/",
            f"log_dest file {self.root}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "max_inflight_messages 100",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:  # mosquitto started as root drops to user "mosquitto", who cannot write in our temp dir
            lines.append("user root")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls['ca']}",
                f"certfile {self.tls['server']}",
                f"keyfile {self.tls['server_key']}",
                "require_certificate true",
                "use_identity_as_username true",
            ]
        self.conf = self.root / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> Broker:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistent sessions and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def log(self) -> str:
        path = self.root / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Subscriber:
    """A paho client (its own network thread) with a persistent session that records every message."""

    def __init__(self, broker: Broker, topic: str, client_id: str = "test-subscriber") -> None:
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
