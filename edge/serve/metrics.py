"""Prometheus metrics of the station daemon, on an injected registry, served on their own HTTP port."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from edge import __version__
from edge.serve.memory_metrics import MemoryCollector
from edge.station.events import DropReason

# Label values are closed sets so a client can never create series (STYLE rule 10).
RPCS = (
    "Describe",
    "DescribeStream",
    "Inspect",
    "GetInfo",
    "Trigger",
    "ListEvents",
    "WatchEvents",
    "GetEvidence",
)  # anything else is counted as "other"
# grpc.StatusCode names, spelled out so the metrics module does not import grpc; anything else is "UNKNOWN".
CODES = frozenset(
    "OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS "  # noqa: SIM905 (compact)
    "PERMISSION_DENIED RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE UNIMPLEMENTED INTERNAL "
    "UNAVAILABLE DATA_LOSS UNAUTHENTICATED".split()
)
DROP_REASONS = tuple(r.value for r in DropReason)
OUTCOMES = ("ok", "error", "cancelled")
GATE_KINDS = ("image", "sound")
GATE_LABELS = ("normal", "anomalous")
# Gate scores are normalized: the calibrated threshold is 0.5 and anomalib clamps to [0, 1].
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0)
GATE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
EVIDENCE_CLASSES = ("anomaly", "normal")  # edge.journal.records.EvidenceClass
MQTT_ERRORS = ("tls", "auth", "refused", "network")  # why a broker connection failed
TRIGGER_RESULTS = ("accepted", "refused")  # a message on the MQTT trigger topic

# A 12B model on a CPU takes seconds to minutes per description; the tiny test model takes under a millisecond.
# 1-2.5-5 steps up to 10 s, then finer steps where latency alerts put their thresholds.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120)
# Decode steps: about 1 ms (tiny model) to a few seconds (12B on a slow station).
TOKEN_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5)


class Metrics:
    """Every metric the daemon exposes, registered on ``registry`` (never on the global default registry).

    >>> registry = CollectorRegistry()
    >>> m = Metrics(registry)
    >>> m.frame_dropped("stale")
    >>> registry.get_sample_value("edge_inspector_frames_dropped_total", {"reason": "stale"})
    1.0
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        namespace: str = "edge_inspector",
        *,
        proc_self: Path = Path("/proc/self"),
        cgroup_root: Path = Path("/sys/fs/cgroup"),
    ) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, namespace=namespace, registry=registry)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, namespace=namespace, registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...] = STAGE_BUCKETS) -> Histogram:
            return Histogram(name, doc, namespace=namespace, registry=registry, buckets=buckets)

        self.requests = counter("requests_total", "RPCs finished, by RPC and gRPC status code.", ("rpc", "code"))
        # Separate from requests_total so every RPC's error series exists at 0 before the first error; otherwise
        # rate() cannot see that first error.
        self.request_errors = counter("request_errors_total", "RPCs finished with a status other than OK.", ("rpc",))
        self.frames_received = counter("frames_received_total", "Frames received on Inspect streams.")
        self.audio_seconds = counter("audio_received_seconds_total", "Seconds of audio received on Inspect streams.")
        self.frames_dropped = counter("frames_dropped_total", "Frames not described, by reason.", ("reason",))
        self.queue_depth = gauge("queue_depth", "Descriptions waiting for the engine.")
        self.queue_capacity = gauge("queue_capacity", "Descriptions that may wait before frames are dropped.")
        self.active_streams = gauge("active_streams", "Open Inspect streams.")
        self.preprocess = histogram("preprocess_seconds", "Decoding and preprocessing images and audio.")
        self.queue_wait = histogram("queue_wait_seconds", "Time a description waited for the engine.")
        self.prefill = histogram("prefill_seconds", "Prefill of the prompt, after preprocessing.")
        self.ttft = histogram("time_to_first_token_seconds", "Start of work to the first token (preprocess included).")
        self.inter_token = histogram("inter_token_seconds", "Gap between consecutive tokens.", TOKEN_BUCKETS)
        self.description = histogram("description_seconds", "Start of work to the last token, no queue wait.")
        self.tokens_generated = counter("tokens_generated_total", "Tokens generated.")
        self.prompt_tokens = counter("prompt_tokens_total", "Prompt tokens prefilled (soft tokens included).")
        self.descriptions = counter("descriptions_total", "Descriptions that left the queue, by outcome.", ("outcome",))
        self.gate_frames = counter("gate_frames_total", "Frames the image gate scored, by verdict.", ("label",))
        self.gate_windows = counter(
            "gate_windows_total", "Audio windows the sound gate scored, by verdict.", ("label",)
        )
        self.gate_score = Histogram(
            "gate_score",
            "Normalized gate scores (0.5 = the calibrated threshold).",
            ("kind",),
            namespace=namespace,
            registry=registry,
            buckets=SCORE_BUCKETS,
        )
        self.gate_latency = Histogram(
            "gate_latency_seconds",
            "Gate time per frame or window: decoding and scoring.",
            ("kind",),
            namespace=namespace,
            registry=registry,
            buckets=GATE_BUCKETS,
        )
        self.gate_threshold = gauge("gate_threshold", "The station gate's threshold (0.5 = as calibrated).")
        self.model_load = gauge("model_load_seconds", "Verifying, loading and warming up the bundle.")
        self.serving = gauge("serving", "1 while the gRPC health status is SERVING.")
        self.bundle_verified = gauge("bundle_verified", "1 if the loaded bundle's checksums were verified.")
        self.bundle_loaded = gauge("bundle_loaded", "1 once the bundle is loaded and warmed up.")
        # Info appends "_info": the series is <namespace>_build_info, a gauge at 1 whose labels replace each other.
        self.build_info = Info("build", "Daemon version and the loaded bundle.", namespace=namespace, registry=registry)
        self.build_info.info({"version": __version__, "bundle_id": "", "model": "", "quantization": ""})

        # The event journal, its evidence store and the MQTT publisher (edge/journal).
        self.journal_head = gauge("journal_head_sequence", "Sequence of the newest journaled event.")
        self.journal_published = gauge("journal_published_sequence", "Last sequence the MQTT broker acknowledged.")
        self.journal_backlog = gauge("journal_backlog_events", "Journaled events the broker has not acknowledged.")
        self.journal_bytes = gauge("journal_bytes", "JSON payload bytes of the events the journal holds.")
        self.journal_errors = counter("journal_write_errors_total", "Events that could not be journaled.")
        self.journal_commits = counter(
            "journal_commits_total", "Journal transactions (each one fsync with FULL; a batch of events, paced)."
        )
        self.mqtt_enabled = gauge("mqtt_enabled", "1 when the daemon publishes to an MQTT broker (mqtt_host).")
        self.mqtt_connected = gauge("mqtt_connected", "1 while connected to the MQTT broker.")
        self.mqtt_published = counter("mqtt_published_total", "Events the MQTT broker acknowledged (QoS 1).")
        self.mqtt_publish_errors = counter("mqtt_publish_errors_total", "Publishes the MQTT client refused.")
        self.mqtt_connection_errors = counter(
            "mqtt_connection_errors_total", "Failed connections to the MQTT broker, by reason.", ("reason",)
        )
        self.mqtt_publisher_restarts = counter(
            "mqtt_publisher_restarts_total", "Times the MQTT publisher's own process ended and was started again."
        )
        self.mqtt_triggers = counter(
            "mqtt_triggers_total", "Trigger messages from the MQTT trigger topic, taken or refused.", ("result",)
        )
        self.evidence_bytes = Gauge(
            "evidence_bytes", "Evidence stored, by class.", ("class",), namespace=namespace, registry=registry
        )
        self.evidence_skipped = counter(
            "evidence_skipped_total", "Evidence not stored (free space), by class.", ("class",)
        )
        self.evidence_free = gauge("evidence_free_bytes", "Free space on the evidence disk.")
        self.evidence_floor = gauge("evidence_free_floor_bytes", "Free space below which evidence is skipped.")

        # Every fixed label value starts at 0 so ratios and rate() work from the first scrape.
        for rpc in RPCS:
            self.requests.labels(rpc, "OK")
            self.request_errors.labels(rpc)
        for reason in DROP_REASONS:
            self.frames_dropped.labels(reason)
        for outcome in OUTCOMES:
            self.descriptions.labels(outcome)
        for label in GATE_LABELS:
            self.gate_frames.labels(label)
            self.gate_windows.labels(label)
        for kind in GATE_KINDS:
            self.gate_score.labels(kind)
            self.gate_latency.labels(kind)
        for cls in EVIDENCE_CLASSES:
            self.evidence_bytes.labels(cls)
            self.evidence_skipped.labels(cls)
        for reason in MQTT_ERRORS:
            self.mqtt_connection_errors.labels(reason)
        for result in TRIGGER_RESULTS:
            self.mqtt_triggers.labels(result)

        registry.register(MemoryCollector(namespace, proc_self, cgroup_root))
        # pulled cameras (edge.serve.cameras attaches their snapshot): up, state, frames, reconnects, frame age…
        from edge.serve.camera_metrics import CameraCollector

        self.cameras = CameraCollector(namespace)
        registry.register(self.cameras)
        # process_start_time_seconds is what a restart-loop alert watches with changes().
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

    def request_done(self, rpc: str, code: str) -> None:
        """Count a finished RPC; ``code`` is a ``grpc.StatusCode`` name such as ``"OK"``."""
        rpc = rpc if rpc in RPCS else "other"  # method names come from clients (auth rejects): keep them bounded
        code = code if code in CODES else "UNKNOWN"
        self.requests.labels(rpc, code).inc()
        if code != "OK":
            self.request_errors.labels(rpc).inc()

    def frame_received(self) -> None:
        self.frames_received.inc()

    def audio_received(self, seconds: float) -> None:
        self.audio_seconds.inc(seconds)

    def frame_dropped(self, reason: str) -> None:
        """Count a dropped frame; ``reason`` is one of ``DROP_REASONS`` (a ValueError otherwise: a bug)."""
        if reason not in DROP_REASONS:
            raise ValueError(f"frame drop reason {reason!r} is not one of {', '.join(DROP_REASONS)}")
        self.frames_dropped.labels(reason).inc()

    def set_queue_capacity(self, n: int) -> None:
        self.queue_capacity.set(n)

    def observe_description(
        self,
        preprocess_s: float,
        queue_s: float,
        prefill_s: float,
        ttft_s: float,
        total_s: float,
        prompt_tokens: int,
        new_tokens: int,
        outcome: str = "ok",
    ) -> None:
        """Record one description that left the queue; ``outcome`` is one of ``OUTCOMES``.

        The stage histograms take completed descriptions only: on error or cancel the scheduler passes 0.0 for
        stages that never ran, and those zeros would drag every quantile down. Queue wait is real either way.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"description outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        self.descriptions.labels(outcome).inc()
        self.queue_wait.observe(queue_s)
        self.prompt_tokens.inc(prompt_tokens)
        self.tokens_generated.inc(new_tokens)
        if outcome == "ok":
            self.preprocess.observe(preprocess_s)
            self.prefill.observe(prefill_s)
            self.ttft.observe(ttft_s)
            self.description.observe(total_s)

    def observe_gate(self, kind: str, score: float, anomalous: bool, seconds: float) -> None:
        """One gate decision: ``kind`` is "image" (a frame) or "sound" (an audio window)."""
        if kind not in GATE_KINDS:
            raise ValueError(f"gate kind {kind!r} is not one of {', '.join(GATE_KINDS)}")
        counter = self.gate_frames if kind == "image" else self.gate_windows
        counter.labels("anomalous" if anomalous else "normal").inc()
        self.gate_score.labels(kind).observe(score)
        self.gate_latency.labels(kind).observe(seconds)

    def observe_inter_token(self, seconds: float) -> None:
        self.inter_token.observe(seconds)

    def set_model(
        self,
        load_seconds: float,
        version: str,
        bundle_id: str,
        model_id: str,
        quantization: str,
        kernels: str = "",
        attention: str = "",
        kv_cache: str = "",
    ) -> None:
        self.model_load.set(load_seconds)
        self.build_info.info(
            {"version": version, "bundle_id": bundle_id, "model": model_id, "quantization": quantization}
            | ({"kernels": kernels} if kernels else {})  # which weight-matmul kernels run (edge.kernels.library)
            | ({"attention": attention} if attention else {})  # attention layers: edge or onnxruntime
            | ({"kv_cache": kv_cache} if kv_cache else {})  # the decoder's KV cache: float16 or float32
        )

    def set_serving(self, serving: bool) -> None:
        self.serving.set(int(serving))

    def set_bundle_state(self, verified: bool, loaded: bool) -> None:
        self.bundle_verified.set(int(verified))
        self.bundle_loaded.set(int(loaded))
