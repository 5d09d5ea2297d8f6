"""edge.serve.metrics: values on a private registry, the cgroup parser on real files, the real endpoint and promtool."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from edge import __version__
from edge.serve.metrics import (
    DROP_REASONS,
    EVIDENCE_CLASSES,
    GATE_KINDS,
    GATE_LABELS,
    MQTT_ERRORS,
    OUTCOMES,
    RPCS,
    STAGE_BUCKETS,
    TRIGGER_RESULTS,
    Metrics,
)
from edge.serve.metrics_http import start_http
from tests.tools import required_tool

STAGES = ("preprocess", "queue_wait", "prefill", "time_to_first_token", "description")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_every_fixed_label_value_starts_at_zero(registry: CollectorRegistry, metrics: Metrics) -> None:
    for reason in DROP_REASONS:
        assert value(registry, "edge_inspector_frames_dropped_total", reason=reason) == 0
    for outcome in OUTCOMES:
        assert value(registry, "edge_inspector_descriptions_total", outcome=outcome) == 0
    for rpc in RPCS:
        assert value(registry, "edge_inspector_requests_total", rpc=rpc, code="OK") == 0
        assert value(registry, "edge_inspector_request_errors_total", rpc=rpc) == 0
    for gauge in ("serving", "bundle_verified", "bundle_loaded", "queue_depth", "active_streams"):
        assert value(registry, f"edge_inspector_{gauge}") == 0
    # Before a bundle loads the daemon still reports its version, so version-skew queries see it.
    build = {"version": __version__, "bundle_id": "", "model": "", "quantization": ""}
    assert value(registry, "edge_inspector_build_info", **build) == 1


def test_requests_and_errors_by_rpc_and_code(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.request_done("Describe", "OK")
    metrics.request_done("Describe", "OK")
    metrics.request_done("Inspect", "INVALID_ARGUMENT")
    assert value(registry, "edge_inspector_requests_total", rpc="Describe", code="OK") == 2
    assert value(registry, "edge_inspector_request_errors_total", rpc="Describe") == 0
    assert value(registry, "edge_inspector_requests_total", rpc="Inspect", code="INVALID_ARGUMENT") == 1
    assert value(registry, "edge_inspector_request_errors_total", rpc="Inspect") == 1


def test_client_supplied_names_are_bounded(registry: CollectorRegistry, metrics: Metrics) -> None:
    # The auth interceptor reports whatever method a client called; it must not become a label value.
    metrics.request_done("/evil.Service/PartNumber12345", "OK")
    metrics.request_done("Describe", "StatusCode.NOT_A_CODE")
    assert value(registry, "edge_inspector_requests_total", rpc="other", code="OK") == 1
    assert value(registry, "edge_inspector_requests_total", rpc="Describe", code="UNKNOWN") == 1
    assert value(registry, "edge_inspector_request_errors_total", rpc="Describe") == 1


def test_no_label_value_outside_the_fixed_sets(registry: CollectorRegistry, metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="not one of"):
        metrics.frame_dropped("part-4711")
    with pytest.raises(ValueError, match="not one of"):
        metrics.observe_description(0, 0, 0, 0, 0, 0, 0, outcome="frame-99")
    metrics.request_done("Bogus", "BOGUS")
    codes = {"OK", "UNKNOWN"}
    with pytest.raises(ValueError, match="not one of"):
        metrics.observe_gate("camera-7", 0.3, False, 0.001)
    allowed = {
        "reason": {*DROP_REASONS, *MQTT_ERRORS},
        "outcome": set(OUTCOMES),
        "rpc": {*RPCS, "other"},
        "code": codes,
        "label": set(GATE_LABELS),
        "kind": set(GATE_KINDS),
        "class": set(EVIDENCE_CLASSES),
        "result": set(TRIGGER_RESULTS),
    }
    for family in registry.collect():
        if not family.name.startswith("edge_inspector_") or family.name == "edge_inspector_build":
            continue
        for sample in family.samples:
            for label, v in sample.labels.items():
                if label != "le":
                    assert v in allowed[label], (sample.name, label, v)


def test_frames_audio_and_drops(registry: CollectorRegistry, metrics: Metrics) -> None:
    for _ in range(3):
        metrics.frame_received()
    metrics.audio_received(0.25)
    metrics.audio_received(1.5)
    metrics.frame_dropped("superseded")
    metrics.frame_dropped("queue_full")
    metrics.frame_dropped("queue_full")
    assert value(registry, "edge_inspector_frames_received_total") == 3
    assert value(registry, "edge_inspector_audio_received_seconds_total") == 1.75
    assert value(registry, "edge_inspector_frames_dropped_total", reason="superseded") == 1
    assert value(registry, "edge_inspector_frames_dropped_total", reason="queue_full") == 2
    assert value(registry, "edge_inspector_frames_dropped_total", reason="stale") == 0


def test_stage_histograms_move_after_a_description(registry: CollectorRegistry, metrics: Metrics) -> None:
    for stage in STAGES:
        assert value(registry, f"edge_inspector_{stage}_seconds_count") == 0
    # A 12B model on a CPU: seconds to tens of seconds per stage.
    metrics.observe_description(0.12, 0.5, 7.0, 9.5, 41.0, prompt_tokens=300, new_tokens=60)
    observed = {"preprocess": 0.12, "queue_wait": 0.5, "prefill": 7.0, "time_to_first_token": 9.5, "description": 41}
    for stage, seconds in observed.items():
        name = f"edge_inspector_{stage}_seconds"
        assert value(registry, f"{name}_count") == 1
        assert value(registry, f"{name}_sum") == pytest.approx(seconds)
        below = max(b for b in STAGE_BUCKETS if b < seconds)
        above = min(b for b in STAGE_BUCKETS if b >= seconds)
        assert value(registry, f"{name}_bucket", le=str(float(below))) == 0
        assert value(registry, f"{name}_bucket", le=str(float(above))) == 1
    assert value(registry, "edge_inspector_prompt_tokens_total") == 300
    assert value(registry, "edge_inspector_tokens_generated_total") == 60
    assert value(registry, "edge_inspector_descriptions_total", outcome="ok") == 1


def test_tiny_model_latencies_land_in_the_lowest_bucket(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.observe_description(0.0002, 0.0001, 0.0003, 0.0006, 0.0009, 12, 2)
    metrics.observe_inter_token(0.0004)
    for stage in (*STAGES, "inter_token"):
        assert value(registry, f"edge_inspector_{stage}_seconds_bucket", le="0.001") == 1


def test_failed_descriptions_keep_stage_quantiles_clean(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.observe_description(0.0, 2.0, 0.0, 0.0, 0.3, 0, 0, outcome="error")
    metrics.observe_description(0.1, 1.0, 0.0, 0.0, 0.2, 0, 0, outcome="cancelled")
    assert value(registry, "edge_inspector_descriptions_total", outcome="error") == 1
    assert value(registry, "edge_inspector_descriptions_total", outcome="cancelled") == 1
    assert value(registry, "edge_inspector_queue_wait_seconds_count") == 2  # the wait happened either way
    for stage in ("preprocess", "prefill", "time_to_first_token", "description"):
        assert value(registry, f"edge_inspector_{stage}_seconds_count") == 0


def test_inter_token_histogram(registry: CollectorRegistry, metrics: Metrics) -> None:
    for gap in (0.18, 0.22, 0.3):
        metrics.observe_inter_token(gap)
    assert value(registry, "edge_inspector_inter_token_seconds_count") == 3
    assert value(registry, "edge_inspector_inter_token_seconds_bucket", le="0.2") == 1
    assert value(registry, "edge_inspector_inter_token_seconds_bucket", le="0.3") == 3


def test_gauges_and_model(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.set_queue_capacity(8)
    metrics.queue_depth.set(3)
    metrics.active_streams.inc()
    metrics.set_serving(True)
    metrics.set_bundle_state(verified=True, loaded=False)
    metrics.set_model(95.5, "0.1.0", "bundle-a", "google/gemma-4-12b", "int4")
    metrics.set_model(96.0, "0.2.0", "bundle-b", "google/gemma-4-12b", "int8")  # a reload replaces the series
    assert value(registry, "edge_inspector_queue_capacity") == 8
    assert value(registry, "edge_inspector_queue_depth") == 3
    assert value(registry, "edge_inspector_active_streams") == 1
    assert value(registry, "edge_inspector_serving") == 1
    assert value(registry, "edge_inspector_bundle_verified") == 1
    assert value(registry, "edge_inspector_bundle_loaded") == 0
    assert value(registry, "edge_inspector_model_load_seconds") == 96
    build = [s for f in registry.collect() for s in f.samples if s.name == "edge_inspector_build_info"]
    assert [(s.labels, s.value) for s in build] == [
        ({"version": "0.2.0", "bundle_id": "bundle-b", "model": "google/gemma-4-12b", "quantization": "int8"}, 1)
    ]


def test_nothing_is_registered_on_the_default_registry() -> None:
    Metrics(CollectorRegistry())
    Metrics(CollectorRegistry())  # a second one would collide if anything were global
    assert not [f.name for f in REGISTRY.collect() if f.name.startswith("edge_inspector")]


def test_process_collectors_are_on_the_injected_registry(registry: CollectorRegistry, metrics: Metrics) -> None:
    assert value(registry, "process_start_time_seconds") is not None  # a restart-loop alert uses changes() on it
    assert value(registry, "process_resident_memory_bytes") is not None


# -- memory and cgroups: fake /proc/self and /sys/fs/cgroup trees written as real files in tmp_path --------------

V1_UNLIMITED_4K = "9223372036854771712\n"  # what this kind of machine shows for "no limit" with 4 KiB pages
V1_UNLIMITED_64K = "9223372036854710272\n"  # the same with 64 KiB pages (arm64)
V2 = {"cgroup.controllers": "cpuset cpu io memory pids\n"}
SVC = "system.slice/edge-inspector.service"

CGROUP_CASES = {
    "v2-limit-and-high": (
        f"0::/{SVC}\n",
        {**V2, f"{SVC}/memory.max": "8589934592\n", f"{SVC}/memory.high": "7516192768\n"},
        8589934592,
        7516192768,
    ),
    "v2-max-is-no-limit": (
        f"0::/{SVC}\n",
        {**V2, f"{SVC}/memory.max": "max\n", f"{SVC}/memory.high": "max\n"},
        None,
        None,
    ),
    "v2-parent-binds": (
        f"0::/{SVC}\n",
        {**V2, f"{SVC}/memory.max": "max\n", "system.slice/memory.max": "4294967296\n"},
        4294967296,
        None,
    ),
    "v2-leaf-tighter-than-parent": (
        f"0::/{SVC}\n",
        {**V2, f"{SVC}/memory.max": "2147483648\n", "system.slice/memory.max": "4294967296\n"},
        2147483648,
        None,
    ),
    "v2-container-without-cgroupns": (
        "0::/system.slice/docker-0123abcd.scope\n",
        {**V2, "memory.max": "2147483648\n", "memory.high": "max\n"},
        2147483648,
        None,
    ),
    "v2-outside-namespace-root": ("0::/../../x.scope\n", {**V2, "memory.max": "1073741824\n"}, 1073741824, None),
    "v2-root-cgroup": ("0::/\n", V2, None, None),
    "v1-limit": (
        "12:memory:/edge\n11:cpu,cpuacct:/edge\n0::/edge\n",
        {"memory/edge/memory.limit_in_bytes": "1073741824\n", "memory/memory.limit_in_bytes": V1_UNLIMITED_4K},
        1073741824,
        None,
    ),
    "v1-unlimited-4k": (
        "4:memory:/process_api/eef93333\n0::/\n",
        {"memory/process_api/eef93333/memory.limit_in_bytes": V1_UNLIMITED_4K, "unified/cgroup.controllers": ""},
        None,
        None,
    ),
    "v1-unlimited-64k": ("4:memory:/a\n", {"memory/a/memory.limit_in_bytes": V1_UNLIMITED_64K}, None, None),
    "garbage": (f"0::/{SVC}\n", {**V2, f"{SVC}/memory.max": "banana\n"}, None, None),
    "no-cgroup-files": ("", {}, None, None),
}


def fake_host(tmp_path: Path, cgroup: str | None, files: dict[str, str], status: str) -> CollectorRegistry:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    proc.mkdir()
    root.mkdir()
    if cgroup is not None:
        (proc / "cgroup").write_text(cgroup)
    (proc / "status").write_text(status)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    registry = CollectorRegistry()
    Metrics(registry, proc_self=proc, cgroup_root=root)
    return registry


@pytest.mark.parametrize(("cgroup", "files", "limit", "high"), CGROUP_CASES.values(), ids=CGROUP_CASES.keys())
def test_memory_limits_from_cgroup_files(
    tmp_path: Path, cgroup: str, files: dict[str, str], limit: float | None, high: float | None
) -> None:
    registry = fake_host(tmp_path, cgroup, files, "Name:\tedge\nVmRSS:\t    2048 kB\nThreads:\t4\n")
    assert value(registry, "edge_inspector_resident_memory_bytes") == 2048 * 1024
    assert value(registry, "edge_inspector_memory_limit_bytes") == limit
    assert value(registry, "edge_inspector_memory_high_bytes") == high


def test_missing_proc_files_leave_series_out(tmp_path: Path) -> None:
    registry = fake_host(tmp_path, None, {}, "Name:\tkthread\n")
    for name in ("resident_memory_bytes", "memory_limit_bytes", "memory_high_bytes"):
        assert value(registry, f"edge_inspector_{name}") is None


def test_memory_is_read_at_scrape_time(tmp_path: Path) -> None:
    registry = fake_host(tmp_path, f"0::/{SVC}\n", {**V2, f"{SVC}/memory.max": "max\n"}, "VmRSS:\t1 kB\n")
    assert value(registry, "edge_inspector_memory_limit_bytes") is None
    (tmp_path / "cgroup" / SVC / "memory.max").write_text("3221225472\n")  # systemctl set-property at runtime
    (tmp_path / "proc" / "status").write_text("VmRSS:\t5 kB\n")
    assert value(registry, "edge_inspector_memory_limit_bytes") == 3221225472
    assert value(registry, "edge_inspector_resident_memory_bytes") == 5 * 1024


def test_memory_on_this_machine(registry: CollectorRegistry, metrics: Metrics) -> None:
    rss = value(registry, "edge_inspector_resident_memory_bytes")
    process_rss = value(registry, "process_resident_memory_bytes")
    assert rss is not None and process_rss is not None
    assert rss > 1 << 20
    assert abs(rss - process_rss) < 0.25 * process_rss  # two readings of the same thing, a moment apart
    # Whatever this machine has (a build box often has no limit): if there is one, we run under it.
    limit = value(registry, "edge_inspector_memory_limit_bytes")
    assert limit is None or rss <= limit < 1 << 60
    high = value(registry, "edge_inspector_memory_high_bytes")
    assert high is None or 0 < high < 1 << 60


# -- the real endpoint, checked by the real promtool --------------------------------------------------------------


def promtool() -> str:
    return required_tool("promtool", "prometheus")


def test_endpoint_passes_promtool(registry: CollectorRegistry, metrics: Metrics) -> None:
    tool = promtool()
    metrics.request_done("DescribeStream", "DEADLINE_EXCEEDED")
    metrics.frame_dropped("stale")
    metrics.observe_description(0.1, 0.2, 3.0, 4.0, 20.0, 280, 40)
    metrics.observe_inter_token(0.2)
    metrics.set_model(80.0, __version__, "b-1", "google/gemma-4-12b", "int4")
    server, port = start_http(registry, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            assert resp.status == 200
            text = resp.read()
    finally:
        server.stop()
    assert b"edge_inspector_prefill_seconds_count 1.0" in text
    assert b"edge_inspector_build_info{" in text
    check = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert (check.returncode, check.stdout, check.stderr) == (0, b"", b"")


def test_stop_closes_the_port_and_joins_the_thread(registry: CollectorRegistry, metrics: Metrics) -> None:
    server, port = start_http(registry, "127.0.0.1", 0)
    assert port > 0 and server.port == port and server.thread.is_alive()
    server.stop()
    server.stop()  # idempotent: the daemon's finally may run after an earlier stop
    assert not server.thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
