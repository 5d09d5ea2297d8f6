"""Where and how the MQTT publisher connects: broker, topics, login, and the TLS context it verifies with.

>>> s = MqttSettings(host="broker.plant.local", line="line-1", station="st-7", tls_ca=Path("ca.crt"))
>>> s.topic, s.status_topic          # edge-inspector/line-1/st-7/events, …/status (and …/trigger)
>>> MqttSettings(..., topic_prefix="acme/plant-3/inspection").topic   # acme/plant-3/inspection/line-1/st-7/events
>>> ctx = tls_context(s)             # ConfigError naming the files when they cannot be used
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ConfigError

TOPIC_ROOT = "edge-inspector"  # the topics' first levels unless mqtt_topic_prefix says otherwise


def topic_prefix_problem(prefix: str) -> str:
    """Why ``prefix`` cannot be the first levels of this station's topics; "" when it can. One or more levels,
    as in a plant's namespace (``acme/plant-3/inspection``), where a broker's ACLs usually grant a subtree."""
    if not prefix:
        return "must not be empty"
    if prefix.startswith("$"):
        return "must not start with '$' (brokers keep those topics for themselves, like $SYS)"
    if any(c in prefix for c in "+#\0"):
        return "must not contain '+', '#' (MQTT's wildcards) or NUL"
    if prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        return "must not have an empty level (a leading, trailing or doubled '/')"
    if len(prefix.encode()) > 1024:
        return "must be at most 1024 bytes"
    return ""


@dataclass(frozen=True)
class MqttSettings:
    host: str
    line: str
    station: str
    port: int = 1883
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    username: str = ""
    password: str = ""  # read from mqtt_password_file; never in the config or a log
    client_id: str = ""
    keepalive: int = 30
    window: int = 100
    topic_prefix: str = TOPIC_ROOT
    # False: the gate's scores of frames it judged normal (one event per frame) stay in the journal only
    normal_scores: bool = True

    def __post_init__(self) -> None:
        for name in ("line", "station"):
            value = getattr(self, name)
            if not value or any(c in value for c in "/+#\0"):
                raise ConfigError(
                    f"mqtt {name} id {value!r} must be set and must not contain '/', '+', '#' (it is a topic level); "
                    f"set {name}_id"
                )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("mqtt_tls_cert and mqtt_tls_key must be given together")
        if problem := topic_prefix_problem(self.topic_prefix):
            raise ConfigError(f"mqtt_topic_prefix {self.topic_prefix!r} {problem}")

    @property
    def topic(self) -> str:
        return f"{self.topic_prefix}/{self.line}/{self.station}/events"

    @property
    def status_topic(self) -> str:
        return f"{self.topic_prefix}/{self.line}/{self.station}/status"

    @property
    def trigger_topic(self) -> str:
        """Where the line's "part in position" comes in (edge.serve.mqtt_trigger)."""
        return f"{self.topic_prefix}/{self.line}/{self.station}/trigger"

    @property
    def client_name(self) -> str:
        """The publisher's MQTT client id: ``client_id``, else edge-inspector-<line>-<station>."""
        return self.client_id or f"{TOPIC_ROOT}-{self.line}-{self.station}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class _TlsContext(ssl.SSLContext):
    """Remembers the socket it wrapped: paho leaves it open when the handshake fails, and we close it."""

    wrapped: ssl.SSLSocket | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.wrapped = super().wrap_socket(*args, **kwargs)
        return self.wrapped

    def close_wrapped(self) -> None:
        if self.wrapped is not None:
            self.wrapped.close()
            self.wrapped = None


def tls_context(s: MqttSettings) -> _TlsContext | None:
    """The client's TLS context (None without TLS); ConfigError naming the file that cannot be used.

    The broker's certificate must chain to ``tls_ca`` (else the system's roots) and name the host.
    """
    if s.tls_ca is None and s.tls_cert is None:
        return None
    ctx = _TlsContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    try:
        if s.tls_ca is not None:
            ctx.load_verify_locations(cafile=str(s.tls_ca))
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if s.tls_cert is not None and s.tls_key is not None:
            ctx.load_cert_chain(str(s.tls_cert), str(s.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"mqtt TLS files ({s.tls_ca}, {s.tls_cert}, {s.tls_key}): cannot load them ({exc})") from exc
    return ctx
