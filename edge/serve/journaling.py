"""The daemon's event journal and MQTT publisher, built from ``ServeConfig``: checked, opened, drained.

``check_journaling(cfg)`` runs before the bundle loads (state folder writable, MQTT TLS files and the
password file usable), so a wrong path costs a second, not a model load. ``open_journaling`` opens the
journal before the gRPC server serves, and ``Journaling.close`` drains it within the shutdown's grace.

>>> check_journaling(cfg)
>>> journaling = open_journaling(cfg, metrics)      # None without state_dir
>>> seq = await journaling.record(from_event("inspect:1", event))
>>> journaling.close(timeout=0.5)
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import tempfile
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ConfigError, JournalError
from edge.journal.evidence import EvidenceBudgets
from edge.journal.journal import Journal, JournalSettings
from edge.journal.mqtt import CURSOR
from edge.journal.mqtt_settings import MqttSettings, tls_context
from edge.journal.publisher_process import PublisherProcess
from edge.journal.records import Record
from edge.serve.config import ServeConfig

log = logging.getLogger("edge.serve")


def journal_settings(cfg: ServeConfig) -> JournalSettings:
    if cfg.state_dir is None:
        raise ConfigError("state_dir is not set")
    budgets = EvidenceBudgets(
        anomaly_max_bytes=cfg.evidence_anomaly_max_bytes,
        anomaly_max_age_seconds=cfg.evidence_anomaly_max_age_seconds,
        normal_max_bytes=cfg.evidence_normal_max_bytes,
        normal_max_age_seconds=cfg.evidence_normal_max_age_seconds,
        normal_sample_rate=cfg.evidence_normal_sample_rate,
        min_free_bytes=cfg.evidence_min_free_bytes,
    )
    return JournalSettings(
        state_dir=cfg.state_dir,
        synchronous=cfg.journal_synchronous,
        max_bytes=cfg.journal_max_bytes,
        max_age_seconds=cfg.journal_max_age_seconds,
        commit_interval_seconds=cfg.journal_commit_interval_seconds,
        unawaited_interval_seconds=cfg.journal_camera_commit_interval_seconds,
        floor_cursors=(CURSOR,) if cfg.mqtt_host else (),
        origin=(cfg.line_id, cfg.station_id),
        evidence=budgets,
    )


def mqtt_settings(cfg: ServeConfig) -> MqttSettings | None:
    if not cfg.mqtt_host:
        return None
    return MqttSettings(
        host=cfg.mqtt_host,
        line=cfg.line_id,
        station=cfg.station_id,
        port=cfg.mqtt_port,
        tls_ca=cfg.mqtt_tls_ca,
        tls_cert=cfg.mqtt_tls_cert,
        tls_key=cfg.mqtt_tls_key,
        username=cfg.mqtt_username,
        password=read_password(cfg.mqtt_password_file) if cfg.mqtt_password_file is not None else "",
        client_id=cfg.mqtt_client_id,
        topic_prefix=cfg.mqtt_topic_prefix,
        normal_scores=cfg.mqtt_normal_scores,
    )


def read_password(path: Path) -> str:
    """The first line of an owner-only file (like ssh with private keys, a wider mode is refused)."""
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & 0o077:
            raise ConfigError(
                f"mqtt_password_file {path}: permissions {stat.filemode(mode)} are too open; chmod 600 {path}"
            )
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"mqtt_password_file {path}: cannot read ({reason})") from exc
    if not lines or not lines[0].strip():
        raise ConfigError(f"mqtt_password_file {path}: empty; write the password on its first line")
    return lines[0].strip()


def check_journaling(cfg: ServeConfig) -> None:
    """Start-up checks that need no bundle; ConfigError naming the setting."""
    if cfg.state_dir is None:
        return
    try:
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cfg.state_dir, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"state_dir {cfg.state_dir}: not a folder this user can write ({exc.strerror or exc}); the journal "
            "lives there (systemd: StateDirectory=edge-inspector)"
        ) from exc
    settings = mqtt_settings(cfg)
    if settings is not None:
        tls_context(settings)


@dataclass
class Journaling:
    """The open journal and, with ``mqtt_host``, its publisher."""

    journal: Journal
    publisher: PublisherProcess | None
    metrics: Any

    async def record(self, record: Record) -> int:
        """Journal ``record`` and wait for its commit (see :meth:`settle`)."""
        return await self.settle(self.journal.append(record))

    async def settle(self, future: Future[int]) -> int:
        """The committed sequence; 0 (logged, counted in journal_write_errors_total) if the journal could not
        take it, so a full disk never stops the station from reporting its decision."""
        try:
            return await asyncio.wrap_future(future)
        except JournalError as exc:
            log.error("decision not journaled: %s", exc)
            return 0

    def close(self, timeout: float) -> None:
        """Stop the publisher (``offline`` status, cursor saved), then commit what is queued and close."""
        if self.publisher is not None:
            self.publisher.stop(timeout / 2)
        self.journal.close(max(timeout / 2, 0.1))


def open_journaling(cfg: ServeConfig, metrics: Any) -> Journaling | None:
    if cfg.state_dir is None:
        log.warning("state_dir is not set: decisions are not journaled, and nothing is published to MQTT")
        return None
    journal = Journal(journal_settings(cfg), metrics=metrics)
    settings = mqtt_settings(cfg)
    publisher = PublisherProcess(settings, journal, metrics) if settings is not None else None
    if publisher is not None:
        publisher.start()
    log.info(
        "journal %s open at sequence %d%s",
        journal.settings.path,
        journal.head,
        f"; publishing to MQTT {settings.address} ({settings.topic})" if settings is not None else "",
    )
    return Journaling(journal, publisher, metrics)
