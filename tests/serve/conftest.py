"""A real daemon on 127.0.0.1:0 with the real tiny bundle, run on its own event-loop thread."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from edge.serve.config import ServeConfig
from edge.v1 import inspector_pb2_grpc as pb_grpc


class RunningDaemon:
    """``create_server`` on a background loop; ``stop()`` drains it like SIGTERM does."""

    def __init__(self, cfg: ServeConfig, engine: Any, gate: Any = None) -> None:
        from prometheus_client import CollectorRegistry

        from edge.serve.metrics import Metrics

        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        from edge.serve.server import create_server

        if gate is not None:  # an edge.gate.Gate: run it as the daemon does (load_station_gate)
            from edge.station.gating import GateRunner

            gate = GateRunner(gate, self.metrics, cfg.gate_threshold or None)
        self.daemon, self.port = self.call(create_server(cfg, engine, self.metrics, gate))
        self.target = f"127.0.0.1:{self.port}"

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.registry.get_sample_value(name, labels or {}) or 0.0

    def stop(self) -> None:
        self.call(self.daemon.stop(5.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def engine(fp32_bundle: Path) -> Any:
    from edge.runtime.engine import Engine

    return Engine(fp32_bundle, threads=1)


def serve_config(bundle: Path, **overrides: Any) -> ServeConfig:
    base = ServeConfig(
        bundle=bundle,
        listen="127.0.0.1:0",
        metrics_listen="127.0.0.1:0",
        warmup=False,
        min_interval_seconds=0.05,
        first_message_timeout_seconds=1.0,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture(scope="module")
def daemon(fp32_bundle: Path, engine: Any) -> Iterator[RunningDaemon]:
    d = RunningDaemon(serve_config(fp32_bundle, max_message_bytes=4 * 1024 * 1024), engine)
    yield d
    d.stop()


@pytest.fixture()
def stub(daemon: RunningDaemon) -> Iterator[pb_grpc.InspectorServiceStub]:
    with grpc.insecure_channel(daemon.target) as channel:
        yield pb_grpc.InspectorServiceStub(channel)
