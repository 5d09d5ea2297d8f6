"""A local Debian ``mosquitto`` on a free loopback port, for the journal benchmark and the tests.

Sessions persist on disk (``persistence true``), as on a plant broker: a subscriber with a persistent
session gets, after a broker restart, what was published while it was reconnecting. ``stop()`` and
``start()`` keep the port and the persisted sessions.

>>> broker = Mosquitto(Path("/tmp/broker")).start(); …; broker.stop()
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import ConfigError


def mosquitto_binary() -> str | None:
    """Debian installs the broker in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mosquitto:
    """``mosquitto -c`` in ``root``; with ``tls`` (paths ``ca``, ``server``, ``server_key``) clients need a
    certificate that CA signed."""

    root: Path
    tls: dict[str, Path] | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise ConfigError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.binary = binary
        self.root.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.root}/",
            f"log_dest file {self.root}/mosquitto.log",
            *(f"log_type {t}" for t in ("error", "warning", "notice", "information")),
            "max_inflight_messages 100",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:  # started as root, mosquitto drops to user "mosquitto", who cannot write in root
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

    def start(self, timeout: float = 20.0) -> Mosquitto:
        cmd = [self.binary, "-c", str(self.conf)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise ConfigError(f"mosquitto exited at start: {err or self.log()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise ConfigError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout:g} s")

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
