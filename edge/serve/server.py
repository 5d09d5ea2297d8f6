"""Daemon lifecycle: build the gRPC server, warm up, serve, and drain on SIGTERM.

``create_server(config, engine)`` binds (port 0 in tests) and returns the daemon and its port.
``run(config)`` is ``edge serve``: load and verify the bundle, warm up, turn health SERVING, and
on SIGTERM/SIGINT turn NOT_SERVING, refuse new work, let in-flight descriptions finish within
``grace_seconds`` (then cancel them), end every open Inspect stream with a final event for each of its
frames, and return 0, all within the grace period plus about a second.

The InspectorService handlers are registered without request deserializers: requests reach the
servicer as bytes and are parsed there, so malformed protobuf is answered INVALID_ARGUMENT and counted.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from edge import __version__
from edge.errors import ConfigError
from edge.serve.config import ServeConfig, split_hostport
from edge.serve.mqtt_trigger import TriggerSubscriber, start_triggers
from edge.serve.reflection import enable_reflection
from edge.serve.service import InspectorService
from edge.station.gating import GateRunner
from edge.station.worker import Scheduler
from edge.v1 import inspector_pb2 as pb

log = logging.getLogger("edge.serve")
SERVICE = pb.DESCRIPTOR.services_by_name["InspectorService"].full_name
OVERRUN_SECONDS = 0.9  # the most a drain may take past its grace period, all waits included
FLUSH_SECONDS = 1.0  # at the end of a drain: grpc's own grace for flushing the last replies, then calls are cancelled
CANCEL_WAIT_SECONDS = 0.5  # of which: a cancelled description stops between two tokens


def service_handler(service: InspectorService) -> grpc.GenericRpcHandler:
    """Every RPC of the proto's InspectorService, requests as raw bytes, replies serialized from protobuf."""
    methods = {}
    for m in pb.DESCRIPTOR.services_by_name["InspectorService"].methods:
        reply = getattr(pb, m.output_type.name).SerializeToString
        kind = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
        }[(m.client_streaming, m.server_streaming)]
        methods[m.name] = kind(getattr(service, m.name), response_serializer=reply)
    return grpc.method_handlers_generic_handler(SERVICE, methods)


class Daemon:
    """The running pieces of one ``edge serve``: engine scheduler, gRPC server, health."""

    def __init__(self, cfg: ServeConfig, engine: Any, metrics: Any, gate: GateRunner | None = None) -> None:
        from edge.serve.journaling import open_journaling

        self.cfg, self.engine, self.metrics, self.gate = cfg, engine, metrics, gate
        self.scheduler = Scheduler(engine, metrics, cfg.queue_depth)
        self.journaling = open_journaling(cfg, metrics)  # before serving: every decision is journaled
        self.triggers: TriggerSubscriber | None = None  # the MQTT trigger topic, once started
        self.service = InspectorService(cfg, engine, self.scheduler, metrics, gate, self.journaling)
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
        self.server.add_generic_rpc_handlers([service_handler(self.service)])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, (SERVICE, health.SERVICE_NAME))

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
        self.service.cameras.start()
        self.triggers = start_triggers(self.cfg, self.service.cameras, self.metrics)
        await self.server.start()
        await self.set_serving(True)
        return bound

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE):
            await self.health.set(name, status)
        self.metrics.set_serving(serving)

    async def stop(self, grace: float | None = None) -> bool:
        """Drain within ``grace`` seconds (default: the config's); True if no description had to be cancelled.

        1. health NOT_SERVING, new RPCs refused (UNAVAILABLE), waiting descriptions dropped (shutdown);
        2. open Inspect sessions drop their buffered frames (shutdown) and take no new ones;
        3. the running description may finish until the deadline, then it is cancelled between tokens;
        4. every stream gets its last events, then the server stops; all of it within the deadline plus
           ``OVERRUN_SECONDS``.
        """
        grace = self.cfg.grace_seconds if grace is None else grace
        start = time.monotonic()
        deadline, hard = start + grace, start + grace + OVERRUN_SECONDS

        def until(t: float) -> float:
            return max(t - time.monotonic(), 0.0)

        await self.set_serving(False)
        if self.triggers is not None:  # no new triggers from the line while draining
            await asyncio.to_thread(self.triggers.stop)
        self.service.draining = True
        self.service.events.shutdown()
        was_running = self.scheduler.busy
        dropped = len(self.scheduler.close())
        self.service.sessions.shutdown()
        self.service.cameras.shutdown()
        finished = await asyncio.to_thread(self.scheduler.drain, until(deadline))
        if not finished:
            self.scheduler.cancel_running()
            await asyncio.to_thread(self.scheduler.drain, min(CANCEL_WAIT_SECONDS, until(hard)))
            self.service.sessions.shutdown(force=True)  # whatever the engine still holds ends as shutdown now
            self.service.cameras.shutdown(force=True)
        delivered = await self.service.wait_answered(until(hard))
        delivered = await self.service.sessions.wait_closed(until(hard)) and delivered
        delivered = await self.service.cameras.wait_closed(until(hard)) and delivered
        # Everything that matters has been answered; what grpc still holds is replies being flushed, or a call that
        # arrived as the server began stopping and was never handed to us (it would wait out the whole grace)
        await self.server.stop(min(until(hard), FLUSH_SECONDS) or 0.05)
        if self.gate is not None:
            self.gate.close()
        if self.journaling is not None:  # every final event was journaled before it was sent: drain and close
            await asyncio.to_thread(self.journaling.close, max(until(hard), 0.2))
        if not was_running and finished:
            what = "nothing was running"
        else:
            what = "the running description " + ("finished" if finished else "was cancelled")
        log.info(
            "drained in %.1f s of %g s grace: %s; %d waiting description(s) dropped%s",
            time.monotonic() - start,
            grace,
            what,
            dropped,
            "" if delivered else "; some replies could not be delivered before the deadline",
        )
        return finished


async def create_server(
    cfg: ServeConfig, engine: Any, metrics: Any | None = None, gate: GateRunner | None = None
) -> tuple[Daemon, int]:
    """Build and start a daemon on ``cfg.listen`` (port 0 picks a free port); return it and the port."""
    if metrics is None:
        from prometheus_client import CollectorRegistry

        from edge.serve.metrics import Metrics

        metrics = Metrics(CollectorRegistry())
    daemon = Daemon(cfg, engine, metrics, gate)
    try:
        port = await daemon.start()
    except BaseException:
        if daemon.journaling is not None:
            daemon.journaling.close(1.0)
        raise
    return daemon, port


def load_station_gate(cfg: ServeConfig, metrics: Any) -> GateRunner | None:
    """Verify and load the station's gate (``gate = DIR``), if any, on its own thread."""
    if cfg.gate is None:
        return None
    from edge.gate import load_gate

    gate = load_gate(cfg.gate, verify=True, threads=1)
    metrics.gate_threshold.set(cfg.gate_threshold or 0.5)
    kinds = " and ".join(k for k, g in (("image", gate.image), ("sound", gate.sound)) if g is not None)
    log.info("gate %s loaded from %s (%s)", gate.gate_id, cfg.gate, kinds)
    return GateRunner(gate, metrics, cfg.gate_threshold or None)


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
        kernels=engine.sessions.kernels.label,
        attention="edge" if engine.sessions.attention_nodes else "onnxruntime",
        kv_cache=engine.sessions.kv_type,
    )
    log.info("bundle %s loaded, verified and warmed up in %.1f s", m.bundle_id, load_s)
    return engine


async def _serve(cfg: ServeConfig) -> int:
    from edge.serve.preflight import run_preflight

    run_preflight(cfg)  # files, credentials and both ports, before the bundle is touched (~37 s on the 12B)
    log.info("config: %s", cfg.redacted())
    import cv2
    from prometheus_client import CollectorRegistry

    from edge.serve.metrics import Metrics
    from edge.serve.metrics_http import start_http

    cv2.utils.logging.setLogLevel(
        cv2.utils.logging.LOG_LEVEL_SILENT
    )  # decode failures are reported to the client with the field; keep libpng noise out of logs
    cv2.setNumThreads(1)  # the gate's resizes and warps stay on its own thread, off the engine's cores
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    mhost, mport = split_hostport(cfg.metrics_listen, "metrics_listen")
    try:
        http, bound_metrics = start_http(registry, mhost, mport)
    except OSError as exc:
        raise ConfigError(f"metrics_listen {cfg.metrics_listen}: cannot bind ({exc.strerror})") from exc
    try:
        gate = await asyncio.to_thread(load_station_gate, cfg, metrics)  # quick: before the bundle
        engine = await asyncio.to_thread(load_engine, cfg, metrics)
        daemon, port = await create_server(cfg, engine, metrics, gate)
        log.info("serving edge.v1 on %s (port %d), metrics on %s:%d", cfg.listen, port, mhost, bound_metrics)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("signal received: draining (grace %.0f s)", cfg.grace_seconds)
        await daemon.stop()
        return 0
    finally:
        http.stop()


def run(cfg: ServeConfig) -> int:
    return asyncio.run(_serve(cfg))
