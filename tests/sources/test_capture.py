"""Capture loops on real streams (no daemon): RTSP over TCP and UDP, HTTP MJPEG, a looping file under its fps
cap, a server that accepts and never answers, a stream that freezes mid-read, and a short reconnect storm."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge.sources.camera import CameraRunner
from edge.sources.config import CameraConfig
from tests.sources.conftest import eventually
from tests.sources.servers import FreezingRelay, MjpegServer, RtspServer, SilentServer
from tests.tools import rss_mib

log = logging.getLogger("tests.cameras")


class Frames:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.shapes: set[tuple[int, ...]] = set()

    def __call__(self, rgb: np.ndarray, t: float) -> None:
        self.times.append(time.monotonic())
        self.shapes.add(rgb.shape)


def run(camera: CameraConfig) -> tuple[CameraRunner, Frames]:
    frames = Frames()
    runner = CameraRunner(camera, frames, log)
    runner.start()
    return runner, frames


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_frames_arrive_cut_to_the_roi(rtsp: RtspServer, transport: str) -> None:
    runner, frames = run(CameraConfig(id="c", url=rtsp.url(), transport=transport, fps=5, roi=(10, 20, 110, 70)))
    try:
        eventually(lambda: len(frames.times) >= 5, "frames")
        assert frames.shapes == {(50, 100, 3)}
        s = runner.status()
        assert (
            s.state == "streaming" and s.info is not None and s.info.codec == "h264" and s.frames >= len(frames.times)
        )
    finally:
        assert runner.stop()


def test_http_mjpeg(tmp_path: Path) -> None:
    server = MjpegServer(fps=10)
    runner, frames = run(CameraConfig(id="m", url=server.url(), fps=5))
    try:
        eventually(lambda: len(frames.times) >= 5, "MJPEG frames")
        assert frames.shapes == {(240, 320, 3)} and runner.status().info.codec == "MJPG"  # type: ignore[union-attr]
    finally:
        runner.stop()
        server.close()
    bad = MjpegServer(fps=10, password="right")
    runner, frames = run(CameraConfig(id="m2", url=bad.url("admin:wrong"), backoff_max_seconds=2))
    try:
        s = eventually(lambda: (x := runner.status()).state == "failed" and x, "failed on 401")
        assert "authentication failed" in s.error and "wrong" not in s.error and s.url.startswith("http://***@")
    finally:
        runner.stop()
        bad.close()


def test_a_file_loops_and_respects_the_fps_cap(video_file: Path) -> None:
    runner, frames = run(CameraConfig(id="f", url=str(video_file), fps=4))
    try:
        eventually(lambda: runner.status().frames > 45, "more frames than the file has (it loops)")
        t0, n0 = time.monotonic(), len(frames.times)
        eventually(lambda: len(frames.times) >= n0 + 8, "frames under the cap")
        elapsed, passed = time.monotonic() - t0, len(frames.times) - n0
        read = runner.status().frames
    finally:
        runner.stop()
    # the file plays at 25 fps and loops; at most 4 frames/s of it go on (plus one at the window's edge)
    assert passed <= 4 * elapsed + 1, (passed, elapsed)
    assert read > len(frames.times) * 2 and runner.status().reconnects == 0


def test_a_server_that_never_answers_is_reconnected_by_the_watchdog() -> None:
    silent = SilentServer()
    runner, _ = run(
        CameraConfig(
            id="s",
            url=f"rtsp://127.0.0.1:{silent.port}/x",
            stall_seconds=1,
            open_timeout_seconds=1,
            backoff_initial_seconds=0.2,
            backoff_max_seconds=0.5,
        )
    )
    try:
        s = eventually(lambda: (x := runner.status()).reconnects >= 2 and x, "two reconnects")
        assert s.state in ("backoff", "connecting") and s.frame_age is None and s.error
        assert len(silent.accepted) >= 3  # each attempt really connected (and got nothing)
    finally:
        runner.stop()
        silent.close()


def test_a_stream_that_freezes_mid_read_is_reconnected(rtsp: RtspServer) -> None:
    relay = FreezingRelay(rtsp.port)
    runner, frames = run(
        CameraConfig(
            id="r",
            url=f"rtsp://127.0.0.1:{relay.port}/cam",
            stall_seconds=2,
            open_timeout_seconds=5,
            backoff_initial_seconds=0.2,
            backoff_max_seconds=1,
        )
    )
    try:
        eventually(lambda: len(frames.times) >= 3, "frames through the relay")
        relay.freeze()  # the TCP connection stays open; no byte moves: the read blocks
        s = eventually(lambda: (x := runner.status()).state != "streaming" and x, "the watchdog notices")
        assert "stalled" in s.error or "timed out" in s.error
        relay.thaw()
        n = len(frames.times)
        eventually(lambda: len(frames.times) > n + 3 and runner.status().state == "streaming", "frames again")
        assert relay.connections >= 2 and runner.status().reconnects >= 1
    finally:
        runner.stop()
        relay.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
def test_a_reconnect_storm_leaves_threads_fds_and_memory_flat() -> None:
    """The short version of ``python -m tests.sources.soak`` (10 minutes): the server flaps 8 times."""
    from tests.sources.servers import require_rtsp_server

    require_rtsp_server()
    server = RtspServer("--audio", "pcma")
    cam = CameraConfig(
        id="storm",
        url=server.url(),
        stall_seconds=2,
        open_timeout_seconds=3,
        audio="stream",
        backoff_initial_seconds=0.1,
        backoff_max_seconds=0.5,
    )
    runner, frames = run(cam)
    samples = []
    try:
        for cycle in range(8):
            seen = len(frames.times)
            eventually(lambda seen=seen: len(frames.times) > seen + 2, f"frames in cycle {cycle}")
            samples.append((threading.active_count(), open_fds(), rss_mib()))
            server.stop()
            eventually(lambda: runner.status().state != "streaming", "the outage is seen")
            server.start()
    finally:
        runner.stop()
        server.stop()
    threads, fds, rss = zip(*samples, strict=True)
    # the first two cycles warm up (FFmpeg's and the decoder's allocations); after them nothing may grow
    assert max(threads[2:]) <= threads[2] + 2, samples
    assert max(fds[2:]) <= fds[2] + 4, samples
    assert max(rss[2:]) <= rss[2] + 40, samples
    assert runner.status().reconnects >= 8


def test_probe_prints_what_the_integrator_needs_and_saves_a_frame(rtsp: RtspServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "frame.jpg"
    run_ = subprocess.run(
        [sys.executable, "-m", "edge", "cameras", "probe", rtsp.url(), "--save", str(out), "--frames", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run_.returncode == 0, run_.stderr
    lines = dict(line.split(None, 1) for line in run_.stdout.splitlines()[1:] if line.strip())
    assert lines["resolution"] == "320x240" and lines["codec"] == "h264" and "declared" in lines["fps"]
    assert lines["first"].startswith("frame ") and "pcm_alaw 8000 Hz mono" in lines["audio"]
    assert out.stat().st_size > 1000
    bad = subprocess.run(
        [sys.executable, "-m", "edge", "cameras", "probe", rtsp.url("/nope", "admin:hunter22")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert bad.returncode == 10 and "hunter22" not in bad.stdout + bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == (
        "edge cameras: error: no such stream (404): check the path after the host in the URL"
    )
