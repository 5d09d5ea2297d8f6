"""Stream servers for the camera tests (real ones: GStreamer RTSP, HTTP MJPEG), and a wait helper."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import cv2
import pytest

from tests.serve.conftest import engine  # noqa: F401 (the daemon tests' engine fixture)
from tests.sources.servers import RtspServer, require_rtsp_server, test_pattern

T = TypeVar("T")


def eventually(check: Callable[[], T], what: str, timeout: float = 120.0, detail: Callable[[], str] = lambda: "") -> T:
    """Poll ``check`` until it returns something truthy; ``timeout`` is only a hang guard, never a measurement.
    ``detail`` adds what may explain a time-out (a server's log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what} (last: {value!r}) {detail()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def rtsp() -> Iterator[RtspServer]:
    """H.264 test pattern with a PCMA 8 kHz audio track, 10 fps."""
    require_rtsp_server()
    server = RtspServer("--audio", "pcma")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 frames at 25 fps (0.8 s), MJPEG in AVI: OpenCV writes and reads it without extra codecs."""
    path = tmp_path_factory.mktemp("video") / "parts.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 240))
    for i in range(20):
        writer.write(test_pattern(i))
    writer.release()
    return path
