"""Daemon lifecycle: build the gRPC server, warm up, serve, and drain on SIGTERM.

``create_server(config, engine)`` binds (port 0 in tests) and returns the daemon and its port.
``run(config)`` is ``edge serve``: load and verify the bundle, warm up, turn health SERVING, and
on SIGTERM/SIGINT turn NOT_SERVING, refuse new work, let in-flight descriptions finish within
``grace_seconds``, and return 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from edge import __version__
from edge.errors import ConfigError
from edge.serve.config import ServeConfig, split_hostport
from edge.serve.scheduler import Scheduler
from edge.serve.service import InspectorService
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc

log = logging.getLogger("edge.serve")
SERVICE = pb.DESCRIPTOR.services_by_name["InspectorService"].full_name


class Daemon:
    """The running pieces of one ``edge serve``: engine scheduler, gRPC server, health."""

    def __init__(self, cfg: ServeConfig, engine: Any, metrics: Any) -> None:
        self.cfg, self.engine, self.metrics = cfg, engine, metrics
        self.scheduler = Scheduler(engine, metrics, cfg.queue_depth)
        self.service = InspectorService(cfg, engine, self.scheduler, metrics)
        self.health = health.aio.HealthServicer()
        interceptors = []
        if cfg.token_file is not None:
            from edge.serve.security import TokenAuthInterceptor, load_tokens

            interceptors.append(
                TokenAuthInterceptor(
                    load_tokens(cfg.token_file),
                    on_reject=lambda method, reason: metrics.request_done(method.rsplit("/", 1)[-1], "UNAUTHENTICATED"),
                )
            )
        options = [
            ("grpc.max_receive_message_length", cfg.max_message_bytes),
            ("grpc.max_send_message_length", cfg.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        self.server = grpc.aio.server(interceptors=interceptors, options=options)
        pb_grpc.add_InspectorServiceServicer_to_server(self.service, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)

    async def start(self) -> int:
        host, port = split_hostport(self.cfg.listen, "listen")
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if self.cfg.tls_cert is not None and self.cfg.tls_key is not None:
                from edge.serve.security import server_credentials

                creds = server_credentials(self.cfg.tls_cert, self.cfg.tls_key, self.cfg.tls_client_ca)
                bound = self.server.add_secure_port(address, creds)
            else:
                bound = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise ConfigError(f"listen {self.cfg.listen}: cannot bind ({exc}); is the port in use?") from exc
        if not bound:
            raise ConfigError(f"listen {self.cfg.listen}: cannot bind; is the port in use?")
        self.scheduler.start()
        await self.server.start()
        await self.set_serving(True)
        return bound

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE):
            await self.health.set(name, status)
        self.metrics.set_serving(serving)

    async def stop(self, grace: float | None = None) -> bool:
        """NOT_SERVING, refuse new work, finish in-flight work within the grace period. True if all finished."""
        grace = self.cfg.grace_seconds if grace is None else grace
        deadline = time.monotonic() + grace
        await self.set_serving(False)
        self.service.draining = True
        self.scheduler.close()  # queued (not started) descriptions are dropped with reason shutdown
        finished = await asyncio.to_thread(self.scheduler.drain, grace)
        # the worker is idle; let the handlers deliver their last messages before the server goes
        finished = await self.service.wait_answered(max(deadline - time.monotonic(), 2.0)) and finished
        if not finished:
            log.warning("in-flight work did not finish within %.0f s; cancelling it", grace)
        await self.server.stop(1.0)  # open Inspect streams are cancelled here
        return finished


async def create_server(cfg: ServeConfig, engine: Any, metrics: Any | None = None) -> tuple[Daemon, int]:
    """Build and start a daemon on ``cfg.listen`` (port 0 picks a free port); return it and the port."""
    if metrics is None:
        from prometheus_client import CollectorRegistry

        from edge.serve.metrics import Metrics

        metrics = Metrics(CollectorRegistry())
    daemon = Daemon(cfg, engine, metrics)
    port = await daemon.start()
    return daemon, port


def load_engine(cfg: ServeConfig, metrics: Any) -> Any:
    """Verify and load the bundle, then one warm-up generation (so health only says SERVING when it works)."""
    from edge.runtime.engine import Engine, GenerationParams

    t0 = time.perf_counter()
    metrics.set_bundle_state(verified=False, loaded=False)
    engine = Engine(cfg.bundle, threads=cfg.threads or None, verify=cfg.verify_bundle)
    metrics.set_bundle_state(verified=cfg.verify_bundle, loaded=True)
    if cfg.warmup:
        import numpy as np

        images = [np.full((96, 96, 3), 128, np.uint8)] if engine.spec.vision is not None else []
        audio = [np.zeros(1600, np.float32)] if engine.spec.audio is not None else []
        engine.generate("warm-up", images=images, audio=audio, params=GenerationParams(max_new_tokens=2))
    load_s = time.perf_counter() - t0
    m = engine.manifest
    metrics.set_model(
        load_s,
        __version__,
        m.bundle_id,
        str(m.source.get("model_id", "")),
        str(m.quantization.get("name", "")),
        kernels=engine.s.kernels.label,
    )
    log.info("bundle %s loaded, verified and warmed up in %.1f s", m.bundle_id, load_s)
    return engine


async def _serve(cfg: ServeConfig) -> int:
    import cv2
    from prometheus_client import CollectorRegistry

    from edge.serve.metrics import Metrics, start_http

    cv2.utils.logging.setLogLevel(
        cv2.utils.logging.LOG_LEVEL_SILENT
    )  # decode failures are reported to the client with the field; keep libpng noise out of logs
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    mhost, mport = split_hostport(cfg.metrics_listen, "metrics_listen")
    try:
        http, bound_metrics = start_http(registry, mhost, mport)
    except OSError as exc:
        raise ConfigError(f"metrics_listen {cfg.metrics_listen}: cannot bind ({exc.strerror})") from exc
    try:
        engine = await asyncio.to_thread(load_engine, cfg, metrics)
        daemon, port = await create_server(cfg, engine, metrics)
        log.info("serving edge.v1 on %s (port %d), metrics on %s:%d", cfg.listen, port, mhost, bound_metrics)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("signal received: draining (grace %.0f s)", cfg.grace_seconds)
        finished = await daemon.stop()
        log.info("stopped%s", "" if finished else " (an in-flight description was cancelled)")
        return 0
    finally:
        http.stop()


def run(cfg: ServeConfig) -> int:
    return asyncio.run(_serve(cfg))
