"""A daemon that pulls its cameras itself: frames flow with no client, outages show in GetInfo and the metrics
(never in health), the stream comes back without a restart, and a line trigger describes the nearest frame."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cv2
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import generate_latest

from edge.gate import load_gate
from edge.sources.config import CameraConfig
from edge.station.events import Event, Finished, Scored
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc
from tests.serve.conftest import RunningDaemon, serve_config
from tests.sources.conftest import eventually
from tests.sources.servers import RtspServer, require_rtsp_server

pytestmark = pytest.mark.slow


class Events:
    """A subscriber to the daemon's camera events (where the journal hooks in)."""

    def __init__(self, daemon: RunningDaemon) -> None:
        self.items: list[tuple[str, Event]] = []
        daemon.daemon.service.cameras.subscribe(lambda cam, ev: self.items.append((cam, ev)))

    def of(self, kind: type) -> list[Any]:
        return [ev for _, ev in list(self.items) if isinstance(ev, kind)]


def source(d: RunningDaemon, cam: str) -> pb.SourceStatus:
    with grpc.insecure_channel(d.target) as ch:
        info = pb_grpc.InspectorServiceStub(ch).GetInfo(pb.GetInfoRequest(), timeout=30)
    return next(s for s in info.sources if s.id == cam)


def serving(d: RunningDaemon) -> bool:
    with grpc.insecure_channel(d.target) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=30)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def test_rtsp_camera_streams_backs_off_and_resumes_without_a_restart(
    fp32_bundle: Path, engine: Any, rtsp: RtspServer
) -> None:
    cam = CameraConfig(
        id="press-1",
        url=rtsp.url(),
        trigger="external",
        fps=5,
        line="L2",
        station="st-7",
        stall_seconds=3,
        open_timeout_seconds=5,
        backoff_initial_seconds=0.5,
        backoff_max_seconds=2,
        audio="stream",
    )
    d = RunningDaemon(serve_config(fp32_bundle, cameras=(cam,)), engine)
    events = Events(d)
    try:
        eventually(lambda: source(d, "press-1").state == pb.SOURCE_STATE_STREAMING, "the camera streams")
        s = source(d, "press-1")
        assert s.url == rtsp.url() and s.trigger == "external" and (s.width, s.height, s.codec) == (320, 240, "h264")
        assert d.sample("edge_inspector_camera_up", {"camera": "press-1"}) == 1
        eventually(lambda: d.sample("edge_inspector_frames_received_total") > 2, "frames arrive")
        eventually(lambda: source(d, "press-1").audio_state == pb.SOURCE_STATE_STREAMING, "the audio track")
        eventually(lambda: d.sample("edge_inspector_audio_received_seconds_total") > 1, "audio in the session")

        with grpc.insecure_channel(d.target) as ch:  # the PLC's trigger: the nearest frame is described
            stub = pb_grpc.InspectorServiceStub(ch)
            reply = stub.Trigger(pb.TriggerRequest(camera_id="press-1", part_id="P-0042", reason="in position"))
            for bad, code in (("nope", grpc.StatusCode.INVALID_ARGUMENT),):
                with pytest.raises(grpc.RpcError) as err:
                    stub.Trigger(pb.TriggerRequest(camera_id=bad), timeout=30)
                assert err.value.code() == code and "no camera 'nope'" in err.value.details()
        assert reply.frame_sequence > 0 and reply.frame_capture_time > 0
        done = eventually(lambda: events.of(Finished), "the triggered description")
        assert done[0].frame_sequence == reply.frame_sequence
        ctx = done[0].context
        assert (ctx.part_id, ctx.camera_id, ctx.line_id, ctx.station_id) == ("P-0042", "press-1", "L2", "st-7")

        rtsp.stop()  # the camera goes away: backoff, shown in GetInfo and the metrics; health stays SERVING
        eventually(lambda: source(d, "press-1").state in (pb.SOURCE_STATE_BACKOFF,), "backoff after the outage")
        assert d.sample("edge_inspector_camera_up", {"camera": "press-1"}) == 0
        eventually(lambda: d.sample("edge_inspector_camera_state", {"camera": "press-1", "state": "backoff"}), "metric")
        assert source(d, "press-1").last_error and serving(d)
        before = source(d, "press-1").frames_received

        rtsp.start()  # same port: frames resume, no daemon restart
        eventually(
            lambda: source(d, "press-1").state == pb.SOURCE_STATE_STREAMING,
            "streaming again",
            detail=rtsp.errors,
        )
        eventually(lambda: source(d, "press-1").frames_received > before + 5, "new frames")
        s = source(d, "press-1")
        assert s.reconnects >= 1 and s.last_error == "" and serving(d)
        eventually(lambda: source(d, "press-1").audio_state == pb.SOURCE_STATE_STREAMING, "the audio is back too")
        assert d.sample("edge_inspector_camera_reconnects_total", {"camera": "press-1"}) >= 1
    finally:
        d.stop()
        if rtsp.proc is None:
            rtsp.start()


def test_wrong_credentials_fail_clearly_and_never_leak(
    fp32_bundle: Path, engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    require_rtsp_server()
    secret = "Wr0ngPa55"
    with_auth = RtspServer("--user", "admin", "--password", "right-one")
    cam = CameraConfig(
        id="gate-cam",
        url=with_auth.url(credentials=f"admin:{secret}"),
        trigger="interval",
        backoff_initial_seconds=0.5,
        backoff_max_seconds=2,
    )
    caplog.set_level(logging.DEBUG)
    d = RunningDaemon(serve_config(fp32_bundle, cameras=(cam,)), engine)
    try:
        s = eventually(lambda: (x := source(d, "gate-cam")).state == pb.SOURCE_STATE_FAILED and x, "failed state")
        assert "authentication failed" in s.last_error and s.url == with_auth.url(credentials="***")[:0] + s.url
        assert secret not in s.url and "***@" in s.url and serving(d)
        text = generate_latest(d.registry).decode()
        assert 'edge_inspector_camera_state{camera="gate-cam",state="failed"} 1.0' in text
    finally:
        d.stop()
        with_auth.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "camera gate-cam: cannot open rtsp://***@127.0.0.1" in logged and "authentication failed" in logged
    assert secret not in logged and secret not in text


def defect_frames(small_dataset: Path, fitted_gate: Path, out: Path) -> int:
    """0000.png… : good parts with three the gate flags among them; returns how many frames."""
    gate = load_gate(fitted_gate).image
    assert gate is not None

    def flagged(p: Path) -> bool:
        return bool(gate.score(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)).label)

    goods = [p for p in sorted((small_dataset / "test/good").glob("*.png")) if not flagged(p)][:9]
    bad = [p for p in sorted((small_dataset / "test").glob("*/*.png")) if p.parent.name != "good" and flagged(p)][:3]
    assert len(goods) >= 6 and len(bad) == 3
    frames = goods[:3] + bad[:1] + goods[3:6] + bad[1:2] + goods[6:] + bad[2:]
    out.mkdir()
    for i, p in enumerate(frames):
        cv2.imwrite(str(out / f"{i:04d}.png"), cv2.imread(str(p)))
    return len(frames)


def test_a_gated_rtsp_camera_describes_anomalies_with_no_client(
    fp32_bundle: Path, engine: Any, small_dataset: Path, fitted_gate: Path, tmp_path: Path
) -> None:
    require_rtsp_server()
    n = defect_frames(small_dataset, fitted_gate, tmp_path / "frames")
    server = RtspServer("--images", str(tmp_path / "frames"), "--fps", "5")
    cam = CameraConfig(id="line-cam", url=server.url(), fps=5, line="L1", station="st-1")
    cfg = serve_config(
        fp32_bundle, cameras=(cam,), gate=fitted_gate, gate_backlog=32, queue_depth=4, state_dir=tmp_path / "state"
    )
    d = RunningDaemon(cfg, engine, load_gate(fitted_gate))
    events = Events(d)
    try:
        assert source(d, "line-cam").trigger == "gated"  # the default with an image gate
        described = eventually(lambda: [f for f in events.of(Finished) if f.gate is not None], "a described anomaly")
        eventually(lambda: len(events.of(Scored)) >= n, "good frames pass the gate")
        f = described[0]
        assert f.gate.label and f.gate.score > 0.5 and f.gate.region is not None and f.frame_sequence > 0
        assert f.context.camera_id == "line-cam" and f.outcome.result.token_ids
        assert all(not s.gate.label for s in events.of(Scored))
        assert d.sample("edge_inspector_camera_events_total", {"camera": "line-cam", "event": "finished"}) >= 1
        # the camera's decisions are journaled with their evidence, as an Inspect session's are
        journal = d.daemon.journaling.journal
        docs = [json.loads(e.payload) for e in journal.read(0, 1000)]
        assert {doc["source"] for doc in docs} == {"camera:line-cam"}
        finished = [doc for doc in docs if doc["kind"] == "finished" and doc["frame"]["sequence"] == f.frame_sequence]
        assert finished and finished[0]["anomalous"] is True and finished[0]["context"]["camera_id"] == "line-cam"
        assert {r["role"] for r in finished[0]["evidence"]} == {"frame", "anomaly_map"}
        assert any(doc["kind"] == "scored" and doc["scored"]["label"] is False for doc in docs)
    finally:
        d.stop()
        server.stop()
