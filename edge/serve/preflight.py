"""Everything ``edge serve`` can check before it touches the bundle: files, credentials and listen addresses.

Verifying, loading and warming up a bundle takes about 37 s on the 12B. A wrong token file, a TLS key
that belongs to another certificate or a port that another process holds must not wait for that: each
is one line and exit 2, at once. ``run_preflight(cfg)`` is the first thing the daemon does.

To add a check, add a row to ``PATHS`` (a setting that names a file or folder) and, when its content
must be parsed too, a function to ``CHECKS``. For example a state folder is
``PathSetting("state_dir", "folder", writable=True)``; ``report_schema`` is a row here, and a check that
parses it without the bundle's tokenizer would be one more function in ``CHECKS``.

>>> run_preflight(load_config(flags, os.environ, toml))   # raises ConfigError naming the setting
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.serve.config import ServeConfig, split_hostport
from edge.serve.files import Kind, check_path
from edge.serve.journaling import check_journaling
from edge.serve.security import check_tls_files, load_tokens


@dataclass(frozen=True)
class PathSetting:
    """A config key whose value (when set) is a file or folder the daemon needs at start."""

    key: str
    kind: Kind
    writable: bool = False


#: Checked in this order, each before its content is parsed, so a folder is reported as a folder.
PATHS: tuple[PathSetting, ...] = (
    PathSetting("tls_cert", "file"),
    PathSetting("tls_key", "file"),
    PathSetting("tls_client_ca", "file"),
    PathSetting("token_file", "file"),
    PathSetting("report_schema", "file"),  # JSON and a JSON Schema here; compiled with the tokenizer later
    PathSetting("gate", "folder"),  # verified byte for byte when it is loaded, still before the bundle
)


def check_paths(cfg: Any, paths: tuple[PathSetting, ...] = PATHS) -> None:
    """Each set path setting names an existing ``kind`` this user can read (and write when ``writable``)."""
    for setting in paths:
        value = getattr(cfg, setting.key)
        if value is not None:
            check_path(Path(value), setting.key, setting.kind, writable=setting.writable)


def check_tls(cfg: ServeConfig) -> None:
    """The certificate and key parse and belong together; the client CA file holds a certificate."""
    if cfg.tls_cert is not None and cfg.tls_key is not None:
        check_tls_files(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca)


def check_tokens(cfg: ServeConfig) -> None:
    """The token file is owner-only and holds at least one valid token."""
    if cfg.token_file is not None:
        load_tokens(cfg.token_file)


def check_addresses(cfg: ServeConfig) -> None:
    """Both listen addresses can be bound now (a second daemon on the same port fails here)."""
    probe_bind(cfg.listen, "listen")
    probe_bind(cfg.metrics_listen, "metrics_listen")


def check_report_schema(cfg: ServeConfig) -> None:
    """The station's report schema is JSON and a valid JSON Schema (compiling it needs the bundle's tokenizer)."""
    from edge.errors import SchemaError
    from edge.runtime.structured import parse_schema

    if cfg.report_schema is not None:
        try:
            parse_schema(Path(cfg.report_schema).read_text(encoding="utf-8"))
        except (SchemaError, UnicodeDecodeError) as exc:
            raise ConfigError(f"report_schema {cfg.report_schema}: {exc}") from None


def check_cameras(cfg: ServeConfig) -> None:
    """Each camera's file or device exists and can be read, and a gated camera has a gate to use.

    Network cameras are not contacted here: one that is down must not stop the daemon (it retries in backoff).
    """
    for cam in cfg.cameras:
        where = f"cameras[{cam.id!r}]"
        if cam.kind in ("file", "device"):
            check_path(Path(cam.url), f"{where}.url", "file" if cam.kind == "file" else "device")
        if cam.audio and cam.audio != "stream" and not cam.audio.startswith("alsa:"):
            check_path(Path(cam.audio), f"{where}.audio", "file")
        if cam.trigger == "gated" and (cfg.gate is None or not cam.gate):
            raise ConfigError(f'{where}.trigger = "gated" needs the station\'s gate (gate = DIR) and gate = true')
        if not cam.trigger and (cfg.gate is None or not cam.gate):
            raise ConfigError(
                f'{where}.trigger: there is no gate for this camera; set trigger = "interval" or "external"'
            )


#: Run in order by ``run_preflight``; each raises ConfigError naming the setting.
CHECKS: tuple[Callable[[ServeConfig], None], ...] = (
    check_paths,
    check_tls,
    check_tokens,
    check_report_schema,
    check_cameras,
    check_journaling,  # state_dir writable, MQTT TLS files and the password file (edge.serve.journaling)
    check_addresses,
)


def run_preflight(cfg: ServeConfig, checks: tuple[Callable[[ServeConfig], None], ...] = CHECKS) -> None:
    """Run every start-up check that needs no bundle; the first failure raises a one-line ConfigError."""
    for check in checks:
        check(cfg)


def probe_bind(address: str, setting: str) -> None:
    """Bind (and release) every socket address ``address`` resolves to, as the server will.

    Both servers set ``SO_REUSEADDR``, so the probe does too: a port left in TIME_WAIT by a daemon that
    just stopped is free for them. A wildcard host is probed as the IPv6 dual-stack socket gRPC binds for
    it (any IPv4 or IPv6 listener on the port conflicts with that), or as IPv4 where there is no IPv6.
    The port can still be taken between this probe and the real bind; the server reports that itself.
    """
    host, port = split_hostport(address, setting)
    for family, sockaddr in _socket_addresses(host, port, address, setting):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if sockaddr[0] == "::" else 1)
                s.bind(sockaddr)
        except OSError as exc:
            raise ConfigError(_bind_problem(exc, address, setting, host, port)) from None


def _socket_addresses(host: str, port: int, address: str, setting: str) -> list[tuple[int, tuple[Any, ...]]]:
    if host in ("0.0.0.0", "::", "*"):
        return [(socket.AF_INET6, ("::", port))] if _has_ipv6() else [(socket.AF_INET, ("0.0.0.0", port))]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"{setting} {address}: cannot resolve the host {host!r} ({exc.strerror})") from None
    out: list[tuple[int, tuple[Any, ...]]] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and (family, sockaddr) not in out:
            out.append((family, sockaddr))
    return out


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return False
    return True


def _bind_problem(exc: OSError, address: str, setting: str, host: str, port: int) -> str:
    where = f"{setting} {address}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{where}: port in use: another process (another edge serve?) holds port {port}; "
            f"stop it or choose another port (`ss -ltnp 'sport = :{port}'` shows which)"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: {host} is not an address of this host; use one of its addresses, or 0.0.0.0 for all"
    if exc.errno == errno.EACCES:
        return f"{where}: binding port {port} needs privileges this user lacks; use a port above 1023"
    return f"{where}: cannot bind ({exc.strerror or exc})"


__all__ = ["CHECKS", "PATHS", "PathSetting", "check_paths", "probe_bind", "run_preflight"]
